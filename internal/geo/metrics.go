package geo

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the geo package's collectors, registered once per registry.
type metrics struct {
	reloads *prometheus.CounterVec
	lookups *prometheus.CounterVec

	reloadOK, reloadErr                            prometheus.Counter
	lookupCIDR, lookupGeoIP, lookupNone, lookupErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: registerCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_geo_reload_total",
			Help: "GeoIP database (re)loads by result (success, error).",
		}, []string{"result"})),
		lookups: registerCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_geo_lookups_total",
			Help: "Address lookups by the source that located them (cidr_map, geoip, none, error).",
		}, []string{"source"})),
	}
	m.reloadOK = m.reloads.WithLabelValues("success")
	m.reloadErr = m.reloads.WithLabelValues("error")
	m.lookupCIDR = m.lookups.WithLabelValues(SourceCIDRMap)
	m.lookupGeoIP = m.lookups.WithLabelValues(SourceGeoIP)
	m.lookupNone = m.lookups.WithLabelValues("none")
	m.lookupErr = m.lookups.WithLabelValues("error")
	return m
}

// registerCounterVec registers c, or returns the collector already
// registered under the same name (a reload builds a new Resolver against
// the same registry).
func registerCounterVec(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		// A conflicting registration: keep counting, unexported.
	}
	return c
}
