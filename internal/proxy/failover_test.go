package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

func TestLocalRegionPreferred(t *testing.T) {
	var gotXFF, gotVia, gotHost, gotProto atomic.Value
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		gotXFF.Store(r.Header.Get("X-Forwarded-For"))
		gotVia.Store(r.Header.Get("Via"))
		gotHost.Store(r.Host)
		gotProto.Store(r.Header.Get("X-Forwarded-Proto"))
		w.Write([]byte("east"))
	})
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"west-1", "west", west.port()}, {"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	for i := 0; i < 20; i++ {
		code, body, region := h.get("/x")
		if code != 200 || body != "east" || region != "east" {
			t.Fatalf("request %d: %d %q region %q, want 200 east", i, code, body, region)
		}
	}
	if west.hits.Load() != 0 {
		t.Fatalf("west got %d requests while east is up", west.hits.Load())
	}
	if gotXFF.Load() != "127.0.0.1" || gotVia.Load() != viaValue || gotHost.Load() != testHost || gotProto.Load() != "http" {
		t.Fatalf("upstream saw XFF %q Via %q Host %q Proto %q", gotXFF.Load(), gotVia.Load(), gotHost.Load(), gotProto.Load())
	}
	if n := h.counter("gslb_proxy_requests_total", "route", testHost, "code", "200", "region", "east"); n != 20 {
		t.Fatalf("requests_total{200,east} = %v, want 20", n)
	}
}

func TestFailsOverToNextRegionWhenLocalIsDown(t *testing.T) {
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", closedPort(t)}, {"west-1", "west", west.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	code, body, region := h.get("/")
	if code != 200 || body != "west" || region != "west" {
		t.Fatalf("got %d %q %q, want 200 west", code, body, region)
	}
	if n := h.counter("gslb_proxy_retries_total", "route", testHost); n != 1 {
		t.Fatalf("retries_total = %v, want 1", n)
	}
}

