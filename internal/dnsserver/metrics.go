package dnsserver

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the DNS server's Prometheus collectors. Label values are
// bounded: zones are configured apexes or "other", qtypes a fixed list or
// "other", rcodes the standard names, "other" or "dropped".
type metrics struct {
	queries        *prometheus.CounterVec
	duration       prometheus.Histogram
	tcpConnections prometheus.Gauge
	tcpRejected    *prometheus.CounterVec
	tcpClosed      *prometheus.CounterVec
	panics         prometheus.Counter

	rrlSlip prometheus.Counter
	rrlDrop prometheus.Counter

	// counters holds the resolved query counters so that the hot path
	// neither hashes label values nor allocates: a map read through an
	// atomic pointer, copied on the (bounded number of) writes.
	counters   atomic.Pointer[map[counterKey]prometheus.Counter]
	countersMu sync.Mutex
}

type counterKey struct {
	zone  string
	qtype uint16
	rcode int
}

// Reasons a TCP connection is refused or closed.
const (
	reasonMaxConnections = "max_connections"
	reasonMaxPerIP       = "max_connections_per_ip"
	reasonIdleTimeout    = "idle_timeout"
	reasonReadTimeout    = "read_timeout"
	reasonMaxQueries     = "max_queries"
	reasonClientClosed   = "client_closed"
	reasonError          = "error"
	reasonShutdown       = "shutdown"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "queries_total",
			Help: "DNS messages handled, by zone, query type and response code.",
		}, []string{"zone", "qtype", "rcode"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "request_duration_seconds",
			Help:    "Time to handle one DNS message, from read to response packed.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 8), // 10µs .. ~160ms
		}),
		tcpConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "tcp_connections",
			Help: "Open DNS TCP connections.",
		}),
		tcpRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "tcp_rejected_total",
			Help: "DNS TCP connections refused at accept, by reason.",
		}, []string{"reason"}),
		tcpClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "tcp_closed_total",
			Help: "DNS TCP connections closed after being accepted, by reason.",
		}, []string{"reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gslb", Subsystem: "dns", Name: "handler_panics_total",
			Help: "DNS messages dropped because handling them panicked (a bug).",
		}),
	}
	rrlActions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gslb", Subsystem: "dns", Name: "rrl_actions_total",
		Help: "UDP responses held back by response rate limiting: slipped (sent truncated, TC=1) or dropped.",
	}, []string{"action"})
	m.rrlSlip = rrlActions.WithLabelValues("slip")
	m.rrlDrop = rrlActions.WithLabelValues("drop")
	for _, c := range []prometheus.Collector{m.queries, m.duration, m.tcpConnections, m.tcpRejected, m.tcpClosed, m.panics, rrlActions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dns metrics: %w", err)
		}
	}
	for _, r := range []string{reasonMaxConnections, reasonMaxPerIP} {
		m.tcpRejected.WithLabelValues(r)
	}
	return m, nil
}

// counterRef is a resolved query counter remembered by a cache entry,
// with the metrics it belongs to.
type counterRef struct {
	m *metrics
	c prometheus.Counter
}

// observeEntry counts one message answered from the cache entry e (nil
// when the full path answered).
func (m *metrics) observeEntry(o Outcome, e *entry) {
	if e == nil {
		m.observe(o)
		return
	}
	if r := e.counter.Load(); r != nil && r.m == m {
		r.c.Inc()
		return
	}
	c := m.resolve(o)
	e.counter.Store(&counterRef{m: m, c: c})
	c.Inc()
}

// observe counts one handled message.
func (m *metrics) observe(o Outcome) { m.resolve(o).Inc() }

// resolve returns the query counter of an outcome.
func (m *metrics) resolve(o Outcome) prometheus.Counter {
	// Normalise the key so the cache stays as bounded as the labels.
	k := counterKey{zone: o.Zone, qtype: o.Qtype, rcode: o.Rcode}
	if k.qtype != 0 && !knownQtypes[k.qtype] {
		k.qtype = otherQtype
	}
	if rcodeLabel(k.rcode) == "other" {
		k.rcode = otherRcode
	}
	if p := m.counters.Load(); p != nil {
		if c, ok := (*p)[k]; ok {
			return c
		}
	}
	return m.counter(k)
}

// counter resolves and remembers the counter of k.
func (m *metrics) counter(k counterKey) prometheus.Counter {
	m.countersMu.Lock()
	defer m.countersMu.Unlock()
	old := m.counters.Load()
	if old != nil {
		if c, ok := (*old)[k]; ok {
			return c
		}
	}
	zone := k.zone
	if zone == "" {
		zone = "other"
	}
	c := m.queries.WithLabelValues(zone, qtypeLabel(k.qtype), rcodeLabel(k.rcode))
	next := make(map[counterKey]prometheus.Counter, 1+len(mapOrNil(old)))
	for kk, cc := range mapOrNil(old) {
		next[kk] = cc
	}
	next[k] = c
	m.counters.Store(&next)
	return c
}

func mapOrNil(p *map[counterKey]prometheus.Counter) map[counterKey]prometheus.Counter {
	if p == nil {
		return nil
	}
	return *p
}

// knownQtypes are the query types counted by name; others are "other".
var knownQtypes = map[uint16]bool{
	dns.TypeA: true, dns.TypeAAAA: true, dns.TypeCNAME: true, dns.TypeMX: true,
	dns.TypeTXT: true, dns.TypeNS: true, dns.TypeSOA: true, dns.TypeSRV: true,
	dns.TypeCAA: true, dns.TypePTR: true, dns.TypeANY: true, dns.TypeDS: true,
	dns.TypeDNSKEY: true, dns.TypeHTTPS: true, dns.TypeSVCB: true, dns.TypeNAPTR: true,
	dns.TypeAXFR: true, dns.TypeIXFR: true,
}

// otherQtype and otherRcode stand for every unlisted value in cache keys.
const (
	otherQtype = 0xFFFF
	otherRcode = 0xFFFF
)

func qtypeLabel(t uint16) string {
	if t == 0 {
		return "none"
	}
	if knownQtypes[t] {
		return dns.TypeToString[t]
	}
	return "other"
}

func rcodeLabel(rc int) string {
	switch rc {
	case RcodeDropped:
		return "dropped"
	case dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
		dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers:
		return dns.RcodeToString[rc]
	}
	return "other"
}
