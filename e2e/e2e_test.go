package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bounds of the scenarios, from the world's timing.
var (
	// failoverBound: an endpoint is marked down after fall failed probes,
	// then the resolver's cached answer expires.
	failoverBound = checkInterval*checkFall + serviceTTL + margin
	// recoveryBound: rise successful probes, then one TTL.
	recoveryBound = checkInterval*checkRise + serviceTTL + margin
	// drainBound: a drain is immediate; only the cached answer remains.
	drainBound = serviceTTL + margin
)

// TestEastWest builds the two-region world once and runs the runbook's
// scenarios against it in order. Each scenario starts from the steady
// state (every client resolves its own region) and restores it.
func TestEastWest(t *testing.T) {
	w := setupWorld(t)
	sum := &summary{}
	t.Cleanup(func() {
		t.Logf("measured times (interval %s, fall %d, rise %d, TTL %s):\n%s",
			checkInterval, checkFall, checkRise, serviceTTL, sum)
	})

	t.Run("1_clients_resolve_own_region", func(t *testing.T) { scenarioOwnRegion(t, w) })
	t.Run("2_east_ingress_killed", func(t *testing.T) { scenarioIngressKilled(t, w, sum) })
	t.Run("3_drain_east_via_admin_api", func(t *testing.T) { scenarioDrain(t, w, sum) })
	t.Run("4_ns1_killed", func(t *testing.T) { scenarioNS1Killed(t, w, sum) })
	t.Run("5_all_regions_down_fail_open", func(t *testing.T) { scenarioAllDown(t, w, sum) })
}

// scenarioOwnRegion: clients of each subnet resolve the service through
// Unbound with the real dig and get their own region's ingress.
func scenarioOwnRegion(t *testing.T, w *world) {
	w.waitBaseline(t, 15*time.Second)
	for _, c := range []struct{ from, want, region string }{
		{eastClient, eastIngress, "east"},
		{westClient, westIngress, "west"},
	} {
		out, err := digShort(w.client, c.from, resolverAddr, serviceName)
		if err != nil {
			t.Fatalf("dig from %s: %v", c.from, err)
		}
		if !sameSet(out, c.want) {
			t.Errorf("dig @%s -b %s %s: got %v, want [%s] (the %s ingress)", resolverAddr, c.from, serviceName, out, c.want, c.region)
		} else {
			t.Logf("dig @%s -b %s %s → %v (%s)", resolverAddr, c.from, serviceName, out, c.region)
		}
	}
	// Through the east proxy, a request is served by the local region.
	ev := getOnce(context.Background(), httpClient(w.client, eastClient, 5*time.Second), addrPort(ns1Addr, proxyPort), 0)
	if ev.err != "" || ev.region != "east" {
		t.Errorf("GET via the east proxy: region %q, error %q; want served by east", ev.region, ev.err)
	}
}

