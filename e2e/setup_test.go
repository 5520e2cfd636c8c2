package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ci reports whether the suite runs in CI, where a missing tool is a
// failure instead of a skip.
func ci() bool { return os.Getenv("CI") == "true" }

// requireTool skips (or, in CI, fails) when an external tool is missing.
func requireTool(t *testing.T, name, debPkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if ci() {
			t.Fatalf("%s not found and CI=true: install the Debian package %s", name, debPkg)
		}
		t.Skipf("e2e suite skipped: %s not found (install the Debian package %s)", name, debPkg)
	}
}

// requirePrivileges skips unless the suite can build its world: Linux,
// root, not -short, and the tools it drives.
func requirePrivileges(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e suite skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("e2e suite skipped: creating network namespaces needs root (run `sudo go test -v ./e2e/`)")
	}
	requireTool(t, "ip", "iproute2")
	requireTool(t, "unbound", "unbound")
	requireTool(t, "unbound-control", "unbound")
	requireTool(t, "dig", "dnsutils")
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("e2e suite skipped: no network namespace support (%v)", err)
	}
}

// repoRoot returns the module root (the parent of this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	return root
}

// readSources reads every source file the gslb binary is built from. The
// suite builds gslb with a `go build` of its own, which go test's result
// cache cannot see; reading the files through os makes them part of the
// cache key, so a cached pass is never reused after the code changed.
func readSources(t *testing.T, root string) {
	t.Helper()
	for _, f := range []string{"go.mod", "go.sum"} {
		_, _ = os.ReadFile(filepath.Join(root, f))
	}
	for _, dir := range []string{"cmd", "internal", "e2e"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				_, _ = os.ReadFile(p)
			}
			return nil
		})
	}
}

// gslbBinEnv names an environment variable holding a prebuilt gslb binary
// to test instead of building ./cmd/gslb.
const gslbBinEnv = "GSLB_E2E_BINARY"

// buildBinaries builds gslb (unless GSLB_E2E_BINARY names one) and the
// stand-in ingress into dir.
func buildBinaries(t *testing.T, root, dir string) (gslbBin, ingressBin string) {
	t.Helper()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	gslbBin = filepath.Join(dir, "gslb")
	if prebuilt := os.Getenv(gslbBinEnv); prebuilt != "" {
		gslbBin = prebuilt
		t.Logf("testing the prebuilt gslb binary %s (%s)", prebuilt, gslbBinEnv)
	} else {
		args = append(args, "./cmd/gslb")
	}
	args = append(args, "./e2e/internal/ingress")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built gslb and ingress in %s (race=%v)", time.Since(start).Round(100*time.Millisecond), raceEnabled)
	return gslbBin, filepath.Join(dir, "ingress")
}

// setupWorld builds the binaries, the namespaces and every process, and
// waits until the world answers. Everything is removed by t.Cleanup.
func setupWorld(t *testing.T) *world {
	t.Helper()
	requirePrivileges(t)
	root := repoRoot(t)
	readSources(t, root)
	dir := t.TempDir()
	gslbBin, ingressBin := buildBinaries(t, root, dir)

	w, err := newWorld(t, dir)
	if w != nil {
		t.Cleanup(func() {
			if t.Failed() {
				w.dumpLogs(40)
			}
			if races := w.raceReports(); len(races) > 0 {
				t.Errorf("data race reported by %v (see the logs above)", races)
				if !t.Failed() {
					w.dumpLogs(80)
				}
			}
			w.close()
		})
	}
	if err != nil {
		if errors.Is(err, errNetnsUnavailable) {
			if ci() {
				t.Fatalf("CI=true and running as root, but: %v", err)
			}
			t.Skipf("e2e suite skipped: %v", err)
		}
		t.Fatalf("build the world: %v", err)
	}
	w.gslbBin, w.ingressBin = gslbBin, ingressBin

	cfg, err := w.writeConfigs()
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	for _, c := range []string{cfg.east, cfg.west} {
		if out, err := run(gslbBin, "check", "-config", c); err != nil {
			t.Fatalf("gslb check of the generated config %s: %v\n%s", c, err, out)
		}
	}
	if out, err := run("unbound-checkconf", cfg.unbound); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}

	start := time.Now()
	for _, region := range []string{"east", "west"} {
		w.mustStart(t, w.ingressCmd(region))
		w.mustStart(t, w.gslbCmd(region))
	}
	w.mustStart(t, w.unboundCmd())
	for _, host := range []string{ns1Addr, ns2Addr} {
		w.waitReady(t, host, 20*time.Second)
	}
	w.waitResolver(t, 20*time.Second)
	t.Logf("world up in %s: namespaces %s-{hub,east,west,resolver,client}", time.Since(start).Round(10*time.Millisecond), w.id)
	return w
}

