package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/promreg"
)

// metrics are the proxy's Prometheus collectors. Every label value is
// bounded by the config (routes, regions, pools, endpoints) or by HTTP
// (status codes).
type metrics struct {
	requests    *prometheus.CounterVec   // route, code, region
	upstreamDur *prometheus.HistogramVec // region
	retries     *prometheus.CounterVec   // route
	ejections   *prometheus.CounterVec   // pool, endpoint
	rateLimited *prometheus.CounterVec   // route
	pending     prometheus.Gauge
	handoffs    prometheus.Counter

	// Children of requests and upstreamDur by label values, looked up
	// on every request: a map lookup instead of the vector's hashing and
	// checking of the values (no label value is ever deleted).
	requestsBy    sync.Map // requestLabels → prometheus.Counter
	upstreamDurBy sync.Map // region → prometheus.Observer
}

type requestLabels struct{ route, code, region string }

// request returns the requests counter of route, code and region.
func (m *metrics) request(route, code, region string) prometheus.Counter {
	k := requestLabels{route, code, region}
	if c, ok := m.requestsBy.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.requestsBy.LoadOrStore(k, m.requests.WithLabelValues(route, code, region))
	return c.(prometheus.Counter)
}

// upstreamDuration returns the upstream duration histogram of region.
func (m *metrics) upstreamDuration(region string) prometheus.Observer {
	if o, ok := m.upstreamDurBy.Load(region); ok {
		return o.(prometheus.Observer)
	}
	o, _ := m.upstreamDurBy.LoadOrStore(region, m.upstreamDur.WithLabelValues(region))
	return o.(prometheus.Observer)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_requests_total",
			Help: "Requests answered by the proxy, by route, HTTP status code and upstream region (\"none\" when no upstream answered).",
		}, []string{"route", "code", "region"})),
		upstreamDur: promreg.MustRegister(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gslb_proxy_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to receiving its response headers (or an error), per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"region"})),
		retries: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_retries_total",
			Help: "Upstream attempts beyond the first, by route.",
		}, []string{"route"})),
		ejections: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_ejections_total",
			Help: "Passive outlier ejections, by pool and endpoint.",
		}, []string{"pool", "endpoint"})),
		rateLimited: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_rate_limited_total",
			Help: "Requests refused with 429 by the per-client rate limit, by route.",
		}, []string{"route"})),
		pending: promreg.MustRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gslb_proxy_pending_requests",
			Help: "Requests being handled by the proxy now.",
		})),
		handoffs: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gslb_proxy_http1_handoffs_total",
			Help: "Plain-HTTP connections the proxy's HTTP/1.1 front end handed to net/http, at a request it does not serve itself (a body, an upgrade, h2c, HTTP/1.0, a large or unusual head).",
		})),
	}
}
