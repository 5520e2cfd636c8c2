package routing_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/geo/geotest"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

const testYAML = `
dns:
  listen: ["127.0.0.1:0"]
regions:
  east: {latitude: 39.04, longitude: -77.49}
  west: {latitude: 37.35, longitude: -121.96}
  eu:   {latitude: 50.11, longitude: 8.68}
geo:
  cidr_maps:
    - {cidr: 198.51.100.0/24, region: east}
    - {cidr: 203.0.113.0/24, region: west}
pools:
  web:
    check: {type: none}
    endpoints:
      - {name: east-1, region: east, address: 192.0.2.1}
      - {name: east-2, region: east, address: 192.0.2.2}
      - {name: east-6, region: east, address: "2001:db8::1"}
      - {name: west-1, region: west, address: 192.0.2.11}
      - {name: west-6, region: west, address: "2001:db8::11"}
      - {name: eu-1, region: eu, address: 192.0.2.21}
  quorum:
    min_healthy: 2
    check: {type: none}
    endpoints:
      - {name: east-1, region: east, address: 192.0.2.1}
      - {name: east-2, region: east, address: 192.0.2.2}
      - {name: west-1, region: west, address: 192.0.2.11}
      - {name: west-2, region: west, address: 192.0.2.12}
  v4only:
    check: {type: none}
    endpoints:
      - {name: east-1, region: east, address: 192.0.2.1}
  standby:
    check: {type: none}
    endpoints:
      - {name: east-1, region: east, address: 192.0.2.1, weight: 3}
      - {name: east-2, region: east, address: 192.0.2.2, weight: 1}
      - {name: east-spare, region: east, address: 192.0.2.3, weight: 0}
services:
  geo:
    pool: web
    policy: geo
    regions: [east, west]
    geo_map:
      - {cidr: 10.1.0.0/16, regions: [west]}
      - {country: GB, regions: [eu]}
      - {country: us, subdivision: tx, regions: [west]}
      - {continent: SA, regions: [east]}
  fo:
    pool: web
    policy: failover
    regions: [west, east]
  wt:
    pool: web
    policy: weighted
    regions: [east, west]
    weights: {east: 90, west: 10}
  all:
    pool: web
    policy: all
    regions: [east, west]
  fallback:
    pool: web
    policy: failover
    regions: [east, west]
    when_all_down: fallback
    fallback: [192.0.2.99, "2001:db8::99"]
  closed:
    pool: web
    policy: failover
    regions: [east, west]
    when_all_down: fail_closed
  quorum:
    pool: quorum
    policy: geo
  v4only:
    pool: v4only
    policy: geo
  maxrec:
    pool: web
    policy: geo
    regions: [east, west]
    max_records: 1
  standby:
    pool: standby
    policy: failover
    ttl: 60
    degraded_ttl: 7
zones:
  - name: example.com
    ns: [ns1]
    records: ["ns1 A 192.0.2.53"]
`

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(testYAML))
	if err != nil {
		t.Fatalf("parse test config: %v", err)
	}
	return cfg
}

// source is a health.Source whose snapshot tests replace.
type source struct {
	p atomic.Pointer[health.Snapshot]
}

func (s *source) Snapshot() *health.Snapshot { return s.p.Load() }

// snapshot builds a snapshot of cfg with the given endpoints ("pool/name")
// down, endpoints ("pool/name") or regions ("@region") drained.
func snapshot(cfg *config.Config, version uint64, down []string, drained []string) *health.Snapshot {
	s := health.AllHealthy(cfg, time.Unix(0, 0))
	s.Version = version
	for _, k := range down {
		pool, ep, _ := strings.Cut(k, "/")
		key := health.EndpointKey{Pool: pool, Endpoint: ep}
		st := s.Endpoints[key]
		st.Healthy = false
		s.Endpoints[key] = st
	}
	for _, k := range drained {
		if r, ok := strings.CutPrefix(k, "@"); ok {
			s.DrainedRegions[r] = health.Override{By: "test"}
			continue
		}
		pool, ep, _ := strings.Cut(k, "/")
		key := health.EndpointKey{Pool: pool, Endpoint: ep}
		st := s.Endpoints[key]
		st.Drained = true
		s.Endpoints[key] = st
		s.DrainedEndpoints[key] = health.Override{By: "test"}
	}
	return s
}

