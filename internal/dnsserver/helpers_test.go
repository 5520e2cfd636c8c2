package dnsserver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// testYAML is a config exercising every lookup rule. Placeholders:
// EXTRA_RECORDS (more records for the first zone) and DNS_EXTRA (more dns: keys).
const testYAML = `
dns:
  listen: ["127.0.0.1:0"]
  udp_sockets: 2
DNS_EXTRA
admin:
  listen: "off"
regions:
  east: {latitude: 39, longitude: -77}
  west: {latitude: 37, longitude: -122}
pools:
  web:
    check: {type: none}
    endpoints:
      - {name: e1, region: east, address: 192.0.2.1}
      - {name: w1, region: west, address: 192.0.2.2}
      - {name: e6, region: east, address: "2001:db8::1"}
  v6only:
    check: {type: none}
    endpoints:
      - {name: e1, region: east, address: "2001:db8::2"}
services:
  www: {name: www.example.test, pool: web, policy: all, ttl: 30}
  six: {name: six.example.test, pool: v6only, policy: all, ttl: 20}
  deep: {name: svc.deep.example.test, pool: web, policy: all}
zones:
  - name: example.test
    ttl: 300
    ns: [ns1, ns2.example.test.]
    soa: {rname: hostmaster, serial: 7, minimum: 60, ttl: 3600}
    records:
      - "ns1 A 192.0.2.53"
      - "ns1 AAAA 2001:db8::53"
      - "@ MX 10 mail"
      - "@ MX 20 MAIL"
      - "mail A 192.0.2.25"
      - "@ TXT \"hello\""
      - "@ CAA 0 issue \"letsencrypt.org\""
      - "shop CNAME www"
      - "a CNAME b"
      - "b CNAME c"
      - "c A 192.0.2.3"
      - "loop1 CNAME loop2"
      - "loop2 CNAME loop1"
      - "ext CNAME www.example.org."
      - "dangling CNAME nothere"
      - "_https._tcp SRV 0 5 443 srv"
      - "srv A 192.0.2.80"
      - "*.wild A 192.0.2.99"
      - "*.wild TXT \"wild\""
      - "x.wild A 192.0.2.98"
      - "*.cn CNAME c"
      - "a.b.ent A 192.0.2.4"
      - "sub NS ns.sub"
      - "sub NS ns.elsewhere.test."
      - "ns.sub A 192.0.2.54"
      - "tolegacy CNAME host.sub"
EXTRA_RECORDS
  - name: inner.example.test
    ns: [ns1.example.test.]
    soa: {serial: 9}
    records:
      - "@ A 192.0.2.200"
`

// testConfig parses testYAML with the placeholders filled in.
func testConfig(t testing.TB, extraRecords []string, dnsExtra string) *config.Config {
	t.Helper()
	var recs strings.Builder
	for _, r := range extraRecords {
		recs.WriteString("      - " + quoteYAML(r) + "\n")
	}
	text := strings.Replace(testYAML, "EXTRA_RECORDS\n", recs.String(), 1)
	text = strings.Replace(text, "DNS_EXTRA\n", dnsExtra, 1)
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse test config: %v", err)
	}
	return cfg
}

func quoteYAML(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// engine returns the real routing engine with every endpoint healthy.
func engine(cfg *config.Config) *routing.Engine {
	return routing.New(cfg, health.StaticSource(cfg), geo.Nowhere{})
}

// recordingRouter wraps a Router, remembers the last query and can force
// the ECS scope of decisions.
type recordingRouter struct {
	Router
	scope int // -1: keep the wrapped router's scope

	mu   sync.Mutex
	last routing.Query
	n    int
}

func (r *recordingRouter) Decide(id string, q routing.Query) routing.Decision {
	r.mu.Lock()
	r.last, r.n = q, r.n+1
	r.mu.Unlock()
	d := r.Router.Decide(id, q)
	if r.scope >= 0 {
		d.Scope = r.scope
	}
	return d
}

func (r *recordingRouter) lastQuery() (routing.Query, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.n
}

// testServer is a running Server on loopback.
type testServer struct {
	*Server
	addr string
	reg  *prometheus.Registry
	// stop stops the server and returns Run's result.
	stop func() error
}

// startServer runs a Server for cfg until the test ends.
func startServer(t *testing.T, cfg *config.Config, router Router) *testServer {
	t.Helper()
	return startServerN(t, cfg, router, 1)
}

// startServerN is startServer for a config with n listen addresses.
func startServerN(t *testing.T, cfg *config.Config, router Router, n int) *testServer {
	t.Helper()
	return runServer(t, cfg, router, n, nil)
}

// runServer runs a Server for cfg, with n listen addresses, until the
// test ends or its stop is called; setup, when not nil, adjusts the
// Server before it runs.
func runServer(t *testing.T, cfg *config.Config, router Router, n int, setup func(*Server)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewServer(cfg, router, Deps{Registry: reg})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var stopOnce sync.Once
	var runErr error
	stop := func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready")
	}
	addrs := s.Addrs()
	if len(addrs) != n || addrs[0].Port() == 0 {
		t.Fatalf("Addrs() = %v", addrs)
	}
	return &testServer{Server: s, addr: addrs[0].String(), reg: reg, stop: stop}
}

// query builds a query for name and type, with an OPT record of udpSize
// when udpSize > 0.
func query(name string, qtype uint16, udpSize uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if udpSize > 0 {
		m.SetEdns0(udpSize, false)
	}
	return m
}

// exchange sends m over net ("udp" or "tcp") and returns the reply.
func exchange(t *testing.T, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], netw, err)
	}
	if r == nil {
		t.Fatalf("no reply")
	}
	return r
}

// rrStrings renders records compactly for comparisons.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

// requireTool skips the test when the tool is missing, except in CI.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (install it in .ci/run): %v", name, err)
		}
		t.Skipf("%s not installed; skipping the test that runs it against the server", name)
	}
	return p
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
