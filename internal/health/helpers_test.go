package health

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// fakeClock is a manual Clock: timers fire only when Advance passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    chan time.Time
	at   time.Time
	clk  *fakeClock
	done bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: f.now.Add(d), clk: f}
	if d <= 0 {
		t.c <- f.now
		t.done = true
		return t
	}
	f.timers = append(f.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	for i, x := range t.clk.timers {
		if x == t {
			t.clk.timers = append(t.clk.timers[:i], t.clk.timers[i+1:]...)
			break
		}
	}
	return true
}

// Advance moves time forward and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if !t.at.After(f.now) {
			t.done = true
			t.c <- f.now
			continue
		}
		kept = append(kept, t)
	}
	f.timers = kept
}

// waiters returns the number of pending timers.
func (f *fakeClock) waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// blockUntil waits until n timers are pending.
func (f *fakeClock) blockUntil(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d pending timers (have %d)", n, f.waiters())
		}
		time.Sleep(time.Millisecond)
	}
}

// tick waits until n probe timers are pending and advances the clock past
// them (interval 1s with the default jitter of 0.1).
func (f *fakeClock) tick(t *testing.T, n int) {
	t.Helper()
	f.blockUntil(t, n)
	f.Advance(1100 * time.Millisecond)
}

// zoneYAML is the minimal rest of a valid config around the pools under test.
const zoneYAML = `
zones:
  - name: example.test
    ns: [ns1]
    records: ["ns1 A 127.0.0.1"]
`

// parseConfig parses a test config: regions east and west, the given pools
// YAML (indented under "pools:"), and extra top-level YAML.
func parseConfig(t *testing.T, pools, extra string) *config.Config {
	t.Helper()
	text := "regions: {east: {}, west: {}}\npools:\n" + pools + zoneYAML + extra
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse config: %v\n%s", err, text)
	}
	return cfg
}

// hostPort splits a listener address into IP and port for config YAML.
func hostPort(t *testing.T, addr string) (string, uint16) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("parse %q: %v", addr, err)
	}
	return ap.Addr().String(), ap.Port()
}

// endpointFor builds a config endpoint pointing at a listener address.
func endpointFor(t *testing.T, addr string) *config.Endpoint {
	t.Helper()
	ip, port := hostPort(t, addr)
	return &config.Endpoint{Name: "e", Region: "east", Address: config.IP{Addr: netip.MustParseAddr(ip)}, Port: port}
}

// httpCheck returns a validated-looking http check with defaults applied.
func httpCheck(mod func(*config.Check)) config.Check {
	c := config.Check{
		Type: "http", Interval: time.Second, Timeout: 2 * time.Second, Rise: 1, Fall: 1,
		Method: "GET", Path: "/", ExpectStatus: []string{"2xx"}, BodyLimit: config.DefaultCheckBodyLimit,
	}
	if mod != nil {
		mod(&c)
	}
	return c
}

// switchServer is an HTTP server whose status can be switched and that
// counts the requests it saw.
type switchServer struct {
	*httptest.Server
	status   atomic.Int32
	requests atomic.Int64
}

func newSwitchServer(t *testing.T) *switchServer {
	t.Helper()
	s := &switchServer{}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.WriteHeader(int(s.status.Load()))
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

// hostport returns the server's listener address.
func (s *switchServer) hostport() string { return s.Listener.Addr().String() }

// tcpListener accepts and closes connections until closed.
func tcpListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

// probeResults installs a test hook that forwards every recorded probe
// result to the returned channel.
func probeResults(c *Checker) <-chan EndpointKey {
	ch := make(chan EndpointKey, 10000)
	c.mu.Lock()
	c.onProbe = func(k EndpointKey, _ Result) {
		select {
		case ch <- k:
		default:
		}
	}
	c.mu.Unlock()
	return ch
}

// waitProbe waits for the next recorded probe result of key.
func waitProbe(t *testing.T, ch <-chan EndpointKey, key EndpointKey) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case k := <-ch:
			if k == key {
				return
			}
		case <-timeout:
			t.Fatalf("no probe result for %v", key)
		}
	}
}

// startChecker runs c in the background and stops it at cleanup.
func startChecker(t *testing.T, c *Checker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond on snapshots until it holds.
func waitFor(t *testing.T, c *Checker, what string, cond func(*Snapshot) bool) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v uint64
	for {
		s := c.Snapshot()
		if cond(s) {
			return s
		}
		v = s.Version
		if _, err := c.Wait(ctx, v); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
}
