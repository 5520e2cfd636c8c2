package app

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool skips when a tool is missing, except in CI, where the test
// script installs it and its absence is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found; CI installs it (scripts/test.sh)", name)
		}
		t.Skipf("%s not installed; skipping", name)
	}
	return p
}

// TestDemoBinaryAnswersDig (in this package, so that it never runs beside
// the other tests that bind the demo's fixed ingress addresses) runs the real `gslb` binary with no arguments,
// as the README's first command does, and checks the demo contract with
// real dig: fixed addresses, SOA, service answers, NXDOMAIN, NODATA,
// REFUSED, ECS, TCP; then SIGTERM shuts it down cleanly.
func TestDemoBinaryAnswersDig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dig := requireTool(t, "dig")
	for _, addr := range []string{"127.0.0.1:5353", "127.0.0.1:9090", "127.0.0.1:8080", "127.0.0.11:18080", "127.0.0.12:18080"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("demo address %s is busy in CI: %v", addr, err)
			}
			t.Skipf("demo address %s is busy (a demo already running?): %v", addr, err)
		}
		ln.Close()
	}
	bin := filepath.Join(t.TempDir(), "gslb")
	build := exec.Command("go", "build", "-o", bin, "github.com/gslb-dev/gslb/cmd/gslb")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "gslb demo is running") {
				close(running)
				signalled = true
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-running:
	case err := <-exited:
		t.Fatalf("gslb exited before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("gslb demo did not start within 30 s")
	}

	digOut := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dig, append([]string{"@127.0.0.1", "-p", "5353", "+norec", "+time=2", "+tries=1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	expect := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("dig output lacks %q:\n%s", w, out)
			}
		}
	}
	expect(digOut("ecommerce.example.com", "SOA"), "status: NOERROR", "flags: qr aa;", "ANSWER: 1,", "IN\tSOA\tns1.ecommerce.example.com.")
	expect(digOut("www.ecommerce.example.com", "A"), "status: NOERROR", "flags: qr aa;", "IN\tA\t127.0.0.1")
	expect(digOut("nope.ecommerce.example.com"), "status: NXDOMAIN", "AUTHORITY: 1", "IN\tSOA")
	expect(digOut("www.ecommerce.example.com", "MX"), "status: NOERROR", "ANSWER: 0,", "AUTHORITY: 1", "IN\tSOA")
	expect(digOut("example.org"), "status: REFUSED")
	expect(digOut("www.ecommerce.example.com", "+subnet=203.0.113.0/24"), "CLIENT-SUBNET: 203.0.113.0/24/24", "IN\tA\t127.0.0.12")
	expect(digOut("www.ecommerce.example.com", "+subnet=198.51.100.0/24", "+tcp"), "(TCP)", "IN\tA\t127.0.0.11")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gslb did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gslb did not stop within 15 s of SIGTERM")
	}
}
