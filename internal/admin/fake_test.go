package admin

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// testToken is the admin token of the test servers.
const testToken = "s3cret-test-token"

// t0 is the fake clock's "now".
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBackend is a Backend over the embedded demo config with west down.
type fakeBackend struct {
	mu        sync.Mutex
	cfg       *config.Config
	snap      *health.Snapshot
	ready     bool
	reason    string
	reloadErr error
	reloads   int
	calls     []string
	overrides []health.Override
}

func newFakeBackend(t testing.TB) *fakeBackend {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatalf("demo config: %v", err)
	}
	snap := health.AllHealthy(cfg, t0.Add(-time.Hour))
	snap.Version = 7
	for k, st := range snap.Endpoints {
		st.LastCheck = t0.Add(-time.Second)
		st.LastResult = "ok"
		st.LastDuration = 1500 * time.Microsecond
		if st.Region == "west" {
			st.Healthy = false
			st.Since = t0.Add(-90 * time.Second)
			st.LastResult = "connection refused"
			st.LastError = "dial tcp 127.0.0.12:18080: connect: connection refused"
			st.Failures = 3
		}
		snap.Endpoints[k] = st
	}
	snap.Transitions = []health.Transition{
		{At: t0.Add(-90 * time.Second), Pool: "storefront", Endpoint: "west-1", Region: "west", From: "up", To: "down", Reason: "connection refused"},
		{At: t0.Add(-89 * time.Second), Pool: "api", Endpoint: "west-1", Region: "west", From: "up", To: "down", Reason: "connection refused"},
	}
	return &fakeBackend{cfg: cfg, snap: snap, ready: true}
}

func (f *fakeBackend) Ready() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready, f.reason
}

func (f *fakeBackend) setReady(ok bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready, f.reason = ok, reason
}

func (f *fakeBackend) Config() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeBackend) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{
		Config:        f.cfg,
		ConfigVersion: fmt.Sprintf("sha256:abc123-%d", f.reloads),
		LoadedAt:      t0.Add(-2 * time.Hour),
		Health:        f.snap,
		Preferred: map[string]routing.Decision{
			"www": {Service: "www", Region: "east", Reason: "nearest", Degraded: true,
				Targets: []routing.Target{{Pool: "storefront", Endpoint: "east-1", Region: "east", Addr: netip.MustParseAddr("127.0.0.11"), Port: 18080}}},
			"api": {Service: "api", Region: "east", Reason: "failover", Degraded: true,
				Targets: []routing.Target{{Pool: "api", Endpoint: "east-1", Region: "east", Addr: netip.MustParseAddr("127.0.0.11"), Port: 18080}}},
		},
	}
	if f.reloads > 0 {
		st.LastReload = ReloadResult{At: t0, Trigger: "api", Err: f.reloadErr}
	}
	return st
}

func (f *fakeBackend) Explain(name string, qtype uint16, client netip.Addr) (routing.Decision, error) {
	if name != "www.ecommerce.example.com." {
		return routing.Decision{}, fmt.Errorf("name %s: %w", name, ErrNotFound)
	}
	d := routing.Decision{
		Service: "www", Region: "east", Reason: "cidr_map", TTL: 30, Scope: 24,
		Targets: []routing.Target{{Pool: "storefront", Endpoint: "east-1", Region: "east", Addr: netip.MustParseAddr("127.0.0.11"), Port: 18080}},
		Trace:   []string{fmt.Sprintf("client %s qtype %s", client, dns.TypeToString[qtype]), "cidr_map 198.51.100.0/24 -> east", "east up (1/1 storefront)"},
	}
	return d, nil
}

func (f *fakeBackend) record(call string, o *health.Override) {
	f.calls = append(f.calls, call)
	if o != nil {
		f.overrides = append(f.overrides, *o)
	}
}

// cloneSnap copies the snapshot so published ones stay immutable.
func (f *fakeBackend) cloneSnap() *health.Snapshot {
	s := *f.snap
	s.Version++
	s.DrainedRegions = maps.Clone(s.DrainedRegions)
	s.DrainedEndpoints = maps.Clone(s.DrainedEndpoints)
	s.Endpoints = maps.Clone(s.Endpoints)
	return &s
}

func (f *fakeBackend) DrainRegion(region string, o health.Override) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("drain_region "+region, &o)
	s := f.cloneSnap()
	s.DrainedRegions[region] = o
	f.snap = s
	return nil
}

func (f *fakeBackend) UndrainRegion(region, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("undrain_region "+region+" by="+by, nil)
	s := f.cloneSnap()
	delete(s.DrainedRegions, region)
	f.snap = s
	return nil
}

func (f *fakeBackend) DrainEndpoint(pool, endpoint string, o health.Override) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("drain_endpoint "+pool+"/"+endpoint, &o)
	s := f.cloneSnap()
	k := health.EndpointKey{Pool: pool, Endpoint: endpoint}
	s.DrainedEndpoints[k] = o
	st := s.Endpoints[k]
	st.Drained = true
	s.Endpoints[k] = st
	f.snap = s
	return nil
}

func (f *fakeBackend) UndrainEndpoint(pool, endpoint, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("undrain_endpoint "+pool+"/"+endpoint+" by="+by, nil)
	s := f.cloneSnap()
	k := health.EndpointKey{Pool: pool, Endpoint: endpoint}
	delete(s.DrainedEndpoints, k)
	st := s.Endpoints[k]
	st.Drained = false
	s.Endpoints[k] = st
	f.snap = s
	return nil
}

func (f *fakeBackend) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.record("reload", nil)
	return f.reloadErr
}

func (f *fakeBackend) lastCalls() ([]string, []health.Override) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]health.Override(nil), f.overrides...)
}

// testEnv is an admin server behind a real loopback HTTP server.
type testEnv struct {
	srv     *Server
	backend *fakeBackend
	reg     *prometheus.Registry
	http    *httptest.Server
}

func newTestEnv(t testing.TB, cfg config.AdminConfig, logger *zap.Logger) *testEnv {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	fb := newFakeBackend(t)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, fb, Deps{Logger: logger, Registry: reg, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &testEnv{srv: s, backend: fb, reg: reg, http: hs}
}

func withToken() config.AdminConfig {
	return config.AdminConfig{Token: testToken, MaxBodyBytes: 1024}
}

// do sends a request and returns the status, headers and body.
func (e *testEnv) do(t testing.TB, method, path, token, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(b)
}
