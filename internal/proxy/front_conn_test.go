package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// delayBackend answers with the request path after sleeping ?d=
// milliseconds.
func delayBackend(t *testing.T) *backend {
	return newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		var d int
		fmt.Sscanf(r.URL.Query().Get("d"), "%d", &d)
		time.Sleep(time.Duration(d) * time.Millisecond)
		io.WriteString(w, r.URL.Path)
	})
}

// TestFrontPipelinedWhileHandlerRuns: the next request arrives in the
// socket while the handler for the current one runs (with and without the
// client watch, which starts at 10 ms); it is answered at once, not after
// the idle timeout with a reset.
func TestFrontPipelinedWhileHandlerRuns(t *testing.T) {
	east := delayBackend(t)
	for _, fast := range []bool{true, false} {
		for _, delay := range []int{8, 50} {
			t.Run(fmt.Sprintf("fast_http1=%v/handler_%dms", fast, delay), func(t *testing.T) {
				h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}},
					fmt.Sprintf("timeouts: {idle: 2s}\nfast_http1: %v", fast)), nil, Deps{})
				rc := dialRaw(t, h)
				rc.send(get(fmt.Sprintf("/first?d=%d", delay)))
				time.Sleep(time.Duration(delay) * time.Millisecond / 2) // the handler runs
				rc.send(get("/second"))
				if _, body := rc.read("GET"); body != "/first" {
					t.Fatalf("first: %q", body)
				}
				if _, body := rc.read("GET"); body != "/second" {
					t.Fatalf("second: %q", body)
				}
			})
		}
	}
}

// TestFrontPipeliningStress runs connections that pipeline bursts of
// requests or send them in pieces, against handlers of varying speed, and
// checks every response comes back in order.
func TestFrontPipeliningStress(t *testing.T) {
	east := delayBackend(t)
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, "timeouts: {idle: 5s, read_header: 5s}"), nil, Deps{})
	addr := strings.TrimPrefix(h.url, "http://")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for i := range 60 {
				var reqs, want []string
				for j := range 1 + rng.IntN(3) {
					p := fmt.Sprintf("/g%d-%d-%d", g, i, j)
					want = append(want, p)
					reqs = append(reqs, get(fmt.Sprintf("%s?d=%d", p, rng.IntN(25))))
				}
				if rng.IntN(2) == 0 {
					io.WriteString(c, strings.Join(reqs, ""))
				} else {
					for _, r := range reqs {
						io.WriteString(c, r[:5])
						time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
						io.WriteString(c, r[5:])
					}
				}
				for _, w := range want {
					resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
					if err != nil {
						t.Errorf("connection %d, burst %d, %s: %v", g, i, w, err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					if string(b) != w {
						t.Errorf("out of step: got %q, want %q", b, w)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestFrontCutsTruncatedUpstreamBody: an upstream (https, so the
// ReverseProxy path) that cuts a body of unknown length must not have its
// response presented to the client as complete.
func TestFrontCutsTruncatedUpstreamBody(t *testing.T) {
	certFile, keyFile := sharedUpstreamCert(t)
	t.Setenv("SSL_CERT_FILE", certFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cuts the chunked body
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	up.StartTLS()
	t.Cleanup(up.Close)
	port := netip.MustParseAddrPort(up.Listener.Addr().String()).Port()
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			h := startProxy(t, testConfig(t, []ep{{"east-1", "east", port}},
				fmt.Sprintf("upstream_scheme: https\nretries: {attempts: 0}\nfast_http1: %v", fast)), nil, Deps{})
			rc := dialRaw(t, h)
			rc.send(get("/"))
			resp, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
			if err != nil {
				return // cut before the head: fine too
			}
			if b, err := io.ReadAll(resp.Body); err == nil {
				t.Fatalf("a truncated upstream body was delivered as complete: %q", b)
			}
		})
	}
}

// TestFrontWriteTimeoutBoundsResponse: timeouts.write bounds the whole
// response, from the request's start, for a client reading slowly.
func TestFrontWriteTimeoutBoundsResponse(t *testing.T) {
	const size = 24 << 20
	body := strings.Repeat("x", size)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.WriteString(w, body)
	})
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}},
				fmt.Sprintf("timeouts: {write: 400ms}\nfast_http1: %v", fast)), nil, Deps{})
			rc := dialRaw(t, h)
			_ = rc.c.(*net.TCPConn).SetReadBuffer(64 << 10)
			rc.send(get("/"))
			resp, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			// 24 MiB at 256 KiB per 20 ms takes at least 1.9 s, well past
			// the write timeout: the response must be cut.
			n, buf := 0, make([]byte, 256<<10)
			for {
				m, err := resp.Body.Read(buf)
				n += m
				if err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n == size {
				t.Fatalf("all %d bytes written to a slow client despite the 400ms write timeout", n)
			}
		})
	}
}

