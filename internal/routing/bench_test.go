package routing_test

import (
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/geo/geotest"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

func BenchmarkDecide(b *testing.B) {
	cfg := testConfig(b)
	src := &source{}
	src.p.Store(health.AllHealthy(cfg, time.Unix(0, 0)))
	e := routing.New(cfg, src, newLocator(b, cfg, geotest.SchemaGeoIP2))
	for _, bc := range []struct {
		name, service string
		query         routing.Query
	}{
		{"geo_db", "geo", q("13.56.1.1", A)},
		{"geo_cidr_map", "geo", q("203.0.113.0/24", A)},
		{"geo_rule", "geo", q("10.1.2.3", A)},
		{"failover", "fo", q("13.56.1.1", A)},
		{"weighted", "wt", q("13.56.1.1", A)},
		{"all", "all", q("13.56.1.1", A)},
		{"max_records", "maxrec", q("3.80.1.2", A)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(bc.service, bc.query); len(d.Targets) == 0 {
					b.Fatal("no targets")
				}
			}
		})
	}
}

func BenchmarkExplain(b *testing.B) {
	cfg := testConfig(b)
	e := routing.New(cfg, health.StaticSource(cfg), newLocator(b, cfg, geotest.SchemaGeoIP2))
	b.ReportAllocs()
	for b.Loop() {
		e.Explain("geo", q("13.56.1.1", A))
	}
}
