package admin

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/health"
)

func TestStatusPage(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	e.do(t, "POST", "/api/v1/pools/api/endpoints/east-1/drain", testToken, `{"reason":"<b>bold</b> move"}`, ActorHeader, "bob")
	code, hdr, page := e.do(t, "GET", "/", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", code, hdr.Get("Content-Type"))
	}
	if !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("no CSP: %q", hdr.Get("Content-Security-Policy"))
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`id="region-east" data-region="east" data-state="degraded"`, // api/east-1 drained
		`id="region-west" data-region="west" data-state="down"`,
		`data-endpoint="storefront/west-1" data-state="down"`,
		`data-endpoint="api/east-1" data-state="drained"`,
		`connection refused`,
		`sha256:abc123-0`,
		`us-west-1 (N. California)`,
		`&lt;b&gt;bold&lt;/b&gt; move`, // operator text is escaped
		`bob via admin-api@127.0.0.1`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>bold</b>") {
		t.Error("operator text not escaped")
	}
	// Each service row names the region it prefers.
	row := regexp.MustCompile(`(?s)<tr data-service="www">.*?</tr>`).FindString(page)
	if !strings.Contains(row, `<td class="preferred"><b>east</b></td>`) {
		t.Errorf("www row does not show its preferred region: %s", row)
	}
	// No external assets: nothing fetched from elsewhere.
	for _, bad := range []string{"<script", "src=", "http://", "https://", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestStatusPageEscapesConfigText(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	e.backend.cfg.Regions["east"].Description = `<script>alert(1)</script>`
	_, _, page := e.do(t, "GET", "/", "", "")
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("region description not escaped")
	}
}

// needTool returns the path of an external tool, skipping the test when
// it is missing (failing when CI=true: CI installs it).
func needTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (CI installs Debian's chromium)", names[0])
	}
	t.Skipf("%s not installed; skipping the headless-browser test", names[0])
	return ""
}

// TestStatusPageInBrowser renders the status page in headless Chromium and
// checks the DOM it built shows both regions and their states; it also
// saves a screenshot (to $GSLB_SCREENSHOT_DIR when set).
func TestStatusPageInBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium-browser")
	e := newTestEnv(t, withToken(), nil)
	// Some history on the page: admin actions.
	e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/drain", testToken, `{"reason":"kernel upgrade"}`, ActorHeader, "alice")
	e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/undrain", testToken, "", ActorHeader, "alice")
	url := e.http.URL + "/"
	common := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
	}
	dir := os.Getenv("GSLB_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "admin-status-page.png")
	// One run both dumps the DOM and takes the screenshot: Chromium's
	// start-up dominates on a busy machine.
	run := func(extra ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append(append([]string{}, common...), "--user-data-dir="+t.TempDir())
		args = append(append(args, extra...), url)
		cmd := exec.CommandContext(ctx, chromium, args...)
		cmd.WaitDelay = 5 * time.Second
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium timed out; stderr:\n%s", tail(stderr.String()))
		}
		if err != nil {
			t.Fatalf("chromium %v: %v; stderr:\n%s", extra, err, tail(stderr.String()))
		}
		return out
	}

	dom := string(run("--dump-dom", "--screenshot="+shot, "--window-size=1200,900"))
	for _, want := range []string{
		`data-region="east" data-state="up"`,
		`data-region="west" data-state="down"`,
		"us-east-1 (N. Virginia)",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?s)id="region-west".*?<span class="pill st-down">down</span>`).MatchString(dom) {
		t.Error("rendered DOM does not show west as down")
	}

	if err := os.WriteFile(filepath.Join(dir, "admin-status-page.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(data) < 1000 || string(data[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(data))
	}
	t.Logf("screenshot: %s", shot)
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

func TestEndpointAndRegionStates(t *testing.T) {
	for _, tc := range []struct {
		st   health.EndpointState
		want string
	}{
		{health.EndpointState{Healthy: true}, StateUp},
		{health.EndpointState{Healthy: false}, StateDown},
		{health.EndpointState{Healthy: true, Ejected: true}, StateEjected},
		{health.EndpointState{Healthy: false, Ejected: true}, StateEjected},
		{health.EndpointState{Healthy: true, Ejected: true, Drained: true}, StateDrained},
	} {
		if got := endpointState(tc.st); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.st, got, tc.want)
		}
	}

	e := newTestEnv(t, withToken(), nil)
	e.backend.mu.Lock()
	s := e.backend.cloneSnap()
	k := health.EndpointKey{Pool: "api", Endpoint: "east-1"}
	st := s.Endpoints[k]
	st.Ejected = true
	s.Endpoints[k] = st
	e.backend.snap = s
	e.backend.mu.Unlock()
	doc := getStatus(t, e)
	if ep := findEndpoint(t, doc, "api", "east-1"); ep.State != StateEjected {
		t.Fatalf("ejected endpoint shows %s", ep.State)
	}
	if doc.Regions[0].State != StateDegraded || doc.Regions[1].State != StateDown {
		t.Fatalf("region states %s/%s, want degraded/down", doc.Regions[0].State, doc.Regions[1].State)
	}
	_, _, page := e.do(t, "GET", "/", "", "")
	if !strings.Contains(page, `data-endpoint="api/east-1" data-state="ejected"`) || !strings.Contains(page, `<span class="pill st-ejected">ejected</span>`) {
		t.Fatal("page does not show the ejected endpoint in amber")
	}
}
