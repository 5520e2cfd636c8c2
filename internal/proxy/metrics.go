package proxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_requests_total",
			Help: "Requests answered by the proxy, by route, HTTP status code and upstream region (\"none\" when no upstream answered).",
		}, []string{"route", "code", "region"})),
		upstreamDur: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gslb_proxy_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to receiving its response headers (or an error), per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"region"})),
		retries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_retries_total",
			Help: "Upstream attempts beyond the first, by route.",
		}, []string{"route"})),
		ejections: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_ejections_total",
			Help: "Passive outlier ejections, by pool and endpoint.",
		}, []string{"pool", "endpoint"})),
		rateLimited: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_proxy_rate_limited_total",
			Help: "Requests refused with 429 by the per-client rate limit, by route.",
		}, []string{"route"})),
		pending: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gslb_proxy_pending_requests",
			Help: "Requests being handled by the proxy now.",
		})),
	}
}

// register registers c with reg, or returns the collector already
// registered under the same description (a second Server on one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: conflicting metric definitions
	}
	return c
}
