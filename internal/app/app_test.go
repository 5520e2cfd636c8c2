package app

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/browsertest"
	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
)

// startApp runs an App for cfg until the test ends and waits until it is ready.
func startApp(t *testing.T, cfg *config.Config, path string) *App {
	t.Helper()
	a, err := New(cfg, Options{ConfigPath: path, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitFor(t, 10*time.Second, "app ready", func() bool { ok, _ := a.Ready(); return ok })
	return a
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// demoOnEphemeralPorts is the embedded demo with its DNS, admin and proxy
// listeners moved to ephemeral ports (the demo ingresses keep theirs).
func demoOnEphemeralPorts(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Proxy.Listen = []string{"127.0.0.1:0"}
	return cfg
}

// query asks server for name/qtype with an ECS subnet (ecs may be empty).
func query(server netip.AddrPort, name string, qtype uint16, ecs string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	if ecs != "" {
		p := netip.MustParsePrefix(ecs)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		family := uint16(1)
		if p.Addr().Is6() {
			family = 2
		}
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family,
			SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()})
		m.Extra = append(m.Extra, o)
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server.String())
	return r, err
}

func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestDemoFailoverFollowsIngressHealth runs the demo wiring, stops the east
// ingress and watches east clients move to west, then back.
func TestDemoFailoverFollowsIngressHealth(t *testing.T) {
	a := startApp(t, demoOnEphemeralPorts(t), "")
	server := a.DNSAddrs()[0]
	answerFor := func(ecs string) string {
		r, err := query(server, "www.ecommerce.example.com", dns.TypeA, ecs)
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.Join(answerAddrs(r), ",")
	}
	if got := answerFor("198.51.100.0/24"); got != "127.0.0.11" {
		t.Fatalf("east client got %q, want 127.0.0.11", got)
	}
	if got := answerFor("203.0.113.0/24"); got != "127.0.0.12" {
		t.Fatalf("west client got %q, want 127.0.0.12", got)
	}

	start := time.Now()
	a.Demo().ByRegion["east"].Stop()
	waitFor(t, 10*time.Second, "east clients to move west", func() bool { return answerFor("198.51.100.0/24") == "127.0.0.12" })
	t.Logf("east ingress down: answers moved west after %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := a.Demo().ByRegion["east"].Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "east clients to return east", func() bool { return answerFor("198.51.100.0/24") == "127.0.0.11" })
	t.Logf("east ingress back: answers returned after %s", time.Since(start).Round(time.Millisecond))
}

// reloadConfig exempts loopback from response rate limiting: the test's
// query loop is faster than the default per-network budget.
const reloadConfig = `dns: {listen: ["127.0.0.1:0"], rrl: {exempt: [127.0.0.0/8]}}
admin: {listen: "127.0.0.1:0"}
log: {level: error}
regions: {east: {latitude: 39, longitude: -77}}
pools:
  p:
    check: {type: none}
    endpoints: [{region: east, address: 192.0.2.10}]
services:
  www: {pool: p}
zones:
  - name: example.com
    ns: [ns1]
    records:
      - "ns1 A 192.0.2.53"
      - "version TXT RELEASE"
`

// TestReloadUnderLoadKeepsAnsweringAndKeepsTheOldConfigWhenInvalid sends
// queries throughout a valid and an invalid reload.
func TestReloadUnderLoadKeepsAnsweringAndKeepsTheOldConfigWhenInvalid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gslb.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(reloadConfig, "RELEASE", "one", 1))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, file)
	server := a.DNSAddrs()[0]
	version := func() string { return txtVersion(server) }
	if v := version(); v != "one" {
		t.Fatalf("version %q before reload", v)
	}

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				r, err := query(server, "www.example.com", dns.TypeA, "")
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					failed.Add(1)
				}
			}
		}()
	}

	write(strings.Replace(reloadConfig, "RELEASE", "two", 1))
	if err := a.ReloadFrom("test"); err != nil {
		t.Fatalf("valid reload: %v", err)
	}
	if v := version(); v != "two" {
		t.Fatalf("version %q after a valid reload, want two", v)
	}

	write(strings.Replace(reloadConfig, "RELEASE", "three", 1) + "services_typo: {}\n")
	err = a.ReloadFrom("test")
	if err == nil || !strings.Contains(err.Error(), `unknown field "services_typo"`) {
		t.Fatalf("invalid reload: want a config error, got %v", err)
	}
	if v := version(); v != "two" {
		t.Fatalf("version %q after an invalid reload, want the old config (two)", v)
	}
	if st := a.Status(); st.LastReload.Err == nil {
		t.Fatal("status does not report the failed reload")
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if sent.Load() < 10 || failed.Load() != 0 {
		t.Fatalf("%d of %d queries failed during reloads", failed.Load(), sent.Load())
	}
	t.Logf("%d queries answered during two reloads, none failed", sent.Load())

	// The admin API reports the failed reload in its metric.
	body := httpGet(t, "http://"+a.Admin().Addr().String()+"/metrics")
	if !strings.Contains(body, "gslb_config_reload_success 0") {
		t.Fatalf("metrics do not show the failed reload")
	}
}

