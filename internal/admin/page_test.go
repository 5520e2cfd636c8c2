package admin

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gslb-dev/gslb/internal/browsertest"
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

// TestStatusPageInBrowser renders the status page in headless Chromium and
// checks the DOM it built shows both regions and their states; it also
// saves a screenshot (to $GSLB_SCREENSHOT_DIR when set).
func TestStatusPageInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	e := newTestEnv(t, withToken(), nil)
	// Some history on the page: admin actions.
	e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/drain", testToken, `{"reason":"kernel upgrade"}`, ActorHeader, "alice")
	e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/undrain", testToken, "", ActorHeader, "alice")
	dom := browsertest.Render(t, e.http.URL+"/", "admin-status-page")
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