// writeWith runs handler against a frontWriter on a pipe and returns what
// the client receives.
func writeWith(t *testing.T, method string, handler func(w http.ResponseWriter)) string {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	fc := &frontConn{f: &frontServer{}, c: a}
	fc.w = frontWriter{fc: fc, header: make(http.Header)}
	got := make(chan string)
	go func() { x, _ := io.ReadAll(b); got <- string(x) }()
	fc.w.reset(&http.Request{Method: method})
	handler(&fc.w)
	fc.w.finish()
	fc.w.flushOut()
	a.Close()
	return <-got
}

// TestFrontWriterHeadIsFixedAtWriteHeader: as in net/http, the head is
// the header as it was at WriteHeader; later changes are trailers or
// nothing, and no-body statuses carry no framing fields.
func TestFrontWriterHeadIsFixedAtWriteHeader(t *testing.T) {
	headOf := func(raw string) string { h, _, _ := strings.Cut(raw, "\r\n\r\n"); return h }
	parse := func(raw string) (*http.Response, string) {
		t.Helper()
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: body: %v", raw, err)
		}
		return resp, string(b)
	}

	raw := writeWith(t, "GET", func(w http.ResponseWriter) {
		w.WriteHeader(200)
		w.Header().Set("Content-Length", "5") // too late
		w.(http.Flusher).Flush()
		io.WriteString(w, "hello")
	})
	if strings.Contains(headOf(raw), "Content-Length") {
		t.Fatalf("a Content-Length set after WriteHeader reached the head: %q", raw)
	}
	if _, body := parse(raw); body != "hello" {
		t.Fatalf("body %q", body)
	}

	raw = writeWith(t, "GET", func(w http.ResponseWriter) {
		w.WriteHeader(200)
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	if n := strings.Count(headOf(raw), "Content-Length"); n != 1 {
		t.Fatalf("%d Content-Length fields: %q", n, raw)
	}

	raw = writeWith(t, "GET", func(w http.ResponseWriter) {
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
	})
	if resp, body := parse(raw); body != "body" || resp.Trailer.Get("X-Sum") != "42" || resp.Header.Get("X-Sum") != "" {
		t.Fatalf("declared trailer: body %q trailer %q header %q\n%q", body, resp.Trailer.Get("X-Sum"), resp.Header.Get("X-Sum"), raw)
	}

	raw = writeWith(t, "GET", func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(204)
	})
	if strings.Contains(raw, "Content-Length") || strings.Contains(raw, "Transfer-Encoding") {
		t.Fatalf("204 with a framing field: %q", raw)
	}

	raw = writeWith(t, "GET", func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "3")
		w.WriteHeader(103)
		w.WriteHeader(200)
		io.WriteString(w, "abc")
	})
	interim, final, _ := strings.Cut(raw, "\r\n\r\n")
	if !strings.HasPrefix(interim, "HTTP/1.1 103 ") || strings.Contains(interim, "Content-Length") {
		t.Fatalf("interim response %q", interim)
	}
	if _, body := parse(final); body != "abc" {
		t.Fatalf("final response %q", final)
	}
}

