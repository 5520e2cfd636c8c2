package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoConfigLoads(t *testing.T) {
	cfg, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Demo || cfg.DNS.Listen[0] != "127.0.0.1:5353" || cfg.Admin.Listen != "127.0.0.1:9090" {
		t.Fatalf("unexpected demo listeners: %+v %+v", cfg.DNS.Listen, cfg.Admin)
	}
	www := cfg.Services["www"]
	if www.Name != "www.ecommerce.example.com." || www.Zone != "ecommerce.example.com." {
		t.Fatalf("www service name/zone = %q/%q", www.Name, www.Zone)
	}
	if got := strings.Join(www.Regions, ","); got != "east,west" {
		t.Fatalf("www regions = %s", got)
	}
	z := cfg.Zones[0]
	if z.SOA.MName != "ns1.ecommerce.example.com." || z.SOA.Minimum != 60 {
		t.Fatalf("SOA defaults: %+v", z.SOA)
	}
	if cfg.Proxy == nil || cfg.Proxy.LocalRegion != "east" {
		t.Fatalf("proxy: %+v", cfg.Proxy)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte(`
regions: {east: {}}
pools:
  p:
    endpoints: [{region: east, address: 192.0.2.1}]
services:
  www: {pool: p}
zones:
  - name: Example.COM
    ns: [ns1.example.com.]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DNS.UDPSize != DefaultUDPSize || cfg.DNS.Listen[0] != DefaultDNSListen || cfg.DNS.UDPReader != UDPReaderThread {
		t.Fatalf("dns defaults: %+v", cfg.DNS)
	}
	ch := cfg.Pools["p"].Check
	if ch.Rise != DefaultCheckRise || ch.Fall != DefaultCheckFall || ch.Interval != DefaultCheckInterval || ch.ExpectStatus[0] != "2xx" {
		t.Fatalf("check defaults: %+v", ch)
	}
	ep := cfg.Pools["p"].Endpoints[0]
	if ep.Name != "east-1" || ep.Port != 80 || ep.Weight != 1 {
		t.Fatalf("endpoint defaults: %+v", ep)
	}
	if cfg.Zones[0].Name != "example.com." || cfg.Services["www"].Name != "www.example.com." {
		t.Fatalf("names not canonical: %s %s", cfg.Zones[0].Name, cfg.Services["www"].Name)
	}
	if cfg.Services["www"].DegradedTTL != DefaultServiceTTL/2 {
		t.Fatalf("degraded ttl %d", cfg.Services["www"].DegradedTTL)
	}
}

func errorsOf(t *testing.T, err error) []Error {
	t.Helper()
	var ce *Errors
	if !errors.As(err, &ce) {
		t.Fatalf("want *Errors, got %T %v", err, err)
	}
	return ce.List
}

func TestThreeMistakesAllReported(t *testing.T) {
	text := `regions:
  east: {latitude: 39, longitude: -77}
pools:
  storefront:
    endpoints:
      - {region: east, address: 10.0.0.300}
services:
  www:
    pool: storefrnt
zones:
  - name: example.com
    ns: [ns1]
    records:
      - "www2 IN A not-an-ip"
    colour: blue
`
	_, err := Parse("gslb.yaml", []byte(text))
	if err == nil {
		t.Fatal("want errors")
	}
	list := errorsOf(t, err)
	want := []string{
		`gslb.yaml:6: pools.storefront.endpoints[0].address: invalid IP address "10.0.0.300"`,
		`gslb.yaml:9: services.www.pool: unknown pool "storefrnt"`,
		`gslb.yaml:15: zones[0].colour: unknown field "colour"`,
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in:\n%s", w, joined)
		}
	}
	if !strings.Contains(joined, "gslb.yaml:14: zones[0].records[0]: invalid record") {
		t.Errorf("bad record not reported:\n%s", joined)
	}
}

func TestValidationErrors(t *testing.T) {
	base := `regions: {east: {}, west: {}}
pools:
  p:
    endpoints: [{region: east, address: 192.0.2.1}]
zones:
  - name: example.com
    ns: [ns1]
`
	cases := []struct{ name, extra, want string }{
		{"unknown region", "services: {www: {pool: p, regions: [north]}}\n", `services.www.regions[0]: unknown region "north"`},
		{"bad policy", "services: {www: {pool: p, policy: random}}\n", `services.www.policy: unknown policy "random"`},
		{"fallback needs addresses", "services: {www: {pool: p, when_all_down: fallback}}\n", `services.www.fallback: when_all_down: fallback needs fallback addresses`},
		{"weighted needs weights", "services: {www: {pool: p, policy: weighted}}\n", `services.www.weights: the weighted policy needs weights`},
		{"name outside zones", "services: {www: {pool: p, name: www.example.org}}\n", `www.example.org. is in no configured zone`},
		{"bad cidr", "geo: {cidr_maps: [{cidr: 192.0.2.1/24, region: east}]}\nservices: {www: {pool: p}}\n", `host bits set`},
		{"proxy local region", "services: {www: {pool: p}}\nproxy: {listen: [\"127.0.0.1:8080\"], local_region: mars, routes: [{host: a, service: www}]}\n", `proxy.local_region: unknown region "mars"`},
		{"bad duration", "services: {www: {pool: p}}\ndns: {tcp_idle_timeout: soon}\n", `dns.tcp_idle_timeout`},
		{"bad udp_reader", "services: {www: {pool: p}}\ndns: {udp_reader: epoll}\n", `c.yaml:9: dns.udp_reader: udp_reader "epoll": want "thread" or "netpoll"`},
		{"valid", "services: {www: {pool: p}}\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(base+tc.extra))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `admin: {token_file: token}
state_file: state.json
regions: {east: {}}
pools: {p: {endpoints: [{region: east, address: "2001:db8::1"}]}}
services: {www: {pool: p}}
zones: [{name: example.com, ns: [ns1]}]
`
	file := filepath.Join(dir, "gslb.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.TokenFile != filepath.Join(dir, "token") || cfg.StateFile != filepath.Join(dir, "state.json") {
		t.Fatalf("paths not resolved: %q %q", cfg.Admin.TokenFile, cfg.StateFile)
	}
	if !cfg.Pools["p"].Endpoints[0].Address.Is6() {
		t.Fatal("IPv6 endpoint not parsed")
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("regions:\n  east: [\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml:") {
		t.Fatalf("got %v", err)
	}
}

// TestZeroMeansZeroWhereItIsAChoice: fields where 0 disables something keep
// an explicit 0 and take the default only when absent.
func TestZeroMeansZeroWhereItIsAChoice(t *testing.T) {
	text := `dns: {cache_size: 0, max_queries_per_tcp_connection: 0, rrl: {slip: 0}}
regions: {east: {}}
pools:
  p:
    endpoints:
      - {region: east, address: 192.0.2.1, weight: 0}
      - {region: east, address: 192.0.2.2}
services: {www: {pool: p}}
zones: [{name: example.com, ns: [ns1]}]
proxy:
  listen: ["127.0.0.1:0"]
  local_region: east
  routes: [{host: www.example.com, service: www}]
  retries: {attempts: 0}
  outlier: {max_ejection_percent: 0}
  fast_http1: false
`
	cfg, err := Parse("zero.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DNS.CacheSize != 0 || cfg.DNS.MaxQueriesPerTCPConnection != 0 || cfg.DNS.RRL.Slip != 0 {
		t.Fatalf("explicit zeros replaced: %+v", cfg.DNS)
	}
	if cfg.Proxy.Retries.Attempts != 0 || cfg.Proxy.Outlier.MaxEjectionPercent != 0 || cfg.Proxy.FastHTTP1 {
		t.Fatalf("explicit proxy zeros replaced: %+v %+v fast_http1 %v", cfg.Proxy.Retries, cfg.Proxy.Outlier, cfg.Proxy.FastHTTP1)
	}
	on, err := Parse("on.yaml", []byte(strings.Replace(text, "  fast_http1: false\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !on.Proxy.FastHTTP1 {
		t.Fatal("proxy.fast_http1 not on by default")
	}
	eps := cfg.Pools["p"].Endpoints
	if eps[0].Weight != 0 || eps[1].Weight != 1 {
		t.Fatalf("weights %d %d, want 0 (explicit) and 1 (default)", eps[0].Weight, eps[1].Weight)
	}
	def, err := Parse("def.yaml", []byte(`regions: {east: {}}
pools: {p: {endpoints: [{region: east, address: 192.0.2.1}]}}
services: {www: {pool: p}}
zones: [{name: example.com, ns: [ns1]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if def.DNS.CacheSize != DefaultCacheSize || def.DNS.RRL.Slip != DefaultRRLSlip || def.DNS.MaxQueriesPerTCPConnection != DefaultMaxQueriesPerTCPConnection {
		t.Fatalf("defaults not applied when absent: %+v", def.DNS)
	}
}

func TestCNAMEMustBeAlone(t *testing.T) {
	base := `regions: {east: {}}
pools: {p: {endpoints: [{region: east, address: 192.0.2.1}]}}
services: {www: {pool: p}}
zones:
  - name: example.com
    ns: [ns1]
    records:
`
	for _, tc := range []struct{ records, want string }{
		{"      - \"shop CNAME www\"\n      - \"shop TXT hello\"\n", "gslb.yaml:9: zones[0].records[1]: shop.example.com. has a CNAME (records[0])"},
		{"      - \"shop TXT hello\"\n      - \"shop CNAME www\"\n", "gslb.yaml:9: zones[0].records[1]: shop.example.com. has other data (records[0])"},
		{"      - \"shop CNAME www\"\n      - \"shop CNAME mail\"\n", "already has a CNAME"},
		{"      - \"@ CNAME www\"\n", "has other data (the zone's SOA and NS)"},
	} {
		_, err := Parse("gslb.yaml", []byte(base+tc.records))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("records %q: want %q, got %v", tc.records, tc.want, err)
		}
	}
}
