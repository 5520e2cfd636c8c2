package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

const testHost = "www.example.com"

// ep describes one test endpoint.
type ep struct {
	name, region string
	port         uint16
}

// backend is a real HTTP server on loopback counting its hits.
type backend struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func (b *backend) port() uint16 {
	return netip.MustParseAddrPort(b.Listener.Addr().String()).Port()
}

// newBackend starts a backend answering with h, or with its name when h is nil.
func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }
	}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParseAddrPort(l.Addr().String()).Port()
	l.Close()
	return p
}

// testConfig builds a validated config with one pool "p" of eps, service
// "s" routed from testHost, and extra YAML lines under proxy:.
func testConfig(t testing.TB, eps []ep, proxyExtra string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("regions: {east: {}, west: {}, central: {}}\npools:\n  p:\n    check: {type: none}\n    endpoints:\n")
	for _, e := range eps {
		fmt.Fprintf(&b, "      - {name: %s, region: %s, address: 127.0.0.1, port: %d}\n", e.name, e.region, e.port)
	}
	b.WriteString(`services:
  s: {pool: p, policy: failover, regions: [east, west, central]}
zones:
  - name: example.com
    ns: [ns1]
    records: ["ns1 A 127.0.0.1"]
proxy:
`)
	// Lines of proxyExtra replace base lines with the same key.
	base := []string{
		`listen: ["127.0.0.1:0"]`,
		`local_region: east`,
		`routes: [{host: ` + testHost + `, service: s}]`,
		`rate_limit: {requests_per_second: -1}`,
	}
	extra := strings.Split(strings.TrimSpace(proxyExtra), "\n")
	for _, line := range base {
		key := line[:strings.Index(line, ":")+1]
		overridden := false
		for _, x := range extra {
			if strings.HasPrefix(x, key) {
				overridden = true
			}
		}
		if !overridden {
			b.WriteString("  " + line + "\n")
		}
	}
	for _, line := range extra {
		if line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
	cfg, err := config.Parse("test.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// feedRecorder is a HealthFeed that remembers what it was told.
type feedRecorder struct {
	mu     sync.Mutex
	events []string
}

func (f *feedRecorder) SetEjected(pool, endpoint string, ejected bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf("%s/%s ejected=%v", pool, endpoint, ejected))
}

func (f *feedRecorder) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// harness is a running proxy with a client.
type harness struct {
	t      testing.TB
	srv    *Server
	reg    *prometheus.Registry
	url    string
	client *http.Client
	// stop stops the proxy (as the test's end does) and returns Run's error.
	stop func() error
}

// startProxy runs a Server for cfg (router from health.StaticSource unless
// given) until the test ends.
func startProxy(t testing.TB, cfg *config.Config, router Router, deps Deps) *harness {
	t.Helper()
	if router == nil {
		router = routing.New(cfg, health.StaticSource(cfg), geo.Nowhere{})
	}
	reg := prometheus.NewRegistry()
	deps.Registry = reg
	if deps.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			deps.Logger = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
		}
	}
	s, err := New(cfg, router, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("proxy did not start: %v", err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	h := &harness{t: t, srv: s, reg: reg, url: "http://" + s.Addrs()[0].String(),
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// do sends a request for testHost to the proxy.
func (h *harness) do(method, path string, body io.Reader, hdr ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = testHost
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// get sends a GET and returns status, body and the region header.
func (h *harness) get(path string, hdr ...string) (int, string, string) {
	h.t.Helper()
	resp := h.do(http.MethodGet, path, nil, hdr...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get(RegionHeader)
}

// counter reads a counter of the proxy's registry.
func (h *harness) counter(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	return 0
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
