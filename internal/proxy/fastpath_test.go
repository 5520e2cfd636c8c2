package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// rawBackend is a loopback TCP server that reads HTTP/1.1 requests and
// answers each with whatever respond returns, byte for byte, so that tests
// can send responses net/http would never produce.
type rawBackend struct {
	ln     net.Listener
	conns  atomic.Int64 // connections accepted
	closed atomic.Int64 // connections ended
	reqs   chan string  // each request head received, raw
	mu     sync.Mutex
	open   []net.Conn
	wg     sync.WaitGroup
}

// newRawBackend starts a rawBackend. respond gets the parsed request and
// returns the raw response and whether to close the connection after it.
func newRawBackend(t *testing.T, respond func(r *http.Request) (string, bool)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, reqs: make(chan string, 100)}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.mu.Lock()
			b.open = append(b.open, c)
			b.mu.Unlock()
			b.wg.Go(func() { b.serve(c, respond) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *rawBackend) serve(c net.Conn, respond func(r *http.Request) (string, bool)) {
	defer b.closed.Add(1)
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		tee := bufio.NewReader(io.TeeReader(br, &head))
		req, err := http.ReadRequest(tee)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		select {
		case b.reqs <- head.String():
		default:
		}
		resp, closeAfter := respond(req)
		if _, err := io.WriteString(c, resp); err != nil || closeAfter {
			return
		}
	}
}

func (b *rawBackend) port() uint16 {
	return netip.MustParseAddrPort(b.ln.Addr().String()).Port()
}

