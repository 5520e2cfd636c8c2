package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addresses inside the namespaces. Every namespace has one veth ("eth0")
// on a bridge in the hub namespace, with /16 addresses so that all hosts
// are on-link: no routes, no host traffic, nothing leaves the namespaces.
const (
	subnetBits = 16

	ns1Addr      = "10.99.0.11" // gslb east: DNS :53, admin :9090, proxy :8080
	ns2Addr      = "10.99.0.12" // gslb west
	eastIngress  = "10.99.0.21" // east ingress :80
	westIngress  = "10.99.0.22" // west ingress :80
	resolverAddr = "10.99.0.53" // Unbound :53
	eastClient   = "10.99.1.10" // client subnet 10.99.1.0/24, mapped to east
	westClient   = "10.99.2.10" // client subnet 10.99.2.0/24, mapped to west

	adminPort = "9090"
	proxyPort = "8080"

	zoneName    = "ecommerce.example.com"
	serviceName = "www.ecommerce.example.com"
)

// Timing of the world, used both in the configs and in the scenario bounds.
const (
	checkInterval = 500 * time.Millisecond
	checkFall     = 2
	checkRise     = 2
	serviceTTL    = 5 * time.Second
	// margin absorbs probe jitter, scheduling on a loaded 2-core machine,
	// and Unbound's own timers.
	margin = 4 * time.Second
)

// nsPrefix is the prefix of every namespace the suite creates; the pid
// part makes names unique per run and lets a later run reap the leftovers
// of a run that was killed before its cleanup.
const nsPrefix = "gslb-e2e-"

// world is the running two-region setup.
type world struct {
	t     *testing.T
	id    string // nsPrefix + pid
	dir   string // temp dir: binaries, configs, logs
	token string // admin bearer token

	gslbBin, ingressBin string
	cfg                 configPaths

	hub, east, west, resolver, client string // namespace names

	spawnReq chan spawnReq // see spawner

	mu    sync.Mutex
	procs map[string]*proc // by name
	nss   []string         // created namespaces, in creation order
}

// proc is one process started inside a namespace.
type proc struct {
	name    string
	ns      string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done is closed
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process at once with SIGKILL, as a crash would.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// run runs a command and returns its combined output, failing with both
// when it does not succeed.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// errNetnsUnavailable marks a failure to create a network namespace.
var errNetnsUnavailable = errors.New("cannot create network namespaces")

// newWorld creates the namespaces and links (not the processes).
func newWorld(t *testing.T, dir string) (*world, error) {
	w := &world{
		t:     t,
		id:    nsPrefix + strconv.Itoa(os.Getpid()),
		dir:   dir,
		procs: map[string]*proc{},
	}
	w.startSpawner()
	w.hub = w.id + "-hub"
	w.east = w.id + "-east"
	w.west = w.id + "-west"
	w.resolver = w.id + "-resolver"
	w.client = w.id + "-client"
	reapStale(t)

	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return w, fmt.Errorf("make admin token: %w", err)
	}
	w.token = hex.EncodeToString(tok)

	if err := w.addNetns(w.hub); err != nil {
		return w, fmt.Errorf("%w: %v", errNetnsUnavailable, err)
	}
	if _, err := run("ip", "-n", w.hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return w, err
	}
	if _, err := run("ip", "-n", w.hub, "link", "set", "br0", "up"); err != nil {
		return w, err
	}
	hosts := []struct {
		ns, tag string
		addrs   []string
	}{
		{w.east, "veast", []string{ns1Addr, eastIngress}},
		{w.west, "vwest", []string{ns2Addr, westIngress}},
		{w.resolver, "vres", []string{resolverAddr}},
		{w.client, "vcli", []string{eastClient, westClient}},
	}
	for _, h := range hosts {
		if err := w.addNetns(h.ns); err != nil {
			return w, err
		}
		// The veth is created inside the hub and its peer moved straight
		// into the host namespace: nothing appears in the root namespace.
		cmds := [][]string{
			{"-n", w.hub, "link", "add", h.tag, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
			{"-n", w.hub, "link", "set", h.tag, "master", "br0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
		}
		for _, a := range h.addrs {
			cmds = append(cmds, []string{"-n", h.ns, "addr", "add", a + "/" + strconv.Itoa(subnetBits), "dev", "eth0", "nodad"})
		}
		for _, c := range cmds {
			if _, err := run("ip", c...); err != nil {
				return w, err
			}
		}
	}
	return w, nil
}

// addNetns creates a namespace and records it for cleanup.
func (w *world) addNetns(name string) error {
	if _, err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	w.mu.Lock()
	w.nss = append(w.nss, name)
	w.mu.Unlock()
	return nil
}

// close stops every process and deletes every namespace. It is safe to
// call on a partly built world.
func (w *world) close() {
	w.mu.Lock()
	procs := make([]*proc, 0, len(w.procs))
	for _, p := range w.procs {
		procs = append(procs, p)
	}
	nss := append([]string(nil), w.nss...)
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(3 * time.Second) }()
	}
	wg.Wait()
	close(w.spawnReq)
	for i := len(nss) - 1; i >= 0; i-- {
		killNetnsPids(nss[i])
		if _, err := run("ip", "netns", "del", nss[i]); err != nil {
			w.t.Logf("cleanup: %v", err)
		}
	}
}