// txtVersion is the TXT text of version.example.com in reloadConfig as
// server answers it now ("" when it does not).
func txtVersion(server netip.AddrPort) string {
	r, err := query(server, "version.example.com", dns.TypeTXT, "")
	if err != nil || len(r.Answer) != 1 {
		return ""
	}
	return strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReloadRejectsListenerChanges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gslb.yaml")
	if err := os.WriteFile(file, []byte(reloadConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, file)
	changed := strings.Replace(reloadConfig, `listen: ["127.0.0.1:0"]`, `listen: ["127.0.0.1:0", "127.0.0.2:0"]`, 1)
	if err := os.WriteFile(file, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadFrom("test"); err == nil || !strings.Contains(err.Error(), "dns.listen") {
		t.Fatalf("want a restart-needed error, got %v", err)
	}
}

// TestDemoProxyPrefersEastAndFollowsADrain is the demo's proxy contract:
// east (the local region) serves while healthy, west once east is drained.
func TestDemoProxyPrefersEastAndFollowsADrain(t *testing.T) {
	a := startApp(t, demoOnEphemeralPorts(t), "")
	waitFor(t, 5*time.Second, "proxy listening", func() bool {
		select {
		case <-a.Proxy().Ready():
			return true
		default:
			return false
		}
	})
	url := "http://" + a.Proxy().Addrs()[0].String() + "/"
	get := func() string {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "www.ecommerce.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); !strings.Contains(got, "hello from the east ingress") {
		t.Fatalf("proxy answered %q, want the east ingress", got)
	}
	if err := a.DrainRegion("east", health.Override{By: "test", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "proxy to move west", func() bool { return strings.Contains(get(), "hello from the west ingress") })
	if err := a.UndrainRegion("east", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "proxy to return east", func() bool { return strings.Contains(get(), "hello from the east ingress") })
}

// TestDemoStatusPageInBrowser loads the running demo's status page in
// headless Chromium with the west ingress stopped and checks that it shows
// both regions and their state; the screenshot is kept (GSLB_SCREENSHOT_DIR).
func TestDemoStatusPageInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	a := startApp(t, demoOnEphemeralPorts(t), "")
	a.Demo().ByRegion["west"].Stop()
	waitFor(t, 10*time.Second, "west to be seen down", func() bool {
		return !a.Checker().Snapshot().RegionUp(a.Config().Pools["storefront"], "west")
	})
	dom := browsertest.Render(t, "http://"+a.Admin().Addr().String()+"/", "demo-status-page")
	for _, want := range []string{
		`data-region="east" data-state="up"`,
		`data-region="west" data-state="down"`,
		"us-east-1 (N. Virginia)",
		"us-west-1 (N. California)",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the demo's status page lacks %q", want)
		}
	}
}

// TestFailedReloadAppliesNothing makes the last step of a reload fail (an
// admin token file emptied since start) and checks that no part took the
// new config: DNS still answers the old zone data and the health checker
// still runs the old config.
func TestFailedReloadAppliesNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gslb.yaml")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(release string) {
		s := strings.Replace(reloadConfig, "RELEASE", release, 1)
		s = strings.Replace(s, `admin: {listen: "127.0.0.1:0"}`, `admin: {listen: "127.0.0.1:0", token_file: "`+tokenFile+`"}`, 1)
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, file)
	server := a.DNSAddrs()[0]
	version := func() string { return txtVersion(server) }

	write("two")
	if err := os.WriteFile(tokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadFrom("test"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("want an admin token error, got %v", err)
	}
	if v := version(); v != "one" {
		t.Fatalf("DNS answers version %q after a failed reload, want the old config (one)", v)
	}
	if a.Checker().Config() != a.Config() {
		t.Fatal("the health checker runs another config than the one serving")
	}
}

// TestConfigVersionFollowsContent: the version shown in status, the reload
// answer and the logs is the same for every load of the same config and
// changes with its content.
func TestConfigVersionFollowsContent(t *testing.T) {
	a, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	if va, vb := configVersion(a), configVersion(b); va != vb {
		t.Fatalf("two loads of the demo config: versions %s and %s", va, vb)
	}
	b.Services["www"].TTL++
	if configVersion(a) == configVersion(b) {
		t.Fatal("a service TTL change left the version unchanged")
	}
}