// procSpec names a process and how to start it.
type procSpec struct {
	name, ns string
	args     []string
}

func (w *world) ingressCmd(region string) procSpec {
	ns, addr := w.east, eastIngress
	if region == "west" {
		ns, addr = w.west, westIngress
	}
	return procSpec{"ingress-" + region, ns, []string{w.ingressBin, "-addr", addrPort(addr, "80"), "-region", region}}
}

func (w *world) gslbCmd(region string) procSpec {
	ns, cfg := w.east, w.cfg.east
	if region == "west" {
		ns, cfg = w.west, w.cfg.west
	}
	return procSpec{"gslb-" + region, ns, []string{w.gslbBin, "serve", "-config", cfg}}
}

func (w *world) unboundCmd() procSpec {
	return procSpec{"unbound", w.resolver, []string{"unbound", "-d", "-c", w.cfg.unbound}}
}

// mustStart starts a process or fails the test.
func (w *world) mustStart(t *testing.T, s procSpec) *proc {
	t.Helper()
	p, err := w.start(s.name, s.ns, s.args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ensureRunning restarts any process of the world that is not running
// (a previous scenario that failed half-way may have left one down).
func (w *world) ensureRunning(t *testing.T) {
	t.Helper()
	specs := []procSpec{w.ingressCmd("east"), w.ingressCmd("west"), w.gslbCmd("east"), w.gslbCmd("west"), w.unboundCmd()}
	for _, s := range specs {
		if p := w.proc(s.name); p == nil || p.exited() {
			if p != nil {
				t.Logf("%s is not running (%v); restarting it", s.name, p.err)
			}
			w.mustStart(t, s)
			if strings.HasPrefix(s.name, "gslb-") {
				host := ns1Addr
				if s.name == "gslb-west" {
					host = ns2Addr
				}
				w.waitReady(t, host, 20*time.Second)
			}
		}
	}
}

// waitReady waits until a gslb instance's /readyz answers 200 and its DNS
// listener answers, failing early if the process exits.
func (w *world) waitReady(t *testing.T, host string, timeout time.Duration) {
	t.Helper()
	name := "gslb-east"
	if host == ns2Addr {
		name = "gslb-west"
	}
	p := w.proc(name)
	var last string
	elapsed, ok := poll(timeout, 100*time.Millisecond, func() bool {
		if p != nil && p.exited() {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		code, body, err := w.adminCall(ctx, "GET", host, "/readyz", "", "")
		if err != nil || code != 200 {
			last = fmt.Sprintf("/readyz: %d %q %v", code, strings.TrimSpace(body), err)
			return false
		}
		// The authoritative server answers the service directly too.
		if _, err := resolveVia(ctx, w.client, eastClient, addrPort(host, "53"), serviceName, time.Second); err != nil {
			last = err.Error()
			return false
		}
		return true
	})
	if p != nil && p.exited() {
		t.Fatalf("%s exited during start-up (%v):\n%s", name, p.err, w.logTail(name, 30))
	}
	if !ok {
		t.Fatalf("%s not ready after %s: %s\n%s", name, timeout, last, w.logTail(name, 30))
	}
	t.Logf("%s ready after %s", name, elapsed.Round(10*time.Millisecond))
}

// waitResolver waits until Unbound answers the service for a client
// (whatever the answer: the scenarios judge answers).
func (w *world) waitResolver(t *testing.T, timeout time.Duration) {
	t.Helper()
	var last error
	if _, ok := poll(timeout, 200*time.Millisecond, func() bool {
		_, last = w.resolve(context.Background(), eastClient)
		return last == nil
	}); !ok {
		t.Fatalf("Unbound does not resolve %s within %s: %v\n%s", serviceName, timeout, last, w.logTail("unbound", 30))
	}
}

// waitBaseline waits until every client resolves its own region through
// Unbound: the steady state every scenario starts from.
func (w *world) waitBaseline(t *testing.T, timeout time.Duration) {
	t.Helper()
	w.ensureRunning(t)
	var last string
	_, ok := poll(timeout, 200*time.Millisecond, func() bool {
		e, err1 := w.resolve(context.Background(), eastClient)
		wst, err2 := w.resolve(context.Background(), westClient)
		last = fmt.Sprintf("east client got %v (%v), west client got %v (%v)", e, err1, wst, err2)
		return err1 == nil && err2 == nil && sameSet(e, eastIngress) && sameSet(wst, westIngress)
	})
	if !ok {
		t.Fatalf("baseline not reached within %s: %s", timeout, last)
	}
}

// poll calls cond every interval until it returns true or timeout has
// passed. It returns the time until cond held (or the timeout) and whether
// it held.
func poll(timeout, interval time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Now().After(deadline) {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}
