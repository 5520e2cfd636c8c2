package geo_test

import (
	"context"
	"crypto/rand"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/geo/geotest"
)

func demoRegions() map[string]*config.Region {
	return map[string]*config.Region{
		"east": {Name: "east", Latitude: 39.04, Longitude: -77.49},
		"west": {Name: "west", Latitude: 37.35, Longitude: -121.96},
	}
}

func newResolver(t testing.TB, cfg config.GeoConfig, reg prometheus.Registerer) *geo.Resolver {
	t.Helper()
	r, err := geo.New(cfg, demoRegions(), geo.Deps{Registry: reg})
	if err != nil {
		t.Fatalf("geo.New: %v", err)
	}
	return r
}

func pfx(s string) config.Prefix { return config.Prefix{Prefix: netip.MustParsePrefix(s)} }

func f64(v float64) *float64 { return &v }

type want struct {
	country, continent, sub string
	lat, lon                float64
	coords, approx          bool
	region, network, source string
}

func check(t *testing.T, r geo.Locator, ip string, w want) {
	t.Helper()
	got := r.Locate(netip.MustParseAddr(ip))
	if got.Country != w.country || got.Continent != w.continent || got.Subdivision != w.sub ||
		got.Region != w.region || got.Source != w.source || got.HasCoordinates != w.coords || got.Approximate != w.approx {
		t.Errorf("Locate(%s) = %+v, want %+v", ip, got, w)
	}
	if w.coords && (math.Abs(got.Latitude-w.lat) > 0.01 || math.Abs(got.Longitude-w.lon) > 0.01) {
		t.Errorf("Locate(%s) coordinates = %v,%v, want %v,%v", ip, got.Latitude, got.Longitude, w.lat, w.lon)
	}
	if got.Network.String() != w.network {
		t.Errorf("Locate(%s).Network = %s, want %s", ip, got.Network, w.network)
	}
	if !got.Network.Contains(netip.MustParseAddr(ip).Unmap()) {
		t.Errorf("Locate(%s).Network %s does not contain the address", ip, got.Network)
	}
}

func TestLocateGeneratedDatabases(t *testing.T) {
	for _, schema := range []string{geotest.SchemaGeoIP2, geotest.SchemaDBIP} {
		t.Run(schema, func(t *testing.T) {
			path := geotest.WriteFile(t, "", schema, geotest.All())
			r := newResolver(t, config.GeoConfig{Database: path, Schema: schema}, nil)
			check(t, r, "3.80.1.2", want{country: "US", continent: "NA", sub: "VA", lat: 38.9, lon: -77.0, coords: true, network: "3.80.0.0/12", source: "geoip"})
			check(t, r, "::ffff:3.80.1.2", want{country: "US", continent: "NA", sub: "VA", lat: 38.9, lon: -77.0, coords: true, network: "3.80.0.0/12", source: "geoip"})
			check(t, r, "13.56.200.1", want{country: "US", continent: "NA", sub: "CA", lat: 37.77, lon: -122.42, coords: true, network: "13.56.0.0/16", source: "geoip"})
			check(t, r, "2600:1f1c::53", want{country: "US", continent: "NA", sub: "WA", lat: 47.61, lon: -122.33, coords: true, network: "2600:1f1c::/32", source: "geoip"})
			check(t, r, "2600:1f18:1::1", want{country: "US", continent: "NA", sub: "NY", lat: 40.71, lon: -74.0, coords: true, network: "2600:1f18::/32", source: "geoip"})
			// Not in the database: unknown, with the widest equally unknown network.
			got := r.Locate(netip.MustParseAddr("8.8.8.8"))
			if got.Found() || !got.Network.Contains(netip.MustParseAddr("8.8.8.8")) || got.Network.Bits() >= 32 {
				t.Errorf("Locate(8.8.8.8) = %+v, want unknown with a covering network", got)
			}
			if got := r.Locate(netip.Addr{}); got != (geo.Location{}) {
				t.Errorf("Locate(invalid) = %+v, want zero", got)
			}
			info, ok := r.Database()
			if !ok || info.Path != path || info.Schema != schema || info.Size == 0 {
				t.Errorf("Database() = %+v, %v", info, ok)
			}
		})
	}
}

func TestLocateMaxMindTestDatabases(t *testing.T) {
	city := newResolver(t, config.GeoConfig{Database: "testdata/GeoIP2-City-Test.mmdb", Schema: "geoip2"}, nil)
	check(t, city, "216.160.83.58", want{country: "US", continent: "NA", sub: "WA", lat: 47.2513, lon: -122.3149, coords: true, network: "216.160.83.56/29", source: "geoip"})
	check(t, city, "81.2.69.142", want{country: "GB", continent: "EU", sub: "ENG", lat: 51.5142, lon: -0.0931, coords: true, network: "81.2.69.142/31", source: "geoip"})
	check(t, city, "2001:218::1", want{country: "JP", continent: "AS", lat: 35.68536, lon: 139.75309, coords: true, network: "2001:218::/32", source: "geoip"})
	// Continent only: the continent's centroid stands in, marked approximate.
	check(t, city, "2.3.3.1", want{continent: "EU", lat: 54.53, lon: 15.26, coords: true, approx: true, network: "2.3.3.0/24", source: "geoip"})

	country := newResolver(t, config.GeoConfig{Database: "testdata/GeoIP2-Country-Test.mmdb", Schema: "geoip2"}, nil)
	got := country.Locate(netip.MustParseAddr("81.2.69.142"))
	if got.Country != "GB" || got.Continent != "EU" || !got.Approximate || !got.HasCoordinates || got.Source != "geoip" {
		t.Errorf("Country DB Locate(81.2.69.142) = %+v, want GB/EU with approximate coordinates", got)
	}
}

