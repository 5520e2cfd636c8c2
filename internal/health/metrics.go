package health

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Checker's Prometheus collectors.
type metrics struct {
	endpointUp    *prometheus.GaugeVec
	regionUp      *prometheus.GaugeVec
	checkDuration *prometheus.HistogramVec
	checks        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		endpointUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gslb_endpoint_up",
			Help: "Whether the endpoint may receive traffic (1) or not (0): healthy, not drained, not ejected.",
		}, []string{"pool", "region", "endpoint"}),
		regionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gslb_region_up",
			Help: "Whether the region has at least min_healthy up endpoints of the pool and is not drained.",
		}, []string{"pool", "region"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gslb_health_check_duration_seconds",
			Help:    "Duration of active health check probes.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_health_checks_total",
			Help: "Active health check probes by pool and result (success or failure).",
		}, []string{"pool", "result"}),
	}
	m.endpointUp = register(reg, m.endpointUp)
	m.regionUp = register(reg, m.regionUp)
	m.checkDuration = register(reg, m.checkDuration)
	m.checks = register(reg, m.checks)
	return m
}

// register registers c on reg, reusing an identical collector that is
// already registered (a Checker rebuilt on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting collector under the same name: keep ours
		// unregistered rather than failing the health checker.
	}
	return c
}
