package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gslb-dev/gslb/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHealthz(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	code, _, body := e.do(t, "GET", "/healthz", "", "")
	if code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
}

func TestReadyzBeforeAndAfterReady(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	e.backend.setReady(false, "waiting for the first health round")
	code, _, body := e.do(t, "GET", "/readyz", "", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for the first health round") {
		t.Fatalf("readyz before ready: %d %q", code, body)
	}
	e.backend.setReady(true, "")
	code, _, body = e.do(t, "GET", "/readyz", "", "")
	if code != 200 || body != "ok\n" {
		t.Fatalf("readyz after ready: %d %q", code, body)
	}
}

func TestMetricsExposition(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gslb_test_marker", Help: "A marker."})
	e.reg.MustRegister(g)
	g.Set(42)
	e.do(t, "GET", "/healthz", "", "")
	e.do(t, "POST", "/api/v1/regions/east/drain", "", "") // 401
	e.do(t, "GET", "/no/such/path", "", "")
	code, hdr, body := e.do(t, "GET", "/metrics", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		"gslb_test_marker 42",
		`gslb_admin_requests_total{code="200",path="/healthz"} 1`,
		`gslb_admin_requests_total{code="401",path="/api/v1/regions/{region}/drain"} 1`,
		`gslb_admin_requests_total{code="404",path="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestMutationAuth(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	cases := []struct {
		name      string
		auth      string
		wantCode  int
		wantChall string
	}{
		{"no header", "", 401, `Bearer realm="gslb-admin"`},
		{"wrong token", "Bearer nope", 401, `Bearer realm="gslb-admin", error="invalid_token"`},
		{"token prefix", "Bearer " + testToken[:5], 401, `Bearer realm="gslb-admin", error="invalid_token"`},
		{"basic scheme", "Basic " + testToken, 401, `Bearer realm="gslb-admin"`},
		{"empty bearer", "Bearer ", 401, `Bearer realm="gslb-admin"`},
		{"right token", "Bearer " + testToken, 200, ""},
		{"lower-case scheme", "bearer " + testToken, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := e.do(t, "POST", "/api/v1/regions/east/drain", "", "", "Authorization", tc.auth)
			if code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", code, tc.wantCode, body)
			}
			if got := hdr.Get("WWW-Authenticate"); got != tc.wantChall {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.wantChall)
			}
		})
	}
	calls, _ := e.backend.lastCalls()
	if len(calls) != 2 {
		t.Fatalf("backend called %d times, want 2 (only the authorised calls): %v", len(calls), calls)
	}
}

func TestMutationsForbiddenWithoutToken(t *testing.T) {
	e := newTestEnv(t, config.AdminConfig{}, nil)
	for _, path := range []string{"/api/v1/regions/east/drain", "/api/v1/reload", "/api/v1/pools/api/endpoints/east-1/undrain"} {
		code, _, body := e.do(t, "POST", path, "anything", "")
		if code != http.StatusForbidden || !strings.Contains(body, "no admin token is configured") {
			t.Fatalf("POST %s: %d %s", path, code, body)
		}
	}
	if calls, _ := e.backend.lastCalls(); len(calls) != 0 {
		t.Fatalf("backend called: %v", calls)
	}
	// Reads stay open.
	if code, _, _ := e.do(t, "GET", "/api/v1/status", "", ""); code != 200 {
		t.Fatalf("status without token: %d", code)
	}
}

func TestTokenFileAndSetConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  first-token\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, config.AdminConfig{TokenFile: file, Token: "ignored-inline"}, nil)
	if code, _, body := e.do(t, "POST", "/api/v1/regions/east/drain", "first-token", ""); code != 200 {
		t.Fatalf("file token: %d %s", code, body)
	}
	if code, _, _ := e.do(t, "POST", "/api/v1/regions/east/drain", "ignored-inline", ""); code != 401 {
		t.Fatalf("inline token accepted although token_file is set: %d", code)
	}
	if err := os.WriteFile(file, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetConfig(config.AdminConfig{TokenFile: file}); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if code, _, _ := e.do(t, "POST", "/api/v1/regions/east/undrain", "first-token", ""); code != 401 {
		t.Fatalf("old token still accepted after reload: %d", code)
	}
	if code, _, _ := e.do(t, "POST", "/api/v1/regions/east/undrain", "second-token", ""); code != 200 {
		t.Fatalf("new token refused: %d", code)
	}
	// An unreadable or empty token file is an error and keeps the old token.
	if err := e.srv.SetConfig(config.AdminConfig{TokenFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("SetConfig with a missing token file succeeded")
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetConfig(config.AdminConfig{TokenFile: empty}); err == nil {
		t.Fatal("SetConfig with an empty token file succeeded")
	}
	if code, _, _ := e.do(t, "POST", "/api/v1/regions/east/undrain", "second-token", ""); code != 200 {
		t.Fatalf("token lost after a failed SetConfig: %d", code)
	}
}

func TestTokenNeverLogged(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	e := newTestEnv(t, withToken(), zap.New(core))
	e.do(t, "POST", "/api/v1/regions/east/drain", testToken, `{"reason":"maintenance"}`)
	e.do(t, "POST", "/api/v1/regions/east/drain", testToken+"x", "")
	e.do(t, "POST", "/api/v1/reload", testToken, "")
	if err := e.srv.SetConfig(config.AdminConfig{Token: "other-" + testToken}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		if strings.Contains(line, testToken) {
			t.Fatalf("token logged: %s", line)
		}
	}
}

func TestDrainUndrainRegion(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newTestEnv(t, withToken(), zap.New(core))
	code, _, body := e.do(t, "POST", "/api/v1/regions/west/drain", testToken, `{"reason": "INC-42 west outage"}`, ActorHeader, "alice")
	if code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	var resp ActionResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	const wantWho = "alice via admin-api@127.0.0.1"
	if !resp.OK || resp.By != wantWho || resp.Reason != "INC-42 west outage" || resp.Target != "west" || !resp.At.Equal(t0) {
		t.Fatalf("drain response: %+v", resp)
	}
	code, _, body = e.do(t, "POST", "/api/v1/regions/west/undrain", testToken, "")
	if code != 200 {
		t.Fatalf("undrain: %d %s", code, body)
	}
	calls, overrides := e.backend.lastCalls()
	want := []string{"drain_region west", "undrain_region west by=admin-api@127.0.0.1"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", calls, want)
	}
	if len(overrides) != 1 || overrides[0].By != wantWho || overrides[0].Reason != "INC-42 west outage" || !overrides[0].At.Equal(t0) {
		t.Fatalf("override %+v", overrides)
	}
	if n := logs.FilterMessage("admin action").FilterField(zap.String("who", wantWho)).Len(); n != 1 {
		t.Fatalf("drain logged %d times with who, want 1: %v", n, logs.All())
	}
	// Both actions show in the status, newest first.
	doc := getStatus(t, e)
	if len(doc.AdminActions) != 2 || doc.AdminActions[0].Action != "undrain_region" || doc.AdminActions[1].Who != wantWho {
		t.Fatalf("admin actions: %+v", doc.AdminActions)
	}
}

func TestDrainUndrainEndpoint(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	if code, _, body := e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/drain", testToken, `{"reason":"kernel upgrade"}`); code != 200 {
		t.Fatalf("drain endpoint: %d %s", code, body)
	}
	doc := getStatus(t, e)
	ep := findEndpoint(t, doc, "storefront", "east-1")
	if ep.State != StateDrained || ep.Drain == nil || ep.Drain.Reason != "kernel upgrade" {
		t.Fatalf("endpoint after drain: %+v", ep)
	}
	if code, _, body := e.do(t, "POST", "/api/v1/pools/storefront/endpoints/east-1/undrain", testToken, ""); code != 200 {
		t.Fatalf("undrain endpoint: %d %s", code, body)
	}
	if ep := findEndpoint(t, getStatus(t, e), "storefront", "east-1"); ep.State != StateUp {
		t.Fatalf("endpoint after undrain: %+v", ep)
	}
	calls, _ := e.backend.lastCalls()
	want := "drain_endpoint storefront/east-1|undrain_endpoint storefront/east-1 by=admin-api@127.0.0.1"
	if strings.Join(calls, "|") != want {
		t.Fatalf("calls %q", calls)
	}
}

func TestUnknownTargets404(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	for _, path := range []string{
		"/api/v1/regions/mars/drain",
		"/api/v1/regions/mars/undrain",
		"/api/v1/pools/nope/endpoints/east-1/drain",
		"/api/v1/pools/storefront/endpoints/nope/drain",
		"/api/v1/pools/storefront/endpoints/nope/undrain",
	} {
		code, _, body := e.do(t, "POST", path, testToken, "")
		if code != http.StatusNotFound || !strings.Contains(body, "not found") {
			t.Errorf("POST %s: %d %s", path, code, body)
		}
	}
	if calls, _ := e.backend.lastCalls(); len(calls) != 0 {
		t.Fatalf("backend called for unknown targets: %v", calls)
	}
	if doc := getStatus(t, e); len(doc.AdminActions) != 5 || doc.AdminActions[0].Result != "not_found" {
		t.Fatalf("failed actions not recorded: %+v", doc.AdminActions)
	}
}

func TestBodyLimits(t *testing.T) {
	e := newTestEnv(t, withToken(), nil) // MaxBodyBytes 1024
	big := `{"reason":"` + strings.Repeat("x", 2000) + `"}`
	if code, _, body := e.do(t, "POST", "/api/v1/regions/east/drain", testToken, big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body with Content-Length: %d %s", code, body)
	}
	// Without Content-Length (chunked) the MaxBytesReader catches it.
	req, _ := http.NewRequest("POST", e.http.URL+"/api/v1/regions/east/drain", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized chunked body: %d", resp.StatusCode)
	}
	for _, bad := range []string{`{`, `{"reason": 5}`, `{"why":"x"}`, `{"reason":"a"} {}`, `"x"`, `{"reason":"line\nbreak"}`} {
		if code, _, body := e.do(t, "POST", "/api/v1/regions/east/drain", testToken, bad); code != http.StatusBadRequest {
			t.Errorf("body %q: %d %s", bad, code, body)
		}
	}
	if calls, _ := e.backend.lastCalls(); len(calls) != 0 {
		t.Fatalf("backend called for bad bodies: %v", calls)
	}
}

func TestReload(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	code, _, body := e.do(t, "POST", "/api/v1/reload", testToken, "")
	if code != 200 || !strings.Contains(body, `"version": "sha256:abc123-1"`) {
		t.Fatalf("reload ok: %d %s", code, body)
	}

	e.backend.reloadErr = &config.Errors{File: "/etc/gslb/gslb.yaml", List: []config.Error{
		{Line: 12, Path: "services.www.pool", Msg: `unknown pool "nope"`},
	}}
	code, _, body = e.do(t, "POST", "/api/v1/reload", testToken, "")
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("reload invalid: %d %s", code, body)
	}
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatal(err)
	}
	if len(eb.Errors) != 1 || eb.Errors[0].Line != 12 || eb.Errors[0].Path != "services.www.pool" || eb.Errors[0].File != "/etc/gslb/gslb.yaml" {
		t.Fatalf("reload errors: %+v", eb)
	}
	doc := getStatus(t, e)
	if doc.LastReload == nil || doc.LastReload.OK || len(doc.LastReload.Errors) != 1 {
		t.Fatalf("status last_reload: %+v", doc.LastReload)
	}
	code, _, page := e.do(t, "GET", "/", "", "")
	if code != 200 || !strings.Contains(page, "Last reload failed") || !strings.Contains(page, "unknown pool &#34;nope&#34;") {
		t.Fatalf("page does not show the reload error: %d", code)
	}

	e.backend.reloadErr = errors.New("disk on fire")
	if code, _, body = e.do(t, "POST", "/api/v1/reload", testToken, ""); code != http.StatusInternalServerError || !strings.Contains(body, "disk on fire") {
		t.Fatalf("reload failure: %d %s", code, body)
	}
}

func TestExplain(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	code, hdr, body := e.do(t, "GET", "/api/v1/explain?name=WWW.ecommerce.example.com&type=A&client=198.51.100.7", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("explain: %d %s", code, body)
	}
	var d struct {
		Service string   `json:"service"`
		Region  string   `json:"region"`
		Trace   []string `json:"trace"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Region != "east" || len(d.Trace) == 0 || d.Trace[0] != "client 198.51.100.7 qtype A" {
		t.Fatalf("explain decision: %+v", d)
	}
	code, hdr, body = e.do(t, "GET", "/api/v1/explain?name=www.ecommerce.example.com.&client=::ffff:198.51.100.7&format=text", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !strings.Contains(body, "region:    east") || !strings.Contains(body, "1. client 198.51.100.7 qtype") {
		t.Fatalf("explain text: %d %s", code, body)
	}
	if code, _, body = e.do(t, "GET", "/api/v1/explain?name=nope.example.com", "", ""); code != 404 {
		t.Fatalf("explain unknown name: %d %s", code, body)
	}
	for _, q := range []string{
		"", "name=", "type=A", "name=www.ecommerce.example.com&type=MX", "name=www.ecommerce.example.com&client=1.2.3",
		"name=www.ecommerce.example.com&client=fe80::1%25eth0", "name=a..b", "name=www.ecommerce.example.com&format=xml",
		"name=www.ecommerce.example.com&name=x", "name=www.ecommerce.example.com&bogus=1", "name=%zz",
		"name=" + strings.Repeat("a", 300),
	} {
		if code, _, body := e.do(t, "GET", "/api/v1/explain?"+q, "", ""); code != http.StatusBadRequest {
			t.Errorf("explain %q: %d %s", q, code, body)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	cases := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/regions/east/drain", 405},
		{"POST", "/healthz", 405},
		{"DELETE", "/api/v1/status", 405},
		{"PUT", "/api/v1/reload", 405},
		{"GET", "/api/v1/nothing", 404},
		{"GET", "/index.html", 404},
		{"POST", "/api/v1/regions/east/explode", 404},
		{"HEAD", "/healthz", 200},
	}
	for _, tc := range cases {
		if code, _, _ := e.do(t, tc.method, tc.path, testToken, ""); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
	if calls, _ := e.backend.lastCalls(); len(calls) != 0 {
		t.Fatalf("backend called: %v", calls)
	}
}

func TestStatusJSONShape(t *testing.T) {
	e := newTestEnv(t, withToken(), nil)
	code, _, body := e.do(t, "GET", "/api/v1/status", "", "")
	if code != 200 {
		t.Fatalf("status: %d", code)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"generated_at", "ready", "config", "health", "regions", "pools", "services", "transitions", "admin_actions"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q", k)
		}
	}
	var cfgInfo map[string]any
	_ = json.Unmarshal(raw["config"], &cfgInfo)
	if cfgInfo["source"] != config.DemoSource || cfgInfo["version"] != "sha256:abc123-0" || cfgInfo["loaded_at"] != "2026-03-01T10:00:00Z" {
		t.Errorf("config info: %v", cfgInfo)
	}
	var eps []map[string]json.RawMessage
	var pools []map[string]json.RawMessage
	_ = json.Unmarshal(raw["pools"], &pools)
	_ = json.Unmarshal(pools[0]["endpoints"], &eps)
	for _, k := range []string{"name", "region", "address", "port", "state", "since", "last_check", "last_result", "last_duration_ms"} {
		if _, ok := eps[0][k]; !ok {
			t.Errorf("endpoint lacks %q: %s", k, pools[0]["endpoints"])
		}
	}

	doc := getStatus(t, e)
	if len(doc.Regions) != 2 || doc.Regions[0].Name != "east" || doc.Regions[0].State != StateUp || doc.Regions[1].State != StateDown {
		t.Fatalf("regions: %+v", doc.Regions)
	}
	if ep := findEndpoint(t, doc, "storefront", "west-1"); ep.State != StateDown || ep.LastError == "" || ep.Failures != 3 || ep.Since == nil {
		t.Fatalf("west-1: %+v", ep)
	}
	if len(doc.Services) != 2 || doc.Services[0].ID != "api" || doc.Services[0].PreferredRegion != "east" || doc.Services[1].Reason != "nearest" {
		t.Fatalf("services: %+v", doc.Services)
	}
	if len(doc.Transitions) != 2 || doc.Transitions[0].Pool != "api" {
		t.Fatalf("transitions not newest first: %+v", doc.Transitions)
	}
	if doc.Health.Version != 7 || !doc.Ready {
		t.Fatalf("health/ready: %+v %v", doc.Health, doc.Ready)
	}

	// Draining a region shows it grey; states by precedence.
	e.do(t, "POST", "/api/v1/regions/east/drain", testToken, "")
	if doc := getStatus(t, e); doc.Regions[0].State != StateDrained || doc.Regions[0].Drain == nil || findEndpoint(t, doc, "api", "east-1").State != StateDrained {
		t.Fatalf("drained region: %+v", doc.Regions[0])
	}
}

func TestStatusBeforeConfig(t *testing.T) {
	doc := buildStatus(Status{}, false, "loading config", nil, t0)
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"regions":[]`) || !strings.Contains(string(data), `"admin_actions":[]`) {
		t.Fatalf("empty status should have empty lists, not null: %s", data)
	}
	p, err := newPageRenderer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.render(pageData{StatusDocument: doc, Now: t0}); err != nil {
		t.Fatalf("render empty status: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	fb := newFakeBackend(t)
	if _, err := New(config.AdminConfig{Listen: "off"}, fb, Deps{}); err == nil {
		t.Error("New with listen off succeeded")
	}
	if _, err := New(config.AdminConfig{Listen: "127.0.0.1:0"}, nil, Deps{}); err == nil {
		t.Error("New with nil backend succeeded")
	}
	if _, err := New(config.AdminConfig{Listen: "127.0.0.1:0", TokenFile: "/nonexistent/token"}, fb, Deps{}); err == nil {
		t.Error("New with a missing token file succeeded")
	}
	// Two servers on one registry share the collectors.
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		if _, err := New(config.AdminConfig{Listen: "127.0.0.1:0"}, fb, Deps{Registry: reg}); err != nil {
			t.Fatalf("New #%d on a shared registry: %v", i, err)
		}
	}
}

func TestRunListensAndShutsDown(t *testing.T) {
	fb := newFakeBackend(t)
	s, err := New(config.AdminConfig{Listen: "127.0.0.1:0", Token: testToken}, fb, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over Run: %d", resp.StatusCode)
	}
	if err := s.Run(ctx); err == nil {
		t.Fatal("second Run succeeded")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := client.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}

func TestRunListenError(t *testing.T) {
	s, err := New(config.AdminConfig{Listen: "127.0.0.1:notaport"}, newFakeBackend(t), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run on a bad address succeeded")
	}
}

func getStatus(t *testing.T, e *testEnv) StatusDocument {
	t.Helper()
	code, _, body := e.do(t, "GET", "/api/v1/status", "", "")
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var doc StatusDocument
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decode status: %v", err)
	}
	return doc
}

func findEndpoint(t *testing.T, doc StatusDocument, pool, name string) EndpointStatus {
	t.Helper()
	for _, p := range doc.Pools {
		for _, ep := range p.Endpoints {
			if p.Name == pool && ep.Name == name {
				return ep
			}
		}
	}
	t.Fatalf("endpoint %s/%s not in status", pool, name)
	return EndpointStatus{}
}