func TestCIDRMapsTakePrecedence(t *testing.T) {
	path := geotest.WriteFile(t, "", geotest.SchemaGeoIP2, geotest.All())
	cfg := config.GeoConfig{Database: path, Schema: "geoip2", CIDRMaps: []config.CIDRMap{
		{CIDR: pfx("10.0.0.0/8"), Region: "east"},
		{CIDR: pfx("10.1.0.0/16"), Region: "west"},
		{CIDR: pfx("3.81.0.0/16"), Region: "west"},
		{CIDR: pfx("203.0.113.0/24"), Country: "DE", Continent: "EU", Latitude: f64(50.1), Longitude: f64(8.7)},
		{CIDR: pfx("192.0.2.0/24"), Continent: "SA"},
		{CIDR: pfx("2001:db8::/32"), Region: "west"},
	}}
	r := newResolver(t, cfg, nil)
	// Region maps place the client at the region.
	check(t, r, "10.1.2.3", want{lat: 37.35, lon: -121.96, coords: true, region: "west", network: "10.1.0.0/16", source: "cidr_map"})
	// The /8 answers outside the /16, but only as wide as stays outside it.
	check(t, r, "10.2.3.4", want{lat: 39.04, lon: -77.49, coords: true, region: "east", network: "10.2.0.0/15", source: "cidr_map"})
	check(t, r, "10.128.0.1", want{lat: 39.04, lon: -77.49, coords: true, region: "east", network: "10.128.0.0/9", source: "cidr_map"})
	// CIDR map over the database.
	check(t, r, "3.81.9.9", want{lat: 37.35, lon: -121.96, coords: true, region: "west", network: "3.81.0.0/16", source: "cidr_map"})
	// The database network narrowed where a CIDR map lies inside it.
	check(t, r, "3.80.1.1", want{country: "US", continent: "NA", sub: "VA", lat: 38.9, lon: -77.0, coords: true, network: "3.80.0.0/16", source: "geoip"})
	check(t, r, "203.0.113.9", want{country: "DE", continent: "EU", lat: 50.1, lon: 8.7, coords: true, network: "203.0.113.0/24", source: "cidr_map"})
	check(t, r, "192.0.2.1", want{continent: "SA", lat: -14.6, lon: -57.66, coords: true, approx: true, network: "192.0.2.0/24", source: "cidr_map"})
	check(t, r, "2001:db8::1", want{lat: 37.35, lon: -121.96, coords: true, region: "west", network: "2001:db8::/32", source: "cidr_map"})
	check(t, r, "::ffff:10.1.0.1", want{lat: 37.35, lon: -121.96, coords: true, region: "west", network: "10.1.0.0/16", source: "cidr_map"})

	// Without a database, a miss is unknown over the widest prefix that
	// overlaps no map.
	nodb := newResolver(t, config.GeoConfig{CIDRMaps: cfg.CIDRMaps}, nil)
	got := nodb.Locate(netip.MustParseAddr("11.0.0.1"))
	if got.Found() || got.Network.String() != "11.0.0.0/8" {
		t.Errorf("Locate(11.0.0.1) = %+v, want unknown in 11.0.0.0/8", got)
	}
}

func TestCorruptDatabaseRejected(t *testing.T) {
	dir := t.TempDir()
	random := filepath.Join(dir, "random.mmdb")
	buf := make([]byte, 4096)
	_, _ = rand.Read(buf)
	if err := os.WriteFile(random, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dbip := geotest.WriteFile(t, filepath.Join(dir, "dbip.mmdb"), geotest.SchemaDBIP, geotest.All())
	for _, tc := range []struct{ path, schema, want string }{
		{"testdata/GeoIP2-City-Test-Broken-Double-Format.mmdb", "geoip2", "verify"},
		{"testdata/GeoIP2-City-Test-Invalid-Node-Count.mmdb", "geoip2", ""},
		{random, "geoip2", ""},
		{empty, "geoip2", "empty"},
		{filepath.Join(dir, "missing.mmdb"), "geoip2", "no such file"},
		{dbip, "geoip2", `schema "geoip2"`},
	} {
		_, err := geo.New(config.GeoConfig{Database: tc.path, Schema: tc.schema}, nil, geo.Deps{})
		if err == nil {
			t.Errorf("geo.New(%s) succeeded, want an error", tc.path)
			continue
		}
		if !strings.HasPrefix(err.Error(), `open geoip db "`+tc.path+`": `) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("geo.New(%s) error = %q, want it to start with open geoip db %q and mention %q", tc.path, err, tc.path, tc.want)
		}
	}
	if _, err := geo.New(config.GeoConfig{Schema: "ip2location"}, nil, geo.Deps{}); err == nil {
		t.Error("unknown schema accepted")
	}
}

