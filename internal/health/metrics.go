package health

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/promreg"
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
	m.endpointUp = promreg.MustRegister(reg, m.endpointUp)
	m.regionUp = promreg.MustRegister(reg, m.regionUp)
	m.checkDuration = promreg.MustRegister(reg, m.checkDuration)
	m.checks = promreg.MustRegister(reg, m.checks)
	return m
}
