package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

func TestOutlierEjectionAndRecovery(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("east"))
	})
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}, `
feed_health: true
outlier: {consecutive_errors: 3, base_ejection_time: 300ms, max_ejection_percent: 50}`)
	feed := &feedRecorder{}
	h := startProxy(t, cfg, nil, Deps{HealthFeed: feed})

	for i := 0; i < 3; i++ {
		if code, _, region := h.get("/"); code != 500 || region != "east" {
			t.Fatalf("request %d: %d from %q, want east's 500 (500 is not retried)", i, code, region)
		}
	}
	fail.Store(false)
	hitsBefore := east.hits.Load()
	if code, body, _ := h.get("/"); code != 200 || body != "west" {
		t.Fatalf("after 3 errors: %d %q, want west (east ejected)", code, body)
	}
	if east.hits.Load() != hitsBefore {
		t.Fatal("ejected east still got traffic")
	}
	if n := h.counter("gslb_proxy_ejections_total", "pool", "p", "endpoint", "east-1"); n != 1 {
		t.Fatalf("ejections_total = %v", n)
	}
	if got := feed.list(); !slices.Equal(got, []string{"p/east-1 ejected=true"}) {
		t.Fatalf("health feed: %v", got)
	}
	// After the ejection time east serves again and the feed hears of it.
	waitFor(t, "east to return", func() bool {
		_, body, _ := h.get("/")
		return body == "east"
	})
	waitFor(t, "recovery in the health feed", func() bool {
		return slices.Equal(feed.list(), []string{"p/east-1 ejected=true", "p/east-1 ejected=false"})
	})
}

// newTestOutlier returns an outlier detector over a registry of n
// endpoints (pool "p", endpoints e0..), with a fake clock.
func newTestOutlier(t *testing.T, n int, oc config.ProxyOutlier) (*outlier, *registry, *fakeClock, *feedRecorder) {
	t.Helper()
	var eps []ep
	for i := 0; i < n; i++ {
		eps = append(eps, ep{fmt.Sprintf("e%d", i), "east", uint16(10000 + i)})
	}
	cfg := testConfig(t, eps, "")
	clock := newFakeClock()
	feed := &feedRecorder{}
	o := &outlier{cfg: oc, now: clock.Now, feed: feed, log: zap.NewNop(), m: newMetrics(prometheus.NewRegistry())}
	return o, newRegistry(cfg, "http", nil), clock, feed
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	for _, tc := range []struct {
		n, percent, want int
	}{
		{4, 50, 2},
		{4, 100, 4},
		{3, 50, 1},
		{1, 10, 1}, // at least one, like Envoy
		{10, 0, 0},
	} {
		t.Run(fmt.Sprintf("%d endpoints %d%%", tc.n, tc.percent), func(t *testing.T) {
			o, reg, clock, _ := newTestOutlier(t, tc.n, config.ProxyOutlier{
				ConsecutiveErrors: 2, BaseEjectionTime: time.Minute, MaxEjectionPercent: tc.percent})
			for _, u := range reg.pools["p"].hosts {
				for i := 0; i < 5; i++ {
					o.failure(u, "status 500")
				}
			}
			ejected := 0
			for _, u := range reg.pools["p"].hosts {
				if u.ejected(clock.Now()) {
					ejected++
				}
			}
			if ejected != tc.want {
				t.Fatalf("%d ejected, want %d", ejected, tc.want)
			}
		})
	}
}

func TestOutlierEjectionTimeGrowsAndDecays(t *testing.T) {
	base := 10 * time.Second
	o, reg, clock, feed := newTestOutlier(t, 2, config.ProxyOutlier{
		ConsecutiveErrors: 3, BaseEjectionTime: base, MaxEjectionTime: 25 * time.Second,
		Interval: time.Minute, MaxEjectionPercent: 100})
	u := reg.byKey[upstreamKey{"p", "e0"}]
	ejectFor := func() time.Duration {
		t.Helper()
		for i := 0; i < 3; i++ {
			o.failure(u, "status 503")
		}
		until := u.ejectedUntil.Load()
		if until == 0 {
			t.Fatal("not ejected")
		}
		d := time.Duration(until - clock.Now().UnixNano())
		clock.Advance(d)
		o.sweep(reg)
		if u.ejectedUntil.Load() != 0 {
			t.Fatal("not recovered after its ejection time")
		}
		return d
	}
	// Two failures then a success: no ejection.
	o.failure(u, "x")
	o.failure(u, "x")
	o.success(u)
	o.failure(u, "x")
	if u.ejectedUntil.Load() != 0 {
		t.Fatal("ejected without consecutive errors")
	}
	o.success(u)
	if d := ejectFor(); d != base {
		t.Fatalf("first ejection %v, want %v", d, base)
	}
	if d := ejectFor(); d != 2*base {
		t.Fatalf("second ejection %v, want %v", d, 2*base)
	}
	if d := ejectFor(); d != 25*time.Second {
		t.Fatalf("third ejection %v, want the 25s cap", d)
	}
	// Healthy for three intervals: the multiplier decays back to zero.
	clock.Advance(3 * time.Minute)
	if d := ejectFor(); d != base {
		t.Fatalf("after decay %v, want %v", d, base)
	}
	if n := len(feed.list()); n != 8 {
		t.Fatalf("%d feed events, want 4 ejections + 4 recoveries: %v", n, feed.list())
	}
}