func TestReloadKeepsOldDatabaseOnCorruptReplacement(t *testing.T) {
	reg := prometheus.NewRegistry()
	path := geotest.WriteFile(t, "", geotest.SchemaGeoIP2, geotest.EastCoast())
	r := newResolver(t, config.GeoConfig{Database: path, Schema: "geoip2", ReloadInterval: time.Hour}, reg)
	reloads := func(result string) float64 {
		return counterValue(t, reg, "gslb_geo_reload_total", result)
	}
	if ok, err := r.ReloadIfChanged(); ok || err != nil {
		t.Fatalf("ReloadIfChanged on an unchanged file = %v, %v", ok, err)
	}
	if reloads("success") != 1 {
		t.Fatalf("success reloads = %v, want 1 (the initial load)", reloads("success"))
	}

	// A corrupt replacement is refused and the old database stays.
	if err := os.WriteFile(path+".tmp", []byte("not a maxmind db"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.ReloadIfChanged(); ok || err == nil || !strings.Contains(err.Error(), `reload geoip db "`+path+`"`) {
		t.Fatalf("ReloadIfChanged on a corrupt file = %v, %v; want a reload error", ok, err)
	}
	if got := r.Locate(netip.MustParseAddr("3.80.0.1")); got.Subdivision != "VA" {
		t.Fatalf("after a failed reload Locate = %+v, want the old database's answer", got)
	}
	// The same bad file is not retried (or logged) again.
	if ok, err := r.ReloadIfChanged(); ok || err != nil {
		t.Fatalf("ReloadIfChanged on the same bad file = %v, %v; want no retry", ok, err)
	}
	if reloads("error") != 1 {
		t.Fatalf("error reloads = %v, want 1", reloads("error"))
	}

	// A valid replacement is picked up.
	geotest.WriteFile(t, path, geotest.SchemaGeoIP2, []geotest.Record{{Network: "3.80.0.0/12", Country: "CA", Continent: "NA", Subdivision: "QC", Latitude: 45.5, Longitude: -73.6, HasCoordinates: true}})
	if ok, err := r.ReloadIfChanged(); !ok || err != nil {
		t.Fatalf("ReloadIfChanged on a valid file = %v, %v", ok, err)
	}
	if got := r.Locate(netip.MustParseAddr("3.80.0.1")); got.Country != "CA" {
		t.Fatalf("after reload Locate = %+v, want CA", got)
	}
	if reloads("success") != 2 {
		t.Fatalf("success reloads = %v, want 2", reloads("success"))
	}
	// A deleted file keeps the database too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReloadIfChanged(); err == nil {
		t.Fatal("ReloadIfChanged on a missing file: no error")
	}
	if got := r.Locate(netip.MustParseAddr("3.80.0.1")); got.Country != "CA" {
		t.Fatalf("after the file vanished Locate = %+v, want CA", got)
	}
}

func TestRunReloadsChangedFile(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := geotest.WriteFile(t, "", geotest.SchemaDBIP, geotest.EastCoast())
	r := newResolver(t, config.GeoConfig{Database: path, Schema: "dbip", ReloadInterval: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	geotest.WriteFile(t, path, geotest.SchemaDBIP, geotest.WestCoast())
	addr := netip.MustParseAddr("13.56.0.1")
	deadline := time.Now().Add(5 * time.Second)
	for !r.Locate(addr).Found() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not reload the changed database within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
}

// counterValue reads the counter name{...=label} from g (0 when absent).
func counterValue(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func BenchmarkLocate(b *testing.B) {
	path := geotest.WriteFile(b, "", geotest.SchemaGeoIP2, geotest.All())
	cases := map[string]config.GeoConfig{
		"geoip2":    {Database: path, Schema: "geoip2"},
		"cidr_map":  {CIDRMaps: []config.CIDRMap{{CIDR: pfx("198.51.100.0/24"), Region: "east"}, {CIDR: pfx("203.0.113.0/24"), Region: "west"}}},
		"city_test": {Database: "testdata/GeoIP2-City-Test.mmdb", Schema: "geoip2"},
	}
	addrs := map[string]netip.Addr{
		"geoip2":    netip.MustParseAddr("13.56.7.8"),
		"cidr_map":  netip.MustParseAddr("203.0.113.7"),
		"city_test": netip.MustParseAddr("216.160.83.58"),
	}
	for name, cfg := range cases {
		b.Run(name, func(b *testing.B) {
			r := newResolver(b, cfg, nil)
			addr := addrs[name]
			b.ReportAllocs()
			for b.Loop() {
				if !r.Locate(addr).Found() {
					b.Fatal("not found")
				}
			}
		})
	}
}
