package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

func TestLeastInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan string, 1)
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- name
				<-release
			}
			w.Write([]byte(name))
		}
	}
	a := newBackend(t, "a", handler("a"))
	b := newBackend(t, "b", handler("b"))
	cfg := testConfig(t, []ep{{"east-a", "east", a.port()}, {"east-b", "east", b.port()}}, "load_balancing: least_in_flight")
	h := startProxy(t, cfg, nil, Deps{})
	done := make(chan struct{})
	go func() {
		h.get("/slow")
		close(done)
	}()
	busy := <-entered
	for i := 0; i < 6; i++ {
		if _, body, _ := h.get("/fast"); body == busy {
			t.Fatalf("request %d went to %s, which has a request in flight", i, busy)
		}
	}
	close(release)
	<-done
}

func TestRoundRobinWithinRegion(t *testing.T) {
	a := newBackend(t, "a", nil)
	b := newBackend(t, "b", nil)
	w := newBackend(t, "w", nil)
	cfg := testConfig(t, []ep{{"east-a", "east", a.port()}, {"west-w", "west", w.port()}, {"east-b", "east", b.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	for i := 0; i < 10; i++ {
		h.get("/")
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 || w.hits.Load() != 0 {
		t.Fatalf("hits a=%d b=%d west=%d, want 5/5/0", a.hits.Load(), b.hits.Load(), w.hits.Load())
	}
}

func TestUpstreamTimeout504(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "timeouts: {upstream: 100ms}")
	h := startProxy(t, cfg, nil, Deps{})
	if code, _, _ := h.get("/"); code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", code)
	}
}

func TestAccessLogSampled(t *testing.T) {
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "access_log: true\naccess_log_sample: 2")
	core, logs := observer.New(zap.InfoLevel)
	h := startProxy(t, cfg, nil, Deps{Logger: zap.New(core)})
	for i := 0; i < 6; i++ {
		h.get("/page")
	}
	entries := logs.FilterMessage("access").All()
	if len(entries) != 3 {
		t.Fatalf("%d access log entries for 6 requests sampled 1 in 2, want 3", len(entries))
	}
	f := entries[0].ContextMap()
	if f["status"] != int64(200) || f["route"] != testHost || f["region"] != "east" || f["path"] != "/page" {
		t.Fatalf("access log fields: %v", f)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("done"))
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	s, err := New(cfg, routing.New(cfg, health.StaticSource(cfg), geo.Nowhere{}), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	<-s.Ready()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addrs()[0].String()+"/", nil)
		req.Host = testHost
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-entered
	cancel()
	select {
	case err := <-runErr:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-res; r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestNewRejectsMissingProxySection(t *testing.T) {
	cfg := testConfig(t, []ep{{"east-1", "east", 1}}, "")
	cfg2 := *cfg
	cfg2.Proxy = nil
	if _, err := New(&cfg2, routing.New(cfg, health.StaticSource(cfg), geo.Nowhere{}), Deps{}); err == nil {
		t.Fatal("New accepted a config without a proxy section")
	}
	if _, err := New(cfg, nil, Deps{}); err == nil {
		t.Fatal("New accepted a nil router")
	}
}
