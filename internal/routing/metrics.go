package routing

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/promreg"
)

// Reasons a decision names (Decision.Reason), also the values of the
// reason label of gslb_routing_decisions_total.
const (
	ReasonGeoMap         = "geo_map"         // an explicit geo_map rule ordered the regions
	ReasonCIDRMap        = "cidr_map"        // a CIDR map placed the client at a region
	ReasonNearest        = "nearest"         // nearest region by (biased) great-circle distance
	ReasonDefault        = "default"         // geo policy, client not placed: Service.Regions order
	ReasonFailover       = "failover"        // failover policy: Service.Regions order
	ReasonWeighted       = "weighted"        // weighted policy: region by hash of the client network
	ReasonAll            = "all"             // all policy: every up endpoint
	ReasonFailOpen       = "fail_open"       // all down: every configured endpoint
	ReasonFallback       = "fallback"        // all down: the configured fallback addresses
	ReasonFailClosed     = "fail_closed"     // all down: no address (NODATA)
	ReasonNoData         = "nodata"          // the service has no endpoint of the queried family
	ReasonLocal          = "local"           // Upstreams: the proxy's local region is up
	ReasonUnknownService = "unknown_service" // no such service
)

var reasons = [...]string{
	ReasonGeoMap, ReasonCIDRMap, ReasonNearest, ReasonDefault, ReasonFailover, ReasonWeighted,
	ReasonAll, ReasonFailOpen, ReasonFallback, ReasonFailClosed, ReasonNoData,
}

func reasonIndex(r string) int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// Policies (config.Service.Policy).
const (
	PolicyGeo      = "geo"
	PolicyFailover = "failover"
	PolicyWeighted = "weighted"
	PolicyAll      = "all"
)

// engineMetrics are the routing collectors.
type engineMetrics struct {
	decisions *prometheus.CounterVec
	allDown   *prometheus.CounterVec
}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	return &engineMetrics{
		decisions: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_routing_decisions_total",
			Help: "Routing decisions by service, region answered (empty when the answer spans regions) and reason.",
		}, []string{"service", "region", "reason"})),
		allDown: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_routing_all_down_total",
			Help: "Decisions made with no healthy region, by service and outcome (fail_open, fallback, fail_closed).",
		}, []string{"service", "outcome"})),
	}
}

// serviceMetrics caches one service's counters; cells are created on first
// use so that only combinations that happen are exported.
type serviceMetrics struct {
	m       *engineMetrics
	service string
	regions []string
	// cells[(region index + 1) * len(reasons) + reason index]; region index
	// -1 is the empty region.
	cells   []atomic.Pointer[prometheus.Counter]
	allDown [len(reasons)]atomic.Pointer[prometheus.Counter]
}

func newServiceMetrics(m *engineMetrics, service string, regions []regionRef) *serviceMetrics {
	sm := &serviceMetrics{m: m, service: service}
	for _, r := range regions {
		sm.regions = append(sm.regions, r.name)
	}
	sm.cells = make([]atomic.Pointer[prometheus.Counter], (len(regions)+1)*len(reasons))
	return sm
}

// decision counts one decision answered from region index ri (-1: none).
func (sm *serviceMetrics) decision(ri int, reason string) {
	x := reasonIndex(reason)
	if x < 0 {
		return
	}
	cell := &sm.cells[(ri+1)*len(reasons)+x]
	c := cell.Load()
	if c == nil {
		region := ""
		if ri >= 0 {
			region = sm.regions[ri]
		}
		counter := sm.m.decisions.WithLabelValues(sm.service, region, reason)
		c = &counter
		cell.Store(c)
	}
	(*c).Inc()
}

// allDownOutcome counts one all-down decision.
func (sm *serviceMetrics) allDownOutcome(outcome string) {
	x := reasonIndex(outcome)
	if x < 0 {
		return
	}
	c := sm.allDown[x].Load()
	if c == nil {
		counter := sm.m.allDown.WithLabelValues(sm.service, outcome)
		c = &counter
		sm.allDown[x].Store(c)
	}
	(*c).Inc()
}