// upstreamCert is the self-signed certificate of https test upstreams, one
// per test process: the system root pool that SSL_CERT_FILE feeds is
// loaded once per process, so a second certificate would not be trusted
// (with -count > 1). TestMain removes its directory.
var upstreamCert struct {
	once           sync.Once
	dir, cert, key string
}

func sharedUpstreamCert(t *testing.T) (certFile, keyFile string) {
	upstreamCert.once.Do(func() {
		dir, err := os.MkdirTemp("", "gslb-proxy-test-")
		if err != nil {
			t.Fatal(err)
		}
		upstreamCert.dir = dir
		upstreamCert.cert, upstreamCert.key, _ = writeSelfSigned(t, dir)
	})
	if upstreamCert.cert == "" {
		t.Fatal("no upstream certificate")
	}
	return upstreamCert.cert, upstreamCert.key
}

// TestFrontPipelinedBackToBack: a client writes a request and, a few
// microseconds later, the next one, so that the second often arrives just
// after the front end read the first: every one is answered (none waits
// for the idle timeout and a reset).
func TestFrontPipelinedBackToBack(t *testing.T) {
	east := delayBackend(t)
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, "timeouts: {idle: 2s, read_header: 2s}"), nil, Deps{})
	var wg sync.WaitGroup
	for conn := range 8 {
		wg.Go(func() {
			rc := dialRaw(t, h)
			for i := range 600 {
				a, b := fmt.Sprintf("/a%d-%d", conn, i), fmt.Sprintf("/b%d-%d", conn, i)
				if _, err := io.WriteString(rc.c, get(a)); err != nil {
					t.Error(err)
					return
				}
				for start := time.Now(); time.Since(start) < time.Duration(i%40)*time.Microsecond; {
				}
				if _, err := io.WriteString(rc.c, get(b)); err != nil {
					t.Error(err)
					return
				}
				for _, want := range []string{a, b} {
					resp, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
					if err != nil {
						t.Errorf("connection %d, pair %d: %s not answered: %v", conn, i, want, err)
						return
					}
					if body, _ := io.ReadAll(resp.Body); string(body) != want {
						t.Errorf("got %q, want %q", body, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestFrontClientWatchHoldsNoThreads: requests that run long are watched
// for their client's close without an OS thread each.
func TestFrontClientWatchHoldsNoThreads(t *testing.T) {
	threads := func() int {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Skip("no /proc/self/status")
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				var n int
				fmt.Sscan(strings.TrimSpace(v), &n)
				return n
			}
		}
		t.Skip("no thread count")
		return 0
	}
	const n = 200
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "x")
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, ""), nil, Deps{})
	before := threads()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, h)
		clients[i].send(get("/hang"))
	}
	started.Wait()
	time.Sleep(3 * frontWatchAfter) // every watch has begun
	during := threads()
	close(release)
	for _, rc := range clients {
		rc.read("GET")
	}
	if during-before > n/4 {
		t.Fatalf("OS threads went from %d to %d with %d watched requests in flight", before, during, n)
	}
}

// TestFrontEndWatchLeavesNoTimer: a client check running while its
// request ends cannot leave the watch timer armed after endWatch.
func TestFrontEndWatchLeavesNoTimer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	fc := &frontConn{c: server}
	fc.peek.init(server)
	checked := make(chan struct{}, 4)
	fc.watchTimer = time.AfterFunc(time.Hour, func() { fc.checkClient(); checked <- struct{}{} })
	fc.watchTimer.Stop()
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc.inRequest, fc.cancel = true, cancel

	fc.mu.Lock() // the check, once fired, waits here
	fc.watchTimer.Reset(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	ended := make(chan bool)
	go func() { ended <- fc.endWatch() }() // waits here too
	time.Sleep(20 * time.Millisecond)
	fc.mu.Unlock()
	if <-ended {
		t.Fatal("client reported gone")
	}
	<-checked
	if fc.watchTimer.Stop() {
		t.Fatal("the watch timer was still armed after endWatch")
	}
}