func TestPickSkipsEjectedUnlessAllAre(t *testing.T) {
	o, reg, clock, _ := newTestOutlier(t, 2, config.ProxyOutlier{
		ConsecutiveErrors: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 100})
	cfg := testConfig(t, []ep{{"e0", "east", 10000}, {"e1", "east", 10001}}, "")
	rt := &runtime{px: cfg.Proxy, reg: reg, outlier: o}
	dec := routing.Decision{Targets: []routing.Target{
		{Pool: "p", Endpoint: "e0", Region: "east"}, {Pool: "p", Endpoint: "e1", Region: "east"}}}
	e0, e1 := reg.byKey[upstreamKey{"p", "e0"}], reg.byKey[upstreamKey{"p", "e1"}]
	o.failure(e0, "x")
	for i := 0; i < 4; i++ {
		u, _, _ := rt.pick(dec.Targets, nil, nil, clock.Now())
		u.release()
		if u != e1 {
			t.Fatalf("picked %s while e0 is ejected", u.endpoint)
		}
	}
	o.failure(e1, "x")
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		u, _, _ := rt.pick(dec.Targets, nil, nil, clock.Now())
		if u == nil {
			t.Fatal("no upstream while all are ejected: want them used anyway")
		}
		u.release()
		seen[u.endpoint] = true
	}
	if !seen["e0"] || !seen["e1"] {
		t.Fatalf("round robin over all-ejected endpoints: %v", seen)
	}
}

func TestSwapDisablingFeedWithdrawsEjections(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	west := newBackend(t, "west", nil)
	eps := []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}
	cfg := testConfig(t, eps, "feed_health: true\noutlier: {consecutive_errors: 1, base_ejection_time: 1h}")
	feed := &feedRecorder{}
	h := startProxy(t, cfg, nil, Deps{HealthFeed: feed})
	h.get("/")
	cfg2 := testConfig(t, eps, "outlier: {consecutive_errors: 1, base_ejection_time: 1h}")
	if err := h.srv.Swap(cfg2, routing.New(cfg2, health.StaticSource(cfg2), geo.Nowhere{})); err != nil {
		t.Fatal(err)
	}
	if got := feed.list(); !slices.Equal(got, []string{"p/east-1 ejected=true", "p/east-1 ejected=false"}) {
		t.Fatalf("health feed: %v", got)
	}
	// The proxy itself still skips east.
	if _, body, _ := h.get("/"); body != "west" {
		t.Fatalf("got %q, want west", body)
	}
}

// snapshotSource is a health.Source over one fixed snapshot.
type snapshotSource struct{ snap *health.Snapshot }

func (s snapshotSource) Snapshot() *health.Snapshot { return s.snap }

// TestPassingActiveCheckEndsEjection: an endpoint the active checker saw
// come back up after it was ejected returns at once, as in Envoy, instead
// of waiting out its ejection time.
func TestPassingActiveCheckEndsEjection(t *testing.T) {
	o, reg, clock, feed := newTestOutlier(t, 2, config.ProxyOutlier{
		ConsecutiveErrors: 2, BaseEjectionTime: time.Hour, MaxEjectionPercent: 100})
	u := reg.byKey[upstreamKey{"p", "e0"}]
	o.failure(u, "connection refused")
	o.failure(u, "connection refused")
	if !u.ejected(clock.Now()) {
		t.Fatal("not ejected")
	}
	state := health.EndpointState{Pool: "p", Endpoint: "e0", Healthy: true, Since: clock.Now().Add(-time.Minute)}
	snap := &health.Snapshot{Endpoints: map[health.EndpointKey]health.EndpointState{{Pool: "p", Endpoint: "e0"}: state}}
	o.health = snapshotSource{snap}

	clock.Advance(time.Second)
	o.sweep(reg)
	if !u.ejected(clock.Now()) {
		t.Fatal("healthy since before the ejection: must stay ejected")
	}

	state.Since = clock.Now() // the checker saw it down, then up again
	snap.Endpoints[health.EndpointKey{Pool: "p", Endpoint: "e0"}] = state
	o.sweep(reg)
	if u.ejected(clock.Now()) {
		t.Fatal("still ejected after a passing active health check")
	}
	if got := feed.list(); len(got) != 2 || got[1] != "p/e0 ejected=false" {
		t.Fatalf("feed heard %v", got)
	}
}