func newLocator(t testing.TB, cfg *config.Config, schema string) *geo.Resolver {
	t.Helper()
	gc := cfg.Geo
	gc.Schema = schema
	gc.Database = geotest.WriteFile(t, "", schema, geotest.All())
	r, err := geo.New(gc, cfg.Regions, geo.Deps{})
	if err != nil {
		t.Fatalf("geo.New: %v", err)
	}
	return r
}

func q(client string, qtype uint16) routing.Query {
	var a netip.Addr
	bits := 0
	if client != "" {
		if p, err := netip.ParsePrefix(client); err == nil {
			a, bits = p.Addr(), p.Bits()
		} else {
			a = netip.MustParseAddr(client)
			bits = a.BitLen()
		}
	}
	return routing.Query{Client: a, SourcePrefix: bits, QType: qtype}
}

func addrs(d routing.Decision, qtype uint16) string {
	var s []string
	for _, a := range d.Addrs(qtype) {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

type tcase struct {
	name    string
	service string
	query   routing.Query
	down    []string
	drained []string
	// expectations
	region, addrs, reason string
	scope                 int
	ttl                   uint32
	allDown               bool
}

func runCases(t *testing.T, e *routing.Engine, src *source, cfg *config.Config, cases []tcase) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src.p.Store(snapshot(cfg, uint64(i+1), tc.down, tc.drained))
			d := e.Decide(tc.service, tc.query)
			got := fmt.Sprintf("region=%q addrs=%q reason=%s scope=%d ttl=%d allDown=%v",
				d.Region, addrs(d, tc.query.QType), d.Reason, d.Scope, d.TTL, d.AllDown)
			want := fmt.Sprintf("region=%q addrs=%q reason=%s scope=%d ttl=%d allDown=%v",
				tc.region, tc.addrs, tc.reason, tc.scope, tc.ttl, tc.allDown)
			if got != want {
				t.Errorf("Decide(%s, %+v)\n got %s\nwant %s\ntrace:\n%s", tc.service, tc.query, got, want,
					strings.Join(e.Explain(tc.service, tc.query).Trace, "\n"))
			}
			if d.Trace != nil {
				t.Errorf("Decide built a trace: %q", d.Trace)
			}
			// Explain decides the same.
			x := e.Explain(tc.service, tc.query)
			if x.Region != d.Region || x.Reason != d.Reason || x.Scope != d.Scope || addrs(x, tc.query.QType) != addrs(d, tc.query.QType) {
				t.Errorf("Explain decided differently: %+v vs %+v", x, d)
			}
			if len(x.Trace) == 0 {
				t.Error("Explain built no trace")
			}
		})
	}
}

const (
	A    = dns.TypeA
	AAAA = dns.TypeAAAA
)

