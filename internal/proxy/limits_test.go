package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRateLimit429WithRetryAfter(t *testing.T) {
	clock := newFakeClock() // frozen: no tokens refill during the test
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `
rate_limit: {requests_per_second: 0.5, burst: 3}
trusted_proxies: [127.0.0.0/8]`)
	h := startProxy(t, cfg, nil, Deps{Now: clock.Now})
	for i := 0; i < 3; i++ {
		if code, _, _ := h.get("/", "X-Forwarded-For", "198.51.100.1"); code != 200 {
			t.Fatalf("request %d within burst: %d", i, code)
		}
	}
	resp := h.do(http.MethodGet, "/", nil, "X-Forwarded-For", "198.51.100.1")
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d, want 429", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 2 (one token at 0.5/s)", resp.Header.Get("Retry-After"))
	}
	// Another client (a different trusted X-Forwarded-For hop) is unaffected.
	if code, _, _ := h.get("/", "X-Forwarded-For", "198.51.100.2"); code != 200 {
		t.Fatalf("other client: %d", code)
	}
	if n := h.counter("gslb_proxy_rate_limited_total", "route", testHost); n != 1 {
		t.Fatalf("rate_limited_total = %v", n)
	}
	if east.hits.Load() != 4 {
		t.Fatalf("upstream saw %d requests, want 4 (the 429 is answered by the proxy)", east.hits.Load())
	}
	// Tokens refill with time.
	clock.Advance(2 * time.Second)
	if code, _, _ := h.get("/", "X-Forwarded-For", "198.51.100.1"); code != 200 {
		t.Fatalf("after refill: %d", code)
	}
}

func TestRateLimitIgnoresUntrustedXForwardedFor(t *testing.T) {
	clock := newFakeClock()
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `rate_limit: {requests_per_second: 1, burst: 1}`)
	h := startProxy(t, cfg, nil, Deps{Now: clock.Now})
	if code, _, _ := h.get("/", "X-Forwarded-For", "198.51.100.1"); code != 200 {
		t.Fatal(code)
	}
	// A spoofed XFF from an untrusted peer does not buy a new bucket.
	if code, _, _ := h.get("/", "X-Forwarded-For", "198.51.100.2"); code != http.StatusTooManyRequests {
		t.Fatalf("spoofed XFF: %d, want 429", code)
	}
}

func TestXForwardedForTrust(t *testing.T) {
	seen := make(chan string, 1)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		seen <- strings.Join(r.Header.Values("X-Forwarded-For"), "|")
	})
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"untrusted peer: inbound XFF dropped", "", "127.0.0.1"},
		{"trusted peer: inbound XFF kept", "trusted_proxies: [127.0.0.0/8]", "203.0.113.9, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, tc.extra)
			h := startProxy(t, cfg, nil, Deps{})
			h.get("/", "X-Forwarded-For", "203.0.113.9")
			if got := <-seen; got != tc.want {
				t.Fatalf("upstream X-Forwarded-For %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHeaderLimit431(t *testing.T) {
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `limits: {max_header_bytes: 2048}`)
	h := startProxy(t, cfg, nil, Deps{})
	// net/http allows 4096 bytes of slack above MaxHeaderBytes.
	resp := h.do(http.MethodGet, "/", nil, "X-Big", strings.Repeat("a", 2048+4096+100))
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	if code, _, _ := h.get("/", "X-Small", strings.Repeat("a", 1000)); code != 200 {
		t.Fatalf("normal request: %d", code)
	}
	if east.hits.Load() != 1 {
		t.Fatalf("upstream hits %d, want 1", east.hits.Load())
	}
}

func TestBodyLimit413(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `
limits: {max_body_bytes: 1024}
retries: {max_body_bytes: 256}`)
	h := startProxy(t, cfg, nil, Deps{})
	for _, tc := range []struct {
		name    string
		body    io.Reader
		want    int
		wantLen string
	}{
		{"declared too large", strings.NewReader(strings.Repeat("x", 2048)), 413, ""},
		{"chunked too large", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))), 413, ""},
		{"buffered", strings.NewReader(strings.Repeat("x", 200)), 200, "200"},
		{"streamed", strings.NewReader(strings.Repeat("x", 1000)), 200, "1000"},
		{"chunked streamed", io.MultiReader(strings.NewReader(strings.Repeat("x", 1000))), 200, "1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do(http.MethodPost, "/upload", tc.body)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || (tc.wantLen != "" && string(b) != tc.wantLen) {
				t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, b, tc.want, tc.wantLen)
			}
		})
	}
}

// TestConcurrencyLimits: with the only upstream's slot (max_concurrent_per_upstream)
// or the proxy's only pending slot (max_pending) taken, a second request
// gets 503; once the first finishes, requests are served again.
func TestConcurrencyLimits(t *testing.T) {
	for _, tc := range []struct{ name, limit string }{
		{"max_concurrent_per_upstream", `limits: {max_concurrent_per_upstream: 1}`},
		{"max_pending", `limits: {max_pending: 1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					entered <- struct{}{}
					<-release
				}
			})
			cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, tc.limit)
			h := startProxy(t, cfg, nil, Deps{})
			done := make(chan int)
			go func() {
				code, _, _ := h.get("/slow")
				done <- code
			}()
			<-entered
			if code, _, _ := h.get("/fast"); code != http.StatusServiceUnavailable {
				t.Fatalf("second request over %s: %d, want 503", tc.name, code)
			}
			close(release)
			if code := <-done; code != 200 {
				t.Fatalf("slow request: %d", code)
			}
			if code, _, _ := h.get("/fast"); code != 200 {
				t.Fatalf("after the slot freed: %d", code)
			}
		})
	}
}

func TestUnknownHost421(t *testing.T) {
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	for _, host := range []string{"evil.example.net", "", "127.0.0.1", "www.example.com.evil.net"} {
		req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
		req.Host = host
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("Host %q: %d, want 421", host, resp.StatusCode)
		}
	}
	// Absolute-form (forward-proxy style) and CONNECT requests are not proxied.
	conn, err := net.Dial("tcp", h.srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, raw := range []string{
		"GET http://evil.example.net/ HTTP/1.1\r\nHost: evil.example.net\r\n\r\n",
		"CONNECT evil.example.net:443 HTTP/1.1\r\nHost: evil.example.net:443\r\n\r\n",
		"CONNECT " + testHost + ":443 HTTP/1.1\r\nHost: " + testHost + ":443\r\n\r\n",
	} {
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%q: %d, want 421 or 405", raw, resp.StatusCode)
		}
	}
	// Mixed case and a port still match the route.
	req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
	req.Host = "WWW.Example.COM:8080"
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("mixed-case host with port: %d", resp.StatusCode)
	}
	if east.hits.Load() != 1 {
		t.Fatalf("upstream hits %d, want 1", east.hits.Load())
	}
	if n := h.counter("gslb_proxy_requests_total", "route", "unknown", "code", "421"); n < 4 {
		t.Fatalf("requests_total{unknown,421} = %v", n)
	}
}

// A client that sends headers slowly is cut off by read_header.
func TestSlowlorisCutOff(t *testing.T) {
	east := newBackend(t, "east", nil)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `timeouts: {read_header: 200ms}`)
	h := startProxy(t, cfg, nil, Deps{})
	conn, err := net.Dial("tcp", h.srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn) // the server closes the connection
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if strings.Contains(string(b), "200 OK") {
		t.Fatalf("incomplete request was answered: %q", b)
	}
	if code, _, _ := h.get("/"); code != 200 {
		t.Fatalf("normal client: %d", code)
	}
}
