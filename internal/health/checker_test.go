package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// onePool returns pools YAML for pool "web" with the given check YAML
// (flow style, without braces) and endpoints at addrs (region east).
func onePool(check string, addrs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  web:\n    check: {%s}\n    endpoints:\n", check)
	for i, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		fmt.Fprintf(&b, "      - {name: e%d, region: east, address: %s, port: %s}\n", i+1, host, port)
	}
	return b.String()
}

func TestRiseFallExactCounts(t *testing.T) {
	srv := newSwitchServer(t)
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 2, fall: 3, cold_start: assume_healthy", srv.hostport()), "")
	clk := newFakeClock()
	core, logs := observer.New(zap.InfoLevel)
	c, err := NewChecker(cfg, Deps{Clock: clk, Logger: zap.New(core), DetailInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	startChecker(t, c)

	// step lets exactly one probe happen and returns the state it produced.
	step := func(n int) EndpointState {
		t.Helper()
		clk.tick(t, 1)
		now := clk.Now()
		s := waitFor(t, c, fmt.Sprintf("probe %d", n), func(s *Snapshot) bool {
			st, _ := s.Endpoint("web", "e1")
			return st.LastCheck.Equal(now)
		})
		if got := srv.requests.Load(); got != int64(n) {
			t.Fatalf("after probe %d the server saw %d requests", n, got)
		}
		st, _ := s.Endpoint("web", "e1")
		return st
	}

	if st := step(1); !st.Healthy || !c.Snapshot().Ready {
		t.Fatalf("after a first success: healthy=%v ready=%v", st.Healthy, c.Snapshot().Ready)
	}
	srv.status.Store(http.StatusServiceUnavailable)
	for n := 2; n <= 3; n++ { // failures 1 and 2 of fall=3
		if st := step(n); !st.Healthy || st.Failures != n-1 || st.LastResult != "status 503" {
			t.Fatalf("probe %d: %+v, want healthy with %d failures", n, st, n-1)
		}
	}
	if st := step(4); st.Healthy || st.Failures != 3 {
		t.Fatalf("after exactly fall=3 failures: %+v, want unhealthy", st)
	}
	srv.status.Store(http.StatusOK)
	if st := step(5); st.Healthy || st.Successes != 1 {
		t.Fatalf("after 1 success of rise=2: %+v, want still unhealthy", st)
	}
	st := step(6)
	if !st.Healthy || st.Successes != 2 {
		t.Fatalf("after exactly rise=2 successes: %+v, want healthy", st)
	}
	if !st.Since.Equal(clk.Now()) {
		t.Fatalf("Since = %v, want the time of the transition %v", st.Since, clk.Now())
	}

	tr := c.Snapshot().Transitions
	var got []string
	for _, x := range tr {
		if x.Endpoint == "e1" {
			got = append(got, x.From+">"+x.To+":"+x.Reason)
		}
	}
	if want := []string{"up>down:status 503", "down>up:ok"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("transitions %v, want %v", got, want)
	}
	if n := logs.FilterMessage("endpoint down").FilterField(zap.String("reason", "status 503")).Len(); n != 1 {
		t.Fatalf("%d 'endpoint down' log events with reason, want 1", n)
	}
	if n := logs.FilterMessage("endpoint up").Len(); n != 1 {
		t.Fatalf("%d 'endpoint up' log events, want 1", n)
	}
	if n := logs.FilterMessage("region down").Len(); n != 1 {
		t.Fatalf("%d 'region down' log events, want 1", n)
	}
}

func TestHungEndpointDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	hung := newSwitchServer(t)
	hung.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	good := newSwitchServer(t)
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 500ms, rise: 1, fall: 1", hung.hostport(), good.hostport()), "")
	clk := newFakeClock()
	c, err := NewChecker(cfg, Deps{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	results := probeResults(c)
	startChecker(t, c)
	// With the fake clock each endpoint probes once; the good one reports
	// while the hung one is still waiting for its timeout.
	clk.blockUntil(t, 2)
	clk.Advance(100 * time.Millisecond) // first probes: within jitter*interval
	waitProbe(t, results, EndpointKey{"web", "e2"})
	if st, _ := c.Snapshot().Endpoint("web", "e1"); !st.LastCheck.IsZero() {
		t.Fatalf("hung endpoint already has a result: %+v", st)
	}
	waitProbe(t, results, EndpointKey{"web", "e1"})
	s := waitFor(t, c, "e1 result", func(s *Snapshot) bool { st, _ := s.Endpoint("web", "e1"); return !st.LastCheck.IsZero() })
	if st, _ := s.Endpoint("web", "e1"); st.Healthy || st.LastResult != "timeout" {
		t.Fatalf("hung endpoint: %+v, want unhealthy by timeout", st)
	}
	if !s.Up("web", "e2") {
		t.Fatalf("good endpoint not up")
	}
}

func TestSnapshotsAreVersionedAndImmutable(t *testing.T) {
	srv := newSwitchServer(t)
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1, cold_start: assume_unhealthy", srv.hostport()), "")
	c, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	first := c.Snapshot()
	if first.Ready || first.Up("web", "e1") {
		t.Fatalf("before any probe: ready=%v up=%v; want not ready, down (assume_unhealthy)", first.Ready, first.Up("web", "e1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, first.Version); err == nil {
		t.Fatal("Wait returned without a change")
	}
	changes := c.Changes()
	startChecker(t, c)
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("Changes did not fire")
	}
	s := waitFor(t, c, "ready and up", func(s *Snapshot) bool { return s.Ready && s.Up("web", "e1") })
	if s.Version <= first.Version {
		t.Fatalf("version %d not after %d", s.Version, first.Version)
	}
	if first.Ready || first.Up("web", "e1") {
		t.Fatal("an old snapshot changed")
	}
}

func TestDrainRegionPersistsAcrossRestart(t *testing.T) {
	srv := newSwitchServer(t)
	state := filepath.Join(t.TempDir(), "state.json")
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1", srv.hostport()), "state_file: "+state+"\n")
	web := cfg.Pools["web"]

	reg := prometheus.NewRegistry()
	core, logs := observer.New(zap.InfoLevel)
	c1, err := NewChecker(cfg, Deps{Clock: newFakeClock(), Registry: reg, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if !c1.Snapshot().RegionUp(web, "east") {
		t.Fatal("east not up before the drain")
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := c1.DrainRegion("east", Override{By: "alice", Reason: "DR test", At: at}); err != nil {
		t.Fatal(err)
	}
	s := c1.Snapshot()
	if s.RegionUp(web, "east") || s.Up("web", "e1") {
		t.Fatal("east still up after the drain")
	}
	if st, _ := s.Endpoint("web", "e1"); !st.Drained {
		t.Fatal("endpoint of a drained region not marked drained")
	}
	if got := metricValue(t, c1.metrics.regionUp.WithLabelValues("web", "east")); got != 0 {
		t.Fatalf("gslb_region_up = %v after drain", got)
	}
	if n := logs.FilterMessage("region drained").FilterField(zap.String("by", "alice")).Len(); n != 1 {
		t.Fatalf("%d 'region drained' log events by alice, want 1", n)
	}

	// A restart: a new Checker on the same state file (and registry).
	c2, err := NewChecker(cfg, Deps{Clock: newFakeClock(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	s = c2.Snapshot()
	o, ok := s.DrainedRegions["east"]
	if !ok || o.By != "alice" || o.Reason != "DR test" || !o.At.Equal(at) {
		t.Fatalf("after restart DrainedRegions = %+v, want east drained by alice", s.DrainedRegions)
	}
	if s.RegionUp(web, "east") {
		t.Fatal("restart undrained the region")
	}
	if err := c2.UndrainRegion("east", "bob"); err != nil {
		t.Fatal(err)
	}
	c3, err := NewChecker(cfg, Deps{Clock: newFakeClock(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c3.Snapshot().DrainedRegions["east"]; ok {
		t.Fatal("undrain not persisted")
	}
}

func TestDrainEndpointAndErrors(t *testing.T) {
	srv := newSwitchServer(t)
	state := filepath.Join(t.TempDir(), "state.json")
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1", srv.hostport(), srv.hostport()), "state_file: "+state+"\n")
	c, err := NewChecker(cfg, Deps{Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DrainEndpoint("web", "e1", Override{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot()
	if s.Up("web", "e1") || !s.Up("web", "e2") || !s.RegionUp(cfg.Pools["web"], "east") {
		t.Fatalf("endpoint drain: e1 up=%v e2 up=%v", s.Up("web", "e1"), s.Up("web", "e2"))
	}
	if o := s.DrainedEndpoints[EndpointKey{"web", "e1"}]; o.By != "ops" || o.At.IsZero() {
		t.Fatalf("override %+v, want by ops with a time", o)
	}
	for name, err := range map[string]error{
		"drain unknown region":     c.DrainRegion("mars", Override{By: "x"}),
		"undrain unknown region":   c.UndrainRegion("mars", "x"),
		"drain unknown endpoint":   c.DrainEndpoint("web", "nope", Override{By: "x"}),
		"drain unknown pool":       c.DrainEndpoint("nope", "e1", Override{By: "x"}),
		"undrain unknown endpoint": c.UndrainEndpoint("web", "nope", "x"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := c.UndrainEndpoint("web", "e2", "ops"); err != nil {
		t.Errorf("undrain of an undrained endpoint: %v", err)
	}
	c2, err := NewChecker(cfg, Deps{Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Snapshot().Up("web", "e1") {
		t.Fatal("endpoint drain lost across restart")
	}
	if err := c2.UndrainEndpoint("web", "e1", "ops"); err != nil || !c2.Snapshot().Up("web", "e1") {
		t.Fatalf("undrain: err=%v up=%v", err, c2.Snapshot().Up("web", "e1"))
	}
}

func TestStateFileWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	cfg := parseConfig(t, onePool("type: tcp, interval: 1s, timeout: 900ms", "127.0.0.1:9"), "state_file: "+state+"\n")
	c, err := NewChecker(cfg, Deps{Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DrainRegion("east", Override{By: "a"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DrainRegion("west", Override{By: "b"}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("state file rewritten in place, not replaced by rename")
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil || len(st.DrainedRegions) != 2 {
		t.Fatalf("state file %s: err=%v regions=%v", data, err, st.DrainedRegions)
	}
	assertOnlyFile(t, dir, "state.json")

	// When the write fails (the path became a directory), the drain is
	// refused and not applied, and no temporary file is left behind.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.UndrainRegion("east", "c"); err == nil {
		t.Fatal("undrain succeeded although the state file cannot be written")
	}
	if _, ok := c.Snapshot().DrainedRegions["east"]; !ok {
		t.Fatal("undrain applied although it was not persisted")
	}
	assertOnlyFile(t, dir, "state.json")
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, name)
	}
}

func TestCorruptStateFileIsAnError(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(state, []byte(`{"version":1,"drained_regions":{"east":`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, onePool("type: tcp, interval: 1s, timeout: 900ms", "127.0.0.1:9"), "state_file: "+state+"\n")
	_, err := NewChecker(cfg, Deps{})
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Fatalf("NewChecker with a corrupt state file: %v, want an error naming %s", err, state)
	}
}

func TestColdStartLastKnown(t *testing.T) {
	down := newSwitchServer(t)
	down.status.Store(http.StatusServiceUnavailable)
	up := newSwitchServer(t)
	state := filepath.Join(t.TempDir(), "state.json")
	pools := onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1, cold_start: last_known", down.hostport(), up.hostport())
	cfg := parseConfig(t, pools, "state_file: "+state+"\n")
	c1, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	stop := startChecker(t, c1)
	waitFor(t, c1, "e1 down, ready", func(s *Snapshot) bool { return s.Ready && !s.Up("web", "e1") })
	stop()

	// Restart with one more endpoint, never probed before.
	down2 := newSwitchServer(t)
	down2.status.Store(http.StatusServiceUnavailable)
	cfg2 := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1, cold_start: last_known",
		down.hostport(), up.hostport(), down2.hostport()), "state_file: "+state+"\n")
	c2, err := NewChecker(cfg2, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s := c2.Snapshot()
	e1, _ := s.Endpoint("web", "e1")
	e2, _ := s.Endpoint("web", "e2")
	e3, _ := s.Endpoint("web", "e3")
	if e1.Healthy || e1.LastResult != "last known (state file)" {
		t.Fatalf("e1 at warm start: %+v, want down from the state file", e1)
	}
	if !e2.Healthy || !e3.Healthy {
		t.Fatalf("e2 healthy=%v (last known up), e3 healthy=%v (unknown: assumed healthy)", e2.Healthy, e3.Healthy)
	}
	if s.Ready {
		t.Fatal("ready although e3 was never probed")
	}
	startChecker(t, c2)
	s = waitFor(t, c2, "e3 probed", func(s *Snapshot) bool { st, _ := s.Endpoint("web", "e3"); return !st.LastCheck.IsZero() })
	if !s.Ready || s.Up("web", "e3") {
		t.Fatalf("after e3's first probe: ready=%v e3 up=%v", s.Ready, s.Up("web", "e3"))
	}
}

func TestColdStartModes(t *testing.T) {
	for mode, want := range map[string]bool{"assume_healthy": true, "assume_unhealthy": false, "last_known": true} {
		cfg := parseConfig(t, onePool("type: tcp, interval: 1s, timeout: 900ms, cold_start: "+mode, "127.0.0.1:9"), "")
		c, err := NewChecker(cfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Snapshot().Up("web", "e1"); got != want || c.Snapshot().Ready {
			t.Errorf("cold_start %s: up=%v ready=%v, want up=%v, not ready", mode, got, c.Snapshot().Ready, want)
		}
	}
	cfg := parseConfig(t, onePool("type: none, cold_start: assume_unhealthy", "127.0.0.1:9"), "")
	c, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Snapshot(); !s.Up("web", "e1") || !s.Ready {
		t.Errorf("type none: up=%v ready=%v, want always healthy and ready", s.Up("web", "e1"), s.Ready)
	}
}

func TestUpdateKeepsUnchangedEndpoints(t *testing.T) {
	a := tcpListener(t)
	b := tcpListener(t)
	b2 := tcpListener(t)
	n := tcpListener(t)
	check := "type: tcp, interval: 1s, timeout: 900ms, rise: 1, fall: 1, cold_start: assume_unhealthy"
	cfg := parseConfig(t, onePool(check, a.Addr().String(), b.Addr().String()), "")
	clk := newFakeClock()
	c, err := NewChecker(cfg, Deps{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	startChecker(t, c)
	clk.tick(t, 2)
	before := waitFor(t, c, "both up", func(s *Snapshot) bool { return s.Up("web", "e1") && s.Up("web", "e2") })
	clk.blockUntil(t, 2)
	e1Before, _ := before.Endpoint("web", "e1")

	// e1 unchanged, e2 moves to another port, e3 is new; min_healthy changes
	// (pool-level, not part of the check) without restarting anything.
	pools := strings.Replace(onePool(check, a.Addr().String(), b2.Addr().String(), n.Addr().String()), "  web:\n", "  web:\n    min_healthy: 2\n", 1)
	cfg2 := parseConfig(t, pools, "")
	if err := c.Update(cfg2); err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot()
	if !before.Ready || !s.Ready {
		t.Fatalf("ready before reload %v, after %v; want ready to stay true", before.Ready, s.Ready)
	}
	e1, _ := s.Endpoint("web", "e1")
	e2, _ := s.Endpoint("web", "e2")
	if !e1.Healthy || !e1.Since.Equal(e1Before.Since) || !e1.LastCheck.Equal(e1Before.LastCheck) {
		t.Fatalf("unchanged e1 lost its state on reload: before %+v after %+v", e1Before, e1)
	}
	if e2.Healthy || !e2.LastCheck.IsZero() {
		t.Fatalf("changed e2 kept its state: %+v, want cold start (assume_unhealthy)", e2)
	}
	for _, tr := range s.Transitions {
		if tr.Endpoint == "e1" && tr.To == "down" {
			t.Fatalf("spurious flap of e1: %+v", tr)
		}
	}
	// The unchanged endpoint's goroutine kept running: still exactly one
	// timer pending for it, plus one for each of e2 and e3.
	deadline := time.Now().Add(10 * time.Second)
	for s := c.Snapshot(); !s.Up("web", "e2") || !s.Up("web", "e3"); s = c.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatal("e2 and e3 never came up")
		}
		clk.Advance(50 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	clk.blockUntil(t, 3)
	if got := clk.waiters(); got != 3 {
		t.Fatalf("%d probe timers pending after reload, want 3 (one per endpoint)", got)
	}
	// Removing endpoints stops them.
	if err := c.Update(parseConfig(t, onePool(check, a.Addr().String()), "")); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Snapshot().Endpoint("web", "e2"); ok {
		t.Fatal("removed endpoint still in the snapshot")
	}
	deadline = time.Now().Add(10 * time.Second)
	for clk.waiters() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending after removing endpoints, want 1", clk.waiters())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSetEjected(t *testing.T) {
	cfg := parseConfig(t, onePool("type: tcp, interval: 1s, timeout: 900ms", "127.0.0.1:9"), "")
	c, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	v := c.Snapshot().Version
	c.SetEjected("web", "e1", true, "5 consecutive 5xx")
	s := c.Snapshot()
	if st, _ := s.Endpoint("web", "e1"); !st.Ejected || s.Up("web", "e1") || s.Version != v+1 {
		t.Fatalf("after ejection: %+v version %d (was %d)", st, s.Version, v)
	}
	var ej []Transition
	for _, tr := range s.Transitions {
		if tr.Endpoint == "e1" {
			ej = append(ej, tr)
		}
	}
	if len(ej) != 1 || ej[0].From != "up" || ej[0].To != "ejected" || ej[0].Reason != "5 consecutive 5xx" {
		t.Fatalf("endpoint transitions %+v", ej)
	}
	c.SetEjected("web", "e1", true, "again") // no change: no new snapshot
	if c.Snapshot().Version != v+1 {
		t.Fatal("a no-op ejection published a snapshot")
	}
	c.SetEjected("web", "nope", true, "") // unknown: ignored
	c.SetEjected("web", "e1", false, "")
	if !c.Snapshot().Up("web", "e1") {
		t.Fatal("not up after the ejection ended")
	}
	for range 3 * MaxTransitions {
		c.SetEjected("web", "e1", true, "")
		c.SetEjected("web", "e1", false, "")
	}
	if n := len(c.Snapshot().Transitions); n != MaxTransitions {
		t.Fatalf("%d transitions kept, want %d", n, MaxTransitions)
	}
}

func TestMetrics(t *testing.T) {
	srv := newSwitchServer(t)
	srv.status.Store(http.StatusServiceUnavailable)
	reg := prometheus.NewRegistry()
	cfg := parseConfig(t, onePool("type: http, interval: 1s, timeout: 900ms, rise: 1, fall: 1", srv.hostport()), "")
	c, err := NewChecker(cfg, Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, c.metrics.endpointUp.WithLabelValues("web", "east", "e1")); got != 1 {
		t.Fatalf("gslb_endpoint_up before probing = %v, want 1 (assume_healthy)", got)
	}
	startChecker(t, c)
	waitFor(t, c, "down", func(s *Snapshot) bool { return !s.Up("web", "e1") })
	if got := metricValue(t, c.metrics.endpointUp.WithLabelValues("web", "east", "e1")); got != 0 {
		t.Fatalf("gslb_endpoint_up = %v, want 0", got)
	}
	if got := metricValue(t, c.metrics.regionUp.WithLabelValues("web", "east")); got != 0 {
		t.Fatalf("gslb_region_up = %v, want 0", got)
	}
	if got := metricValue(t, c.metrics.checks.WithLabelValues("web", "failure")); got < 1 {
		t.Fatalf("gslb_health_checks_total{result=failure} = %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "gslb_health_check_duration_seconds" && mf.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
			t.Fatalf("duration histogram has no samples")
		}
	}
	if got := strings.Join(names, " "); got != "gslb_endpoint_up gslb_health_check_duration_seconds gslb_health_checks_total gslb_region_up" {
		t.Fatalf("registered metrics: %s", got)
	}
}

func TestRunStopsEverything(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the servers close
	srv := newSwitchServer(t)
	dnsAddr := dnsServer(t)
	ln := tcpListener(t)
	pools := onePool("type: http, interval: 20ms, timeout: 15ms, rise: 1, fall: 1", srv.hostport()) +
		strings.Replace(onePool("type: tcp, interval: 20ms, timeout: 15ms", ln.Addr().String()), "web", "tcp", 1) +
		strings.Replace(onePool("type: dns, query: ok.test, interval: 20ms, timeout: 15ms", dnsAddr), "web", "dns", 1)
	cfg := parseConfig(t, pools, "state_file: "+filepath.Join(t.TempDir(), "s.json")+"\n")
	c, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	stop := startChecker(t, c)
	waitFor(t, c, "ready", func(s *Snapshot) bool { return s.Ready })
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("a second concurrent Run did not fail")
	}
	stop()
}

func TestThousandEndpoints(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var addrs []string
	for range 4 {
		addrs = append(addrs, tcpListener(t).Addr().String())
	}
	const n = 1000
	var b strings.Builder
	b.WriteString("  big:\n    check: {type: tcp, interval: 1s, timeout: 900ms, jitter: 0.2, rise: 1, fall: 3}\n    endpoints:\n")
	for i := range n {
		host, port, _ := strings.Cut(addrs[i%len(addrs)], ":")
		region := "east"
		if i%2 == 1 {
			region = "west"
		}
		fmt.Fprintf(&b, "      - {name: ep%d, region: %s, address: %s, port: %s}\n", i, region, host, port)
	}
	cfg := parseConfig(t, b.String(), "")
	base := runtime.NumGoroutine()
	c, err := NewChecker(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	stop := startChecker(t, c)
	waitFor(t, c, "every endpoint probed", func(s *Snapshot) bool { return s.Ready })
	peak := 0
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		peak = max(peak, runtime.NumGoroutine()-base)
		time.Sleep(50 * time.Millisecond)
	}
	// One goroutine per endpoint plus short-lived dials; never unbounded.
	if peak > 2*n+50 {
		t.Fatalf("%d goroutines above baseline for %d endpoints", peak, n)
	}
	// Every endpoint was probed again during the 2 s (interval 1 s). On a
	// loaded machine a few loopback connects may time out, so health
	// itself is not asserted here.
	s := c.Snapshot()
	if len(s.Endpoints) != n {
		t.Fatalf("%d endpoints in the snapshot, want %d", len(s.Endpoints), n)
	}
	probes := metricValue(t, c.metrics.checks.WithLabelValues("big", "success")) +
		metricValue(t, c.metrics.checks.WithLabelValues("big", "failure"))
	if probes < 2*n {
		t.Fatalf("%v probes in about 2 s of 1 s intervals for %d endpoints, want at least %d", probes, n, 2*n)
	}
	t.Logf("%v probes, peak %d goroutines above baseline", probes, peak)
	stop()
	// Run has returned; stragglers (closing sockets) must be gone soon.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine()-base > 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Run returned", runtime.NumGoroutine()-base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue reads a gauge or counter.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