// killNetnsPids kills what still runs in a namespace of ours (only
// processes this suite started can be there).
func killNetnsPids(ns string) {
	out, err := run("ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

var staleRE = regexp.MustCompile(`^` + regexp.QuoteMeta(nsPrefix) + `([0-9]+)-[a-z]+$`)

// reapStale deletes namespaces left by earlier runs of this suite whose
// test process no longer exists (a run killed before its cleanup).
func reapStale(t *testing.T) {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		m := staleRE.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // ours, or its process is still alive
		}
		t.Logf("removing stale namespace %s (its test process %d is gone)", fields[0], pid)
		killNetnsPids(fields[0])
		_, _ = run("ip", "netns", "del", fields[0])
	}
}

// start starts a process inside a namespace with `ip netns exec`, its
// output appended to dir/logs/<name>.log. A process of the same name that
// is still running is an error.
func (w *world) start(name, ns string, args ...string) (*proc, error) {
	w.mu.Lock()
	if old := w.procs[name]; old != nil && !old.exited() {
		w.mu.Unlock()
		return nil, fmt.Errorf("start %s: already running", name)
	}
	w.mu.Unlock()
	logDir := filepath.Join(w.dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	fmt.Fprintf(lf, "=== %s start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1 exitcode=66")
	// Pdeathsig: a test binary killed without cleanup takes its children along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := w.spawn(cmd); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, ns: ns, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(lf, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), p.err)
		lf.Close()
		close(p.done)
	}()
	w.mu.Lock()
	w.procs[name] = p
	w.mu.Unlock()
	return p, nil
}

// proc returns the last process started under name, or nil.
func (w *world) proc(name string) *proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.procs[name]
}

// logTail returns the last n lines of a process log.
func (w *world) logTail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(w.dir, "logs", name+".log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dumpLogs prints the tail of every process log (used when a test failed).
func (w *world) dumpLogs(n int) {
	w.mu.Lock()
	names := make([]string, 0, len(w.procs))
	for name := range w.procs {
		names = append(names, name)
	}
	w.mu.Unlock()
	for _, name := range names {
		w.t.Logf("---- last %d lines of %s log ----\n%s", n, name, w.logTail(name, n))
	}
}

// raceReports returns the names of processes whose logs hold a data race
// report (gslb is built with -race when the suite is).
func (w *world) raceReports() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for name, p := range w.procs {
		data, err := os.ReadFile(p.logPath)
		if err == nil && bytes.Contains(data, []byte("WARNING: DATA RACE")) {
			out = append(out, name)
		}
	}
	return out
}

// addrPort joins a host and a port.
func addrPort(host, port string) string { return net.JoinHostPort(host, port) }

// spawnReq asks the spawner to start a command.
type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// startSpawner starts the goroutine that starts every process. Children
// get Pdeathsig, which the kernel ties to the *thread* that forked them;
// the spawner holds one locked OS thread for the world's whole life, so a
// child is never killed because some runtime thread that happened to fork
// it ended (inNetns ends its threads on purpose).
func (w *world) startSpawner() {
	w.spawnReq = make(chan spawnReq)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for r := range w.spawnReq {
			r.errc <- r.cmd.Start()
		}
	}()
}

// spawn starts cmd on the spawner's thread.
func (w *world) spawn(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	w.spawnReq <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}
