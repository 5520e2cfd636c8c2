package geo

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/promreg"
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
		reloads: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_geo_reload_total",
			Help: "GeoIP database (re)loads by result (success, error).",
		}, []string{"result"})),
		lookups: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
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