// The local backend is stopped while a steady stream of GETs runs: no
// client sees an error, and traffic moves to the peer region.
func TestFailoverMidLoadNoClientErrors(t *testing.T) {
	east := newBackend(t, "east", nil)
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}, `
outlier: {consecutive_errors: 3, base_ejection_time: 1m}`)
	h := startProxy(t, cfg, nil, Deps{})

	const workers, perWorker = 4, 50
	var sent atomic.Int64
	var stopOnce sync.Once
	var wg sync.WaitGroup
	errs := make(chan string, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < perWorker; i++ {
				if sent.Add(1) == workers*perWorker/2 {
					stopOnce.Do(func() {
						east.CloseClientConnections()
						east.Close()
					})
				}
				req, _ := http.NewRequest(http.MethodGet, h.url+"/item", nil)
				req.Host = testHost
				resp, err := h.client.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (string(b) != "east" && string(b) != "west") {
					errs <- resp.Status + " " + string(b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("client-visible error: %s", e)
	}
	if west.hits.Load() == 0 {
		t.Fatal("west never served after east stopped")
	}
	if east.hits.Load() == 0 {
		t.Fatal("east never served before it stopped")
	}
	// After the failover, requests go straight to west.
	before := west.hits.Load()
	if code, body, _ := h.get("/after"); code != 200 || body != "west" || west.hits.Load() != before+1 {
		t.Fatalf("after failover: %d %q", code, body)
	}
}

func TestPostNotRetriedAfterReachingUpstream(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})

	resp := h.do(http.MethodPost, "/order", strings.NewReader("buy"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST status %d, want the upstream's 503", resp.StatusCode)
	}
	if east.hits.Load() != 1 || west.hits.Load() != 0 {
		t.Fatalf("POST hits east=%d west=%d, want 1/0", east.hits.Load(), west.hits.Load())
	}
	// The same answer to an idempotent GET is retried on the peer region.
	if code, body, _ := h.get("/"); code != 200 || body != "west" {
		t.Fatalf("GET: %d %q, want a retry answered by west", code, body)
	}
}

func TestPostNotRetriedAfterConnectionReset(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // the request arrived; the answer never will
		}
	})
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	resp := h.do(http.MethodPost, "/order", strings.NewReader("buy"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if west.hits.Load() != 0 {
		t.Fatal("a POST that reached east was retried on west")
	}
}

func TestPostRetriedOnConnectionRefused(t *testing.T) {
	var gotBody atomic.Value
	west := newBackend(t, "west", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody.Store(string(b))
		w.Write([]byte("west"))
	})
	cfg := testConfig(t, []ep{{"east-1", "east", closedPort(t)}, {"west-1", "west", west.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	resp := h.do(http.MethodPost, "/order", strings.NewReader("buy 3 apples"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "west" {
		t.Fatalf("POST: %d %q, want 200 from west", resp.StatusCode, b)
	}
	if gotBody.Load() != "buy 3 apples" {
		t.Fatalf("west got body %q", gotBody.Load())
	}
}

func TestRetryAttemptLimit(t *testing.T) {
	var eps []ep
	var backends []*backend
	for i, region := range []string{"east", "east", "west", "west", "central"} {
		b := newBackend(t, region, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		})
		backends = append(backends, b)
		eps = append(eps, ep{region + "-" + string(rune('a'+i)), region, b.port()})
	}
	cfg := testConfig(t, eps, "retries: {attempts: 2}\noutlier: {consecutive_errors: 100}")
	h := startProxy(t, cfg, nil, Deps{})
	code, _, _ := h.get("/")
	if code != http.StatusBadGateway {
		t.Fatalf("status %d, want the last upstream's 502", code)
	}
	var total int64
	for _, b := range backends {
		if b.hits.Load() > 1 {
			t.Fatalf("an endpoint was tried %d times", b.hits.Load())
		}
		total += b.hits.Load()
	}
	if total != 3 {
		t.Fatalf("%d upstream attempts, want 1 + 2 retries", total)
	}
	if n := h.counter("gslb_proxy_retries_total"); n != 2 {
		t.Fatalf("retries_total = %v, want 2", n)
	}
	// The first retry left the local region that failed.
	if backends[0].hits.Load()+backends[1].hits.Load() != 1 {
		t.Fatalf("east tried %d times, want once before moving to another region",
			backends[0].hits.Load()+backends[1].hits.Load())
	}
}

func TestRetryBudget(t *testing.T) {
	clock := newFakeClock()
	var eps []ep
	var total atomic.Int64
	for i, region := range []string{"east", "west", "central"} {
		b := newBackend(t, region, func(w http.ResponseWriter, r *http.Request) {
			total.Add(1)
			clock.Advance(1000e6) // each attempt "takes" 1 s
			http.Error(w, "down", http.StatusServiceUnavailable)
		})
		eps = append(eps, ep{region + "-" + string(rune('a'+i)), region, b.port()})
	}
	cfg := testConfig(t, eps, "retries: {attempts: 5, budget: 1500ms}\noutlier: {consecutive_errors: 100}")
	h := startProxy(t, cfg, nil, Deps{Now: clock.Now})
	code, _, _ := h.get("/")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	if total.Load() != 2 {
		t.Fatalf("%d attempts, want 2 (the budget of 1.5 s is spent after the second)", total.Load())
	}
}

func TestDrainedLocalRegionUsesPeer(t *testing.T) {
	east := newBackend(t, "east", nil)
	west := newBackend(t, "west", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}, "")
	snap := health.AllHealthy(cfg, time.Now())
	st := snap.Endpoints[health.EndpointKey{Pool: "p", Endpoint: "east-1"}]
	st.Drained = true
	snap.Endpoints[health.EndpointKey{Pool: "p", Endpoint: "east-1"}] = st
	router := routing.New(cfg, fixedSource{snap}, geo.Nowhere{})
	h := startProxy(t, cfg, router, Deps{})
	if code, body, _ := h.get("/"); code != 200 || body != "west" {
		t.Fatalf("got %d %q, want west while east is drained", code, body)
	}
	if east.hits.Load() != 0 {
		t.Fatal("drained east got traffic")
	}
}

type fixedSource struct{ snap *health.Snapshot }

func (f fixedSource) Snapshot() *health.Snapshot { return f.snap }

func TestSwapKeepsListenerAndUpstreamState(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("east"))
	})
	west := newBackend(t, "west", nil)
	eps := []ep{{"east-1", "east", east.port()}, {"west-1", "west", west.port()}}
	cfg := testConfig(t, eps, "outlier: {consecutive_errors: 2, base_ejection_time: 1h}")
	h := startProxy(t, cfg, nil, Deps{})
	for i := 0; i < 2; i++ {
		if code, _, _ := h.get("/"); code != 500 {
			t.Fatalf("want east's 500, got %d", code)
		}
	}
	fail.Store(false)
	if _, body, _ := h.get("/"); body != "west" {
		t.Fatalf("east not ejected: got %q", body)
	}
	// Reload with an extra route: the listener stays, east stays ejected.
	cfg2 := testConfig(t, eps, "outlier: {consecutive_errors: 2, base_ejection_time: 1h}\nroutes: [{host: "+testHost+", service: s}, {host: shop.example.com, service: s}]")
	if err := h.srv.Swap(cfg2, routing.New(cfg2, health.StaticSource(cfg2), geo.Nowhere{})); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := h.get("/"); body != "west" {
		t.Fatalf("after swap: got %q, want west (east still ejected)", body)
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
	req.Host = "shop.example.com"
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("new route: %d", resp.StatusCode)
	}
	if err := h.srv.Swap(&config.Config{}, nil); err == nil {
		t.Fatal("swap to a config without proxy section succeeded")
	}
}