// digShort runs `dig +short` from inside ns and returns the addresses.
func digShort(ns, from, server, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns,
		"dig", "@"+server, "-b", from, "+short", "+time=3", "+tries=2", name, "A").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig: %w: %s", err, oneLine(string(out)))
	}
	var addrs []string
	for _, f := range strings.Fields(string(out)) {
		if isAddr(f) {
			addrs = append(addrs, f)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// expectResolve polls until the client at from resolves the service to
// exactly want, at most bound after since (the event being measured); it
// returns the time from since until the answer was seen.
func (w *world) expectResolve(t *testing.T, what, from string, since time.Time, bound time.Duration, want ...string) time.Duration {
	t.Helper()
	var last string
	_, ok := poll(time.Until(since.Add(bound)), 100*time.Millisecond, func() bool {
		got, err := w.resolve(context.Background(), from)
		last = fmt.Sprintf("%v (err %v)", got, err)
		return err == nil && sameSet(got, want...)
	})
	elapsed := time.Since(since)
	if !ok {
		t.Errorf("%s: client %s did not resolve %s to %v within %s; last answer %s", what, from, serviceName, want, secs(bound), last)
		return elapsed
	}
	t.Logf("%s: client %s resolves to %v %s after the event (bound %s)", what, from, want, secs(elapsed), secs(bound))
	return elapsed
}

// scenarioIngressKilled: east's ingress dies; east clients move to west
// within interval×fall + TTL (+margin) while the east proxy keeps serving
// every request via west; east comes back and traffic returns.
func scenarioIngressKilled(t *testing.T, w *world, sum *summary) {
	w.waitBaseline(t, 15*time.Second)
	proxy := addrPort(ns1Addr, proxyPort)
	s := w.startStream(eastClient, proxy, 50*time.Millisecond)
	defer s.stop()
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool { return s.stats().byRegion["east"] >= 3 }); !ok {
		st := s.stats()
		t.Fatalf("east proxy does not serve via east before the failure: %+v", st)
	}

	tKill := time.Now()
	w.proc("ingress-east").kill()
	dnsFail := w.expectResolve(t, "east ingress killed", eastClient, tKill, failoverBound, westIngress)
	if got, err := w.resolve(context.Background(), westClient); err != nil || !sameSet(got, westIngress) {
		t.Errorf("west client during east outage: got %v (%v), want [%s]", got, err, westIngress)
	}
	proxyFail := "not seen in 5s"
	if at, ok := waitFirst(s, tKill, "west", 5*time.Second); ok {
		proxyFail = secs(at.Sub(tKill)) + " after the kill"
	} else {
		t.Errorf("east proxy never served via west after the east ingress died")
	}

	tRestore := time.Now()
	w.mustStart(t, w.ingressCmd("east"))
	dnsBack := w.expectResolve(t, "east ingress restored", eastClient, tRestore, recoveryBound, eastIngress)
	proxyBack := "not seen within " + secs(recoveryBound)
	if at, ok := waitFirst(s, tRestore, "east", recoveryBound); ok {
		proxyBack = secs(at.Sub(tRestore))
	} else {
		t.Errorf("east proxy did not return to the east ingress within %s of its restart", recoveryBound)
	}
	// Keep the stream going a little past the return, then judge it.
	time.Sleep(300 * time.Millisecond)
	s.stop()
	st := s.stats()
	t.Logf("east proxy stream: %d requests, %d failed, by region %v", st.total, st.failed, st.byRegion)
	if st.failed > 0 {
		t.Errorf("east proxy stream: %d of %d requests failed during the east outage; first: %v", st.failed, st.total, st.failures)
	}
	if st.byRegion["west"] == 0 {
		t.Errorf("east proxy stream: no request was served via west during the east outage")
	}
	sum.add("2. east ingress killed → east clients resolve west (via Unbound): %s (bound %s)", secs(dnsFail), secs(failoverBound))
	sum.add("2. east ingress killed → east proxy serves via west: %s; %d/%d requests failed", proxyFail, st.failed, st.total)
	sum.add("2. east ingress restored → east clients resolve east: %s (bound %s); proxy back to east: %s", secs(dnsBack), secs(recoveryBound), proxyBack)
}

// waitFirst polls a stream until a request at or after since was served by
// region.
func waitFirst(s *stream, since time.Time, region string, timeout time.Duration) (time.Time, bool) {
	var at time.Time
	_, ok := poll(timeout, 50*time.Millisecond, func() bool {
		var found bool
		at, found = s.firstSince(since, region)
		return found
	})
	return at, ok
}

// statusRegions is the part of GET /api/v1/status the suite reads.
type statusRegions struct {
	Regions []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"regions"`
}

// regionState returns a region's state from an instance's status API.
func (w *world) regionState(host, region string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := w.adminCall(ctx, "GET", host, "/api/v1/status", w.token, "")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("GET /api/v1/status on %s: status %d: %s", host, code, oneLine(body))
	}
	var doc statusRegions
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return "", fmt.Errorf("decode /api/v1/status of %s: %w", host, err)
	}
	for _, r := range doc.Regions {
		if r.Name == region {
			return r.State, nil
		}
	}
	return "", fmt.Errorf("/api/v1/status of %s has no region %q", host, region)
}

// adminAll calls the same admin endpoint on both instances, expecting 2xx.
func (w *world) adminAll(t *testing.T, method, path, body string) {
	t.Helper()
	for _, host := range []string{ns1Addr, ns2Addr} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, resp, err := w.adminCall(ctx, method, host, path, w.token, body)
		cancel()
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, host, err)
		}
		if code < 200 || code > 299 {
			t.Fatalf("%s %s on %s: status %d: %s", method, path, host, code, oneLine(resp))
		}
	}
}

// scenarioDrain: the runbook's disaster-recovery drain of east, done
// through the admin API of both instances; undrain restores.
func scenarioDrain(t *testing.T, w *world, sum *summary) {
	w.waitBaseline(t, 15*time.Second)
	const drainPath = "/api/v1/regions/east/drain"
	const undrainPath = "/api/v1/regions/east/undrain"

	// Without the token, nothing happens.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	code, body, err := w.adminCall(ctx, "POST", ns1Addr, drainPath, "", `{"reason":"no token"}`)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if code != 401 && code != 403 {
		t.Errorf("drain without a token: status %d (%s), want 401 or 403", code, oneLine(body))
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	code, _, err = w.adminCall(ctx, "POST", ns1Addr, drainPath, "wrong-"+w.token, "")
	cancel()
	if err == nil && code != 401 && code != 403 {
		t.Errorf("drain with a wrong token: status %d, want 401 or 403", code)
	}
	if st, err := w.regionState(ns1Addr, "east"); err != nil || st == "drained" {
		t.Errorf("after unauthorised drains, east on ns1 is %q (%v); want not drained", st, err)
	}

	undrained := false
	t.Cleanup(func() {
		if !undrained {
			for _, host := range []string{ns1Addr, ns2Addr} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _, _ = w.adminCall(ctx, "POST", host, undrainPath, w.token, "")
				cancel()
			}
		}
	})
	tDrain := time.Now()
	w.adminAll(t, "POST", drainPath, `{"reason":"e2e: DR drain of east (runbook)"}`)
	for _, host := range []string{ns1Addr, ns2Addr} {
		if st, err := w.regionState(host, "east"); err != nil || st != "drained" {
			t.Errorf("status of %s after drain: east is %q (%v), want drained", host, st, err)
		}
	}
	// The east proxy stops sending to the drained region.
	pc := httpClient(w.client, eastClient, 5*time.Second)
	var last streamEvent
	_, ok := poll(time.Until(tDrain.Add(drainBound)), 100*time.Millisecond, func() bool {
		last = getOnce(context.Background(), pc, addrPort(ns1Addr, proxyPort), 0)
		return last.region == "west"
	})
	proxyGone := secs(time.Since(tDrain))
	if !ok {
		proxyGone = "not seen within " + secs(drainBound)
		t.Errorf("east proxy still not serving via west %s after the drain: last region %q error %q", secs(drainBound), last.region, last.err)
	}
	eastGone := w.expectResolve(t, "east drained", eastClient, tDrain, drainBound, westIngress)
	w.expectResolve(t, "east drained", westClient, tDrain, drainBound, westIngress)

	tUndrain := time.Now()
	w.adminAll(t, "POST", undrainPath, "")
	undrained = true
	back := w.expectResolve(t, "east undrained", eastClient, tUndrain, drainBound, eastIngress)
	if st, err := w.regionState(ns2Addr, "east"); err != nil || st == "drained" {
		t.Errorf("status of ns2 after undrain: east is %q (%v)", st, err)
	}
	sum.add("3. drain east on both instances → east clients resolve west: %s (bound %s); east proxy via west: %s",
		secs(eastGone), secs(drainBound), proxyGone)
	sum.add("3. undrain east → east clients resolve east: %s (bound %s)", secs(back), secs(drainBound))
}

// scenarioNS1Killed: the east name server dies; resolution through Unbound
// keeps working via ns2 for every client, beyond the cached TTL.
func scenarioNS1Killed(t *testing.T, w *world, sum *summary) {
	w.waitBaseline(t, 15*time.Second)
	t.Cleanup(func() { w.ensureRunning(t) })
	tKill := time.Now()
	w.proc("gslb-east").kill()
	if _, err := resolveVia(context.Background(), w.client, eastClient, addrPort(ns1Addr, "53"), serviceName, time.Second); err == nil {
		t.Fatalf("ns1 still answers after it was killed")
	}
	// Query for two TTLs and more, so that Unbound must go back to the
	// authoritative servers at least once after ns1 died.
	window := 2*serviceTTL + 2*time.Second
	var n, failed int
	var slowest time.Duration
	var failures []string
	for time.Since(tKill) < window {
		for _, c := range []struct{ from, want string }{{eastClient, eastIngress}, {westClient, westIngress}} {
			start := time.Now()
			got, err := w.resolve(context.Background(), c.from)
			d := time.Since(start)
			n++
			slowest = max(slowest, d)
			if err != nil || !sameSet(got, c.want) {
				failed++
				if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("+%s %s: %v %v", secs(time.Since(tKill)), c.from, got, err))
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("with ns1 down: %d resolutions, %d failed or wrong, slowest %s", n, failed, secs(slowest))
	if failed > 0 {
		t.Errorf("with ns1 down, %d of %d resolutions through Unbound failed or were wrong: %v", failed, n, failures)
	}
	sum.add("4. ns1 killed → %d resolutions over %s via ns2, %d failed, slowest %s", n, secs(window), failed, secs(slowest))

	// Bring ns1 back for the next scenario.
	w.ensureRunning(t)
}

// allDownMetrics are substrings of the metric names counting answers given
// while every region is down.
var allDownMetrics = []string{"all_down", "fail_open"}

// allDownCount sums the all-down metrics of both instances.
func (w *world) allDownCount(t *testing.T) (float64, []string) {
	t.Helper()
	var total float64
	var names []string
	for _, host := range []string{ns1Addr, ns2Addr} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, body, err := w.adminCall(ctx, "GET", host, "/metrics", "", "")
		cancel()
		if err != nil || code != 200 {
			t.Errorf("GET /metrics on %s: %d %v", host, code, err)
			continue
		}
		v, n := metricSum(body, allDownMetrics...)
		total += v
		for _, name := range n {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return total, names
}

// scenarioAllDown: every ingress dies; answers fail open with every
// endpoint, and the all-down metric counts it; recovery restores geo.
func scenarioAllDown(t *testing.T, w *world, sum *summary) {
	w.waitBaseline(t, 15*time.Second)
	before, _ := w.allDownCount(t)
	t.Cleanup(func() { w.ensureRunning(t) })
	tKill := time.Now()
	w.proc("ingress-east").kill()
	w.proc("ingress-west").kill()
	openE := w.expectResolve(t, "all regions down", eastClient, tKill, failoverBound, eastIngress, westIngress)
	openW := w.expectResolve(t, "all regions down", westClient, tKill, failoverBound, eastIngress, westIngress)
	var after float64
	var names []string
	_, ok := poll(margin, 200*time.Millisecond, func() bool {
		after, names = w.allDownCount(t)
		return len(names) > 0 && after > before
	})
	if !ok {
		t.Errorf("all-down metric: names matching %v = %v, value %v before and %v after; want a metric that grew", allDownMetrics, names, before, after)
	} else {
		t.Logf("all-down metric %v: %v → %v", names, before, after)
	}

	tRestore := time.Now()
	w.mustStart(t, w.ingressCmd("east"))
	w.mustStart(t, w.ingressCmd("west"))
	backE := w.expectResolve(t, "regions restored", eastClient, tRestore, recoveryBound, eastIngress)
	backW := w.expectResolve(t, "regions restored", westClient, tRestore, recoveryBound, westIngress)
	sum.add("5. all ingresses killed → fail-open answers (both endpoints) for east/west clients: %s/%s (bound %s); metric %v %v→%v",
		secs(openE), secs(openW), secs(failoverBound), names, before, after)
	sum.add("5. all restored → own region again for east/west clients: %s/%s (bound %s)", secs(backE), secs(backW), secs(recoveryBound))
}