func TestGeoPolicy(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	e := routing.New(cfg, src, newLocator(t, cfg, geotest.SchemaGeoIP2))
	runCases(t, e, src, cfg, []tcase{
		{name: "east coast nearest", service: "geo", query: q("3.80.1.2", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "nearest", scope: 12, ttl: 30},
		{name: "west coast nearest", service: "geo", query: q("13.56.1.1", A),
			region: "west", addrs: "192.0.2.11", reason: "nearest", scope: 16, ttl: 30},
		{name: "east coast ipv6 AAAA", service: "geo", query: q("2600:1f18::1", AAAA),
			region: "east", addrs: "2001:db8::1", reason: "nearest", scope: 32, ttl: 30},
		{name: "west coast ipv6 AAAA", service: "geo", query: q("2600:1f1c::1", AAAA),
			region: "west", addrs: "2001:db8::11", reason: "nearest", scope: 32, ttl: 30},
		{name: "east coast ipv6 asking A gets east A records", service: "geo", query: q("2600:1f18::1", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "nearest", scope: 32, ttl: 30},
		{name: "ecs cidr map west", service: "geo", query: q("203.0.113.0/24", A),
			region: "west", addrs: "192.0.2.11", reason: "cidr_map", scope: 24, ttl: 30},
		{name: "cidr map east", service: "geo", query: q("198.51.100.7", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "cidr_map", scope: 24, ttl: 30},
		{name: "geo_map cidr rule needs no location", service: "geo", query: q("10.1.2.3", A),
			region: "west", addrs: "192.0.2.11", reason: "geo_map", scope: 16, ttl: 30},
		{name: "geo_map country rule outside service regions", service: "geo", query: q("81.2.69.5", A),
			region: "eu", addrs: "192.0.2.21", reason: "geo_map", scope: 24, ttl: 30},
		{name: "geo_map rule region down falls to nearest", service: "geo", query: q("81.2.69.5", A), down: []string{"web/eu-1"},
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "nearest", scope: 24, ttl: 15},
		{name: "unlocated client: configured order", service: "geo", query: q("8.8.8.8", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "default", scope: 7, ttl: 30}, // 8.0.0.0/7 holds no network of the test DB
		{name: "unknown client: configured order, scope 0", service: "geo", query: q("", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "default", scope: 0, ttl: 30},
		{name: "one down: east client to west, degraded ttl", service: "geo", query: q("3.80.1.2", A), down: []string{"web/east-1", "web/east-2"},
			region: "west", addrs: "192.0.2.11", reason: "nearest", scope: 12, ttl: 15},
		{name: "one endpoint down: region still up", service: "geo", query: q("3.80.1.2", A), down: []string{"web/east-1"},
			region: "east", addrs: "192.0.2.2", reason: "nearest", scope: 12, ttl: 15},
		{name: "only one eligible region: scope 0", service: "geo", query: q("3.80.1.2", A), down: []string{"web/east-1", "web/east-2", "web/eu-1"},
			region: "west", addrs: "192.0.2.11", reason: "nearest", scope: 0, ttl: 15},
		{name: "AAAA parity: east v6 down, v4 up", service: "geo", query: q("2600:1f18::1", AAAA), down: []string{"web/east-6"},
			region: "west", addrs: "2001:db8::11", reason: "nearest", scope: 0, ttl: 15},
		{name: "AAAA parity: A unaffected", service: "geo", query: q("2600:1f18::1", A), down: []string{"web/east-6"},
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "nearest", scope: 32, ttl: 15},
		{name: "drained region", service: "geo", query: q("3.80.1.2", A), drained: []string{"@east"},
			region: "west", addrs: "192.0.2.11", reason: "nearest", scope: 12, ttl: 15},
		{name: "drained endpoint", service: "geo", query: q("3.80.1.2", A), drained: []string{"web/east-2"},
			region: "east", addrs: "192.0.2.1", reason: "nearest", scope: 12, ttl: 15},
		{name: "both families asked", service: "geo", query: q("13.56.1.1", 0),
			region: "west", addrs: "192.0.2.11 2001:db8::11", reason: "nearest", scope: 16, ttl: 30},
		{name: "ipv4-mapped client", service: "geo", query: routing.Query{Client: netip.MustParseAddr("::ffff:13.56.1.1"), SourcePrefix: 128, QType: A},
			region: "west", addrs: "192.0.2.11", reason: "nearest", scope: 16, ttl: 30},
		{name: "min_healthy 2: one of two down makes the region down", service: "quorum", query: q("3.80.1.2", A), down: []string{"quorum/east-1"},
			region: "west", addrs: "192.0.2.11 192.0.2.12", reason: "nearest", scope: 0, ttl: 15},
		{name: "min_healthy 2: all up", service: "quorum", query: q("3.80.1.2", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "nearest", scope: 12, ttl: 30},
		{name: "all down fail_open", service: "geo", query: q("3.80.1.2", A), down: []string{"web/east-1", "web/east-2", "web/west-1", "web/eu-1"},
			region: "", addrs: "192.0.2.1 192.0.2.2 192.0.2.11 192.0.2.21", reason: "fail_open", scope: 0, ttl: 15, allDown: true},
		{name: "all v4 down, AAAA still answered", service: "geo", query: q("2600:1f18::1", AAAA), down: []string{"web/east-1", "web/east-2", "web/west-1", "web/eu-1"},
			region: "east", addrs: "2001:db8::1", reason: "nearest", scope: 32, ttl: 15},
		{name: "no AAAA endpoints: nodata, not all down", service: "v4only", query: q("3.80.1.2", AAAA),
			region: "", addrs: "", reason: "nodata", scope: 0, ttl: 30},
		{name: "max_records 1 hashes over the region", service: "maxrec", query: q("3.80.1.2", A),
			region: "east", addrs: "192.0.2.1", reason: "nearest", scope: 24, ttl: 30},
	})
}

func TestGeoDBIPSchemaNearest(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	src.p.Store(health.AllHealthy(cfg, time.Unix(0, 0)))
	e := routing.New(cfg, src, newLocator(t, cfg, geotest.SchemaDBIP))
	for client, want := range map[string]string{"3.80.1.2": "east", "13.56.1.1": "west", "2600:1f18::1": "east", "2600:1f1c::1": "west"} {
		if d := e.Decide("geo", q(client, 0)); d.Region != want || d.Reason != "nearest" {
			t.Errorf("dbip: Decide(%s) = %s (%s), want %s nearest", client, d.Region, d.Reason, want)
		}
	}
}

func TestOtherPolicies(t *testing.T) {
	cfg := testConfig(t)
	// The config defaults a weight of 0 to 1; a standby is built directly.
	cfg.Pools["standby"].Endpoints[2].Weight = 0
	src := &source{}
	e := routing.New(cfg, src, newLocator(t, cfg, geotest.SchemaGeoIP2))
	allV4Down := []string{"web/east-1", "web/east-2", "web/west-1", "web/eu-1"}
	runCases(t, e, src, cfg, []tcase{
		{name: "failover first region", service: "fo", query: q("3.80.1.2", A),
			region: "west", addrs: "192.0.2.11", reason: "failover", scope: 0, ttl: 30},
		{name: "failover second region", service: "fo", query: q("3.80.1.2", A), down: []string{"web/west-1"},
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "failover", scope: 0, ttl: 15},
		{name: "failover AAAA parity", service: "fo", query: q("3.80.1.2", AAAA), down: []string{"web/west-6"},
			region: "east", addrs: "2001:db8::1", reason: "failover", scope: 0, ttl: 15},
		{name: "all policy", service: "all", query: q("3.80.1.2", A),
			region: "", addrs: "192.0.2.1 192.0.2.2 192.0.2.11", reason: "all", scope: 0, ttl: 30},
		{name: "all policy one region down", service: "all", query: q("3.80.1.2", A), down: []string{"web/west-1"},
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "all", scope: 0, ttl: 15},
		{name: "all policy AAAA", service: "all", query: q("3.80.1.2", AAAA),
			region: "", addrs: "2001:db8::1 2001:db8::11", reason: "all", scope: 0, ttl: 30},
		{name: "all policy all down fails open", service: "all", query: q("3.80.1.2", A), down: allV4Down,
			region: "", addrs: "192.0.2.1 192.0.2.2 192.0.2.11", reason: "fail_open", scope: 0, ttl: 15, allDown: true},
		{name: "weighted all down fails open", service: "wt", query: q("3.80.1.2", A), down: allV4Down,
			region: "", addrs: "192.0.2.1 192.0.2.2 192.0.2.11", reason: "fail_open", scope: 0, ttl: 15, allDown: true},
		{name: "weighted one region left: scope 0", service: "wt", query: q("3.80.1.2", A), down: []string{"web/east-1", "web/east-2"},
			region: "west", addrs: "192.0.2.11", reason: "weighted", scope: 0, ttl: 15},
		{name: "fallback when all down", service: "fallback", query: q("3.80.1.2", A), down: allV4Down,
			region: "", addrs: "192.0.2.99", reason: "fallback", scope: 0, ttl: 15, allDown: true},
		{name: "fallback AAAA", service: "fallback", query: q("3.80.1.2", AAAA), down: []string{"web/east-6", "web/west-6"},
			region: "", addrs: "2001:db8::99", reason: "fallback", scope: 0, ttl: 15, allDown: true},
		{name: "fallback not used while up", service: "fallback", query: q("3.80.1.2", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "failover", scope: 0, ttl: 30},
		{name: "fail_closed when all down", service: "closed", query: q("3.80.1.2", A), drained: []string{"@east", "@west"},
			region: "", addrs: "", reason: "fail_closed", scope: 0, ttl: 15, allDown: true},
		{name: "standby endpoint unused while others up", service: "standby", query: q("3.80.1.2", A),
			region: "east", addrs: "192.0.2.1 192.0.2.2", reason: "failover", scope: 0, ttl: 60},
		{name: "standby endpoint used when others down", service: "standby", query: q("3.80.1.2", A), down: []string{"standby/east-1", "standby/east-2"},
			region: "east", addrs: "192.0.2.3", reason: "failover", scope: 0, ttl: 7},
	})
}

func TestWeightedIsStablePerNetworkAndSplitsByWeight(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	src.p.Store(health.AllHealthy(cfg, time.Unix(0, 0)))
	e := routing.New(cfg, src, nil)
	counts := map[string]int{}
	const n = 2000
	for i := range n {
		client := netip.AddrFrom4([4]byte{100, byte(i >> 8), byte(i), 7})
		d := e.Decide("wt", routing.Query{Client: client, SourcePrefix: 32, QType: A})
		if d.Scope != 24 || d.Reason != "weighted" {
			t.Fatalf("weighted decision scope %d reason %s, want 24 weighted", d.Scope, d.Reason)
		}
		// Same /24, other host: same answer.
		other := netip.AddrFrom4([4]byte{100, byte(i >> 8), byte(i), 200})
		if d2 := e.Decide("wt", routing.Query{Client: other, SourcePrefix: 32, QType: A}); d2.Region != d.Region {
			t.Fatalf("%s and %s (same /24) got %s and %s", client, other, d.Region, d2.Region)
		}
		counts[d.Region]++
	}
	if east := float64(counts["east"]) / n; east < 0.85 || east > 0.95 {
		t.Errorf("weighted 90/10 split gave east %.3f (%v)", east, counts)
	}
	// Unknown client: one stable answer, scope 0.
	d := e.Decide("wt", routing.Query{QType: A})
	if d.Scope != 0 || d.Region == "" {
		t.Errorf("unknown client: %+v", d)
	}
}

func TestMaxRecordsSpreadsClients(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	src.p.Store(health.AllHealthy(cfg, time.Unix(0, 0)))
	e := routing.New(cfg, src, geo.Nowhere{})
	seen := map[string]int{}
	for i := range 200 {
		client := netip.AddrFrom4([4]byte{100, 1, byte(i), 1})
		d := e.Decide("maxrec", routing.Query{Client: client, SourcePrefix: 32, QType: A})
		if len(d.Targets) != 1 || d.Region != "east" || d.Scope != 24 {
			t.Fatalf("maxrec decision %+v", d)
		}
		seen[d.Targets[0].Endpoint]++
	}
	if seen["east-1"] < 50 || seen["east-2"] < 50 {
		t.Errorf("max_records 1 did not spread clients over both endpoints: %v", seen)
	}
}

// fakeLocator places every address at one Location.
type fakeLocator struct{ loc geo.Location }

func (f fakeLocator) Locate(a netip.Addr) geo.Location {
	l := f.loc
	l.Network, _ = a.Prefix(20)
	return l
}

func TestBias(t *testing.T) {
	kansas := geo.Location{Country: "US", Continent: "NA", Latitude: 37.75, Longitude: -97.82, HasCoordinates: true, Source: "geoip"}
	for _, tc := range []struct {
		westBias int
		want     string
	}{{0, "east"}, {30, "west"}, {-50, "east"}} {
		cfg := testConfig(t)
		cfg.Regions["west"].Bias = tc.westBias
		e := routing.New(cfg, health.StaticSource(cfg), fakeLocator{kansas})
		d := e.Explain("geo", q("100.64.0.1", A))
		if d.Region != tc.want || d.Scope != 20 {
			t.Errorf("west bias %d: region %s scope %d, want %s /20\n%s", tc.westBias, d.Region, d.Scope, tc.want, strings.Join(d.Trace, "\n"))
		}
	}
}

func TestCIDRRuleScopeAccountsForEarlierRules(t *testing.T) {
	cfg := testConfig(t)
	// Put a wider cidr rule after the /16: a client outside the /16 but in
	// the /8 must get a scope that excludes the /16.
	wide := config.Prefix{Prefix: netip.MustParsePrefix("10.0.0.0/8")}
	svc := cfg.Services["geo"]
	svc.GeoMap = append(svc.GeoMap[:1:1], append([]config.GeoRule{{CIDR: &wide, Regions: []string{"east"}}}, svc.GeoMap[1:]...)...)
	e := routing.New(cfg, health.StaticSource(cfg), nil)
	d := e.Decide("geo", q("10.2.3.4", A))
	if d.Region != "east" || d.Reason != "geo_map" || d.Scope != 15 {
		t.Errorf("10.2.3.4: region %s reason %s scope %d, want east geo_map 15 (10.2.0.0/15 avoids 10.1.0.0/16)", d.Region, d.Reason, d.Scope)
	}
}

func TestDemoConfigECS(t *testing.T) {
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.New(cfg.Geo, cfg.Regions, geo.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	e := routing.New(cfg, health.StaticSource(cfg), loc)
	svc := e.ServiceForName("WWW.Ecommerce.Example.COM")
	if svc == nil || svc.ID != "www" {
		t.Fatalf("ServiceForName = %+v", svc)
	}
	if e.ServiceForName("www.ecommerce.example.com.") != svc || e.ServiceForName("nope.example.com") != nil {
		t.Error("ServiceForName with trailing dot or unknown name")
	}
	d := e.Decide(svc.ID, q("203.0.113.0/24", A))
	if d.Region != "west" || d.Scope != 24 || addrs(d, A) != "127.0.0.12" {
		t.Errorf("demo www for 203.0.113.0/24: %+v", d)
	}
	d = e.Decide(svc.ID, q("198.51.100.0/24", A))
	if d.Region != "east" || d.Scope != 24 || addrs(d, A) != "127.0.0.11" {
		t.Errorf("demo www for 198.51.100.0/24: %+v", d)
	}
	if d := e.Decide("nope", q("198.51.100.1", A)); d.Reason != "unknown_service" || len(d.Targets) != 0 {
		t.Errorf("unknown service: %+v", d)
	}
}

func TestUpstreams(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	e := routing.New(cfg, src, nil)
	names := func(d routing.Decision) string {
		var s []string
		for _, t := range d.Targets {
			s = append(s, t.Region+"/"+t.Endpoint)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		local  string
		down   []string
		want   string
		reason string
	}{
		{"east", nil, "east/east-1 east/east-2 east/east-6 west/west-1 west/west-6", "local"},
		{"west", nil, "west/west-1 west/west-6 east/east-1 east/east-2 east/east-6", "local"},
		{"east", []string{"web/east-1", "web/east-2", "web/east-6"}, "west/west-1 west/west-6", "nearest"},
		{"eu", nil, "east/east-1 east/east-2 east/east-6 west/west-1 west/west-6", "nearest"},
		{"east", []string{"web/east-1", "web/east-2", "web/east-6", "web/west-1", "web/west-6"},
			"east/east-1 east/east-2 east/east-6 west/west-1 west/west-6", "fail_open"},
	} {
		src.p.Store(snapshot(cfg, 1, tc.down, nil))
		d := e.Upstreams("fo", tc.local)
		if got := names(d); got != tc.want || d.Reason != tc.reason {
			t.Errorf("Upstreams(fo, %s) down %v = %q (%s), want %q (%s)", tc.local, tc.down, got, d.Reason, tc.want, tc.reason)
		}
	}
	if d := e.Upstreams("nope", "east"); d.Reason != "unknown_service" {
		t.Errorf("unknown service: %+v", d)
	}
}

func TestMetricsCountDecisionsAndAllDown(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	reg := prometheus.NewRegistry()
	e := routing.NewWithDeps(cfg, src, nil, routing.Deps{Registry: reg})
	src.p.Store(snapshot(cfg, 1, nil, nil))
	e.Decide("fo", q("3.80.1.2", A))
	e.Decide("fo", q("3.80.1.2", A))
	e.Explain("fo", q("3.80.1.2", A)) // not counted
	src.p.Store(snapshot(cfg, 2, nil, []string{"@east", "@west"}))
	e.Decide("closed", q("3.80.1.2", A))
	// A second engine (config reload) shares the registry.
	e2 := routing.NewWithDeps(cfg, src, nil, routing.Deps{Registry: reg})
	e2.Decide("fallback", q("3.80.1.2", A))

	got := gather(t, reg)
	for _, want := range []string{
		`gslb_routing_decisions_total{reason="failover",region="west",service="fo"} 2`,
		`gslb_routing_decisions_total{reason="fail_closed",region="",service="closed"} 1`,
		`gslb_routing_all_down_total{outcome="fail_closed",service="closed"} 1`,
		`gslb_routing_all_down_total{outcome="fallback",service="fallback"} 1`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("metrics lack %s; have:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func gather(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue()))
		}
	}
	return out
}

func TestFormatExplain(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	src.p.Store(snapshot(cfg, 9, []string{"web/east-1", "web/east-2"}, nil))
	e := routing.New(cfg, src, newLocator(t, cfg, geotest.SchemaGeoIP2))
	d := e.Explain("geo", q("3.80.1.2", A))
	var b strings.Builder
	if err := routing.FormatExplain(&b, d); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"service:   geo (policy geo)",
		"client:    3.80.1.2  A",
		"location:  geoip 3.80.0.0/12 US/VA/NA (38.90, -77.00)",
		"east", "west", "km",
		"rule:      nearest",
		"region:    west",
		"answer:    192.0.2.11 (west/west-1)",
		"ttl:       15 (degraded)",
		"scope:     /12",
		"region east: up but no up ipv4 endpoint, skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	if len(d.Candidates) < 2 || d.Candidates[0].Region != "east" || d.Candidates[0].Eligible || !d.Candidates[1].Eligible {
		t.Errorf("candidates = %+v", d.Candidates)
	}
}