func TestFastPathReusesUpstreamConnections(t *testing.T) {
	be := newRawBackend(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	for i := 0; i < 20; i++ {
		if code, body, _ := h.get("/"); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := be.conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 20 sequential requests, want 1", n)
	}
}

func TestFastPathStaleConnectionReplaced(t *testing.T) {
	// The upstream closes every connection after one answer without saying
	// so: the pooled connection is stale on the next request, which must
	// still succeed (on a new connection) and not count against the
	// endpoint.
	be := newRawBackend(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "outlier: {consecutive_errors: 1}")
	h := startProxy(t, cfg, nil, Deps{})
	for i := 0; i < 5; i++ {
		if code, body, _ := h.get("/"); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := h.counter("gslb_proxy_ejections_total"); n != 0 {
		t.Fatalf("%v ejections, want 0", n)
	}
}

func TestFastPathResponses(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	bigHeader := strings.Repeat("v", 6000)
	for _, tc := range []struct {
		name, method, resp string
		closeAfter         bool
		wantCode           int
		wantBody           string
		wantHdr            map[string]string // "" = absent
		wantErr            bool
	}{
		{name: "simple", resp: "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Custom: a\r\nContent-Length: 5\r\n\r\nhello",
			wantCode: 201, wantBody: "hello", wantHdr: map[string]string{"Content-Type": "text/plain", "X-Custom": "a", "Via": "1.1 gslb", RegionHeader: "east"}},
		{name: "hop-by-hop removed", resp: "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			wantCode: 200, wantBody: "ok", wantHdr: map[string]string{"Keep-Alive": "", "Proxy-Connection": ""}},
		{name: "connection names a header", resp: "HTTP/1.1 200 OK\r\nConnection: X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nContent-Length: 2\r\n\r\nok",
			wantCode: 200, wantBody: "ok", wantHdr: map[string]string{"X-Drop": "", "X-Keep": "2"}},
		{name: "large body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + big, wantCode: 200, wantBody: big},
		{name: "head larger than the buffer", resp: "HTTP/1.1 200 OK\r\nX-Big: " + bigHeader + "\r\nContent-Length: 2\r\n\r\nok",
			wantCode: 200, wantBody: "ok", wantHdr: map[string]string{"X-Big": bigHeader}},
		{name: "close-delimited body", resp: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", closeAfter: true,
			wantCode: 200, wantBody: "until close"},
		{name: "chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			wantCode: 200, wantBody: "abcde"},
		{name: "bare LF line endings", resp: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", wantCode: 200, wantBody: "ok"},
		{name: "HEAD has no body", method: http.MethodHead, resp: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
			wantCode: 200, wantBody: "", wantHdr: map[string]string{"Content-Length": "10"}},
		{name: "204", resp: "HTTP/1.1 204 No Content\r\n\r\n", wantCode: 204, wantBody: ""},
		{name: "103 early hints forwarded before 200", resp: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			wantCode: 200, wantBody: "ok", wantHdr: map[string]string{"Link": ""}},
		{name: "truncated body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", closeAfter: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newRawBackend(t, func(*http.Request) (string, bool) { return tc.resp, tc.closeAfter })
			cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "")
			h := startProxy(t, cfg, nil, Deps{})
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			for i := 0; i < 2; i++ { // the second request may reuse the connection
				req, _ := http.NewRequest(method, h.url+"/", nil)
				req.Host = testHost
				resp, err := h.client.Do(req)
				if err != nil {
					if tc.wantErr {
						continue
					}
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if tc.wantErr {
					if err == nil {
						t.Fatalf("truncated body read without error: %q", b)
					}
					continue
				}
				if err != nil || resp.StatusCode != tc.wantCode || string(b) != tc.wantBody {
					t.Fatalf("got %d %q (%v), want %d %q", resp.StatusCode, b, err, tc.wantCode, tc.wantBody)
				}
				for k, want := range tc.wantHdr {
					if got := resp.Header.Get(k); got != want {
						t.Fatalf("header %s = %q, want %q", k, got, want)
					}
				}
			}
		})
	}
}

func TestFastPathRequestHead(t *testing.T) {
	be := newRawBackend(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	h.get("/p/a%2Fb?q=1&r=2", "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5",
		"Te", "trailers, deflate", "X-End", "kept", "Forwarded", "for=1.2.3.4", "X-Forwarded-Host", "evil")
	head := <-be.reqs
	lines := strings.Split(head, "\r\n")
	if lines[0] != "GET /p/a%2Fb?q=1&r=2 HTTP/1.1" {
		t.Fatalf("request line %q", lines[0])
	}
	has := func(l string) bool {
		for _, x := range lines {
			if strings.EqualFold(x, l) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"Host: " + testHost, "X-End: kept", "Te: trailers", "X-Forwarded-For: 127.0.0.1",
		"X-Forwarded-Host: " + testHost, "X-Forwarded-Proto: http", "Via: 1.1 gslb"} {
		if !has(want) {
			t.Errorf("upstream request lacks %q:\n%s", want, head)
		}
	}
	for _, l := range lines {
		for _, bad := range []string{"X-Hop:", "Keep-Alive:", "Connection:", "Forwarded:", "Content-Length:", "X-Forwarded-Host: evil"} {
			if strings.HasPrefix(strings.ToLower(l), strings.ToLower(bad)) {
				t.Errorf("upstream request carries %q:\n%s", l, head)
			}
		}
	}
}

func TestFastPathNonGETMethodsSendContentLength(t *testing.T) {
	be := newRawBackend(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false
	})
	cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	resp := h.do(http.MethodDelete, "/x", nil)
	resp.Body.Close()
	if head := <-be.reqs; !strings.Contains(head, "Content-Length: 0\r\n") || !strings.HasPrefix(head, "DELETE /x ") {
		t.Fatalf("upstream request:\n%s", head)
	}
}

func TestParseSimpleHead(t *testing.T) {
	for _, tc := range []struct {
		head, method string
		ok           bool
		code         int
		length       int64
		close        bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", true, 200, 3, false},
		{"HTTP/1.1 200\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", "GET", true, 200, 3, true},
		{"HTTP/1.1 304 Not Modified\r\n\r\n", "GET", true, 304, 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD", true, 200, 0, false},
		{"HTTP/1.1 200 OK\r\n\r\n", "GET", false, 0, 0, false},                                           // close-delimited
		{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", false, 0, 0, false},                      // HTTP/1.0
		{"HTTP/1.1 101 Switching Protocols\r\n\r\n", "GET", false, 0, 0, false},                          // 1xx
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", false, 0, 0, false},             // chunked
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "GET", false, 0, 0, false}, // conflicting
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", false, 0, 0, false},
		{"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 1\r\n\r\n", "GET", false, 0, 0, false}, // obs-fold
		{"HTTP/1.1 200 OK\r\nBad Name: a\r\nContent-Length: 1\r\n\r\n", "GET", false, 0, 0, false},
		{"HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\n", "GET", false, 0, 0, false},
		{"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\n", "GET", false, 0, 0, false},
		{"HTTP/1.1 200 OK\r\nConnection: x-other\r\nContent-Length: 1\r\n\r\n", "GET", false, 0, 0, false},
	} {
		h, ok := parseSimpleHead([]byte(tc.head), tc.method)
		if ok != tc.ok || (ok && (h.code != tc.code || h.length != tc.length || h.close != tc.close || h.size != len(tc.head))) {
			t.Errorf("%q %s: got %+v %v, want ok=%v code=%d length=%d close=%v", tc.head, tc.method, h, ok, tc.ok, tc.code, tc.length, tc.close)
		}
	}
}

func TestPeekHead(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), 64)
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	if got := string(peekHead(r)); got != "HTTP/1.1 200 OK\r\nA: b\r\n\r\n" {
		t.Fatalf("peekHead = %q", got)
	}
	r = bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\nA: "+strings.Repeat("b", 100)+"\r\n\r\n"), 32)
	if got := peekHead(r); got != nil {
		t.Fatalf("head larger than the buffer: %q", got)
	}
	r = bufio.NewReaderSize(io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), errReader{}), 64)
	if got := peekHead(r); got != nil {
		t.Fatalf("incomplete head: %q", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestFastPathSwapClosesRemovedUpstreamConnections(t *testing.T) {
	ok := func(*http.Request) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false }
	a := newRawBackend(t, ok)
	b := newRawBackend(t, ok)
	cfg := testConfig(t, []ep{{"east-a", "east", a.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	if code, _, _ := h.get("/"); code != 200 {
		t.Fatalf("status %d", code)
	}
	cfg2 := testConfig(t, []ep{{"east-b", "east", b.port()}}, "")
	if err := h.srv.Swap(cfg2, routing.New(cfg2, health.StaticSource(cfg2), geo.Nowhere{})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to the removed upstream to close", func() bool { return a.closed.Load() == 1 })
	if code, _, _ := h.get("/"); code != 200 || b.conns.Load() != 1 {
		t.Fatalf("after swap: status %d, %d connections to the new upstream", code, b.conns.Load())
	}
}

func TestFastPathTooMany1xx(t *testing.T) {
	be := newRawBackend(t, func(*http.Request) (string, bool) {
		return strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 10) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	cfg := testConfig(t, []ep{{"east-1", "east", be.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	if code, _, _ := h.get("/"); code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", code)
	}
}

func TestConnPoolPruneAndRetire(t *testing.T) {
	var p connPool
	mk := func() (*upConn, net.Conn) {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c2.Close() })
		return newUpConn(c1), c2
	}
	now := time.Unix(1_700_000_000, 0)
	old, oldPeer := mk()
	fresh, _ := mk()
	p.put(old, 4, now.Add(-time.Hour))
	p.put(fresh, 4, now)
	p.prune(now.Add(-time.Minute))
	if n := p.idleCount(); n != 1 {
		t.Fatalf("%d idle after prune, want 1", n)
	}
	if _, err := oldPeer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("pruned connection not closed: %v", err)
	}
	if got := p.get(); got != fresh {
		t.Fatal("get did not return the fresh connection")
	}
	third, _ := mk()
	p.put(fresh, 1, now)
	p.put(third, 1, now) // over the limit: closed
	if n := p.idleCount(); n != 1 {
		t.Fatalf("%d idle with limit 1", n)
	}
	p.retire()
	again, peer := mk()
	p.put(again, 4, now)
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle after retire", n)
	}
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection returned after retire not closed: %v", err)
	}
}
