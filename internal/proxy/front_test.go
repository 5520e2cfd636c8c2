package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawClient is one TCP connection to the proxy, speaking HTTP/1.1 by hand.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, h *harness) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response to a request of method, with its body.
func (rc *rawClient) read(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection (EOF with
// nothing more to read).
func (rc *rawClient) closed() bool {
	_, err := rc.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err)
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// pathLog is a backend recording the request paths it served, in order.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathLog) add(path string) {
	p.mu.Lock()
	p.paths = append(p.paths, path)
	p.mu.Unlock()
}

func (p *pathLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

func get(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + testHost + "\r\n" + strings.Join(extra, "") + "\r\n"
}

func TestFrontKeepAlivePipeliningAndClose(t *testing.T) {
	var log pathLog
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		log.add(r.URL.RequestURI())
		fmt.Fprint(w, "east ", r.URL.Path)
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, ""), nil, Deps{})
	rc := dialRaw(t, h)

	rc.send(get("/one"))
	resp, body := rc.read("GET")
	if resp.StatusCode != 200 || body != "east /one" || resp.ContentLength != int64(len(body)) || resp.Header.Get("Date") == "" {
		t.Fatalf("first: %d %q length %d date %q", resp.StatusCode, body, resp.ContentLength, resp.Header.Get("Date"))
	}
	// Three requests in one write are answered in order on the same
	// connection.
	rc.send(get("/two") + "HEAD /three HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n" + get("/four?q=1"))
	for _, want := range []struct{ method, body string }{{"GET", "east /two"}, {"HEAD", ""}, {"GET", "east /four"}} {
		resp, body := rc.read(want.method)
		if resp.StatusCode != 200 || body != want.body {
			t.Fatalf("%s: %d %q, want %q", want.method, resp.StatusCode, body, want.body)
		}
		if want.method == "HEAD" && resp.ContentLength != int64(len("east /three")) {
			t.Errorf("HEAD Content-Length %d, want the upstream's %d", resp.ContentLength, len("east /three"))
		}
	}
	// Connection: close is honoured and said back.
	rc.send(get("/five", "Connection: close\r\n"))
	resp, body = rc.read("GET")
	if body != "east /five" || !resp.Close {
		t.Fatalf("close: %q close=%v", body, resp.Close)
	}
	if !rc.closed() {
		t.Fatal("connection still open after Connection: close")
	}
	want := []string{"/one", "/two", "/three", "/four?q=1", "/five"}
	if got := log.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("upstream saw %q, want %q", got, want)
	}
}

// TestFrontHandsOffWhatItDoesNotServe sends requests the front end leaves
// to net/http, each on a connection that carries a plain GET afterwards:
// net/http's answer is the one the client gets, the connection stays in
// step, and no smuggled request reaches the upstream. The same table runs
// with fast_http1 off (net/http alone), the reference.
func TestFrontHandsOffWhatItDoesNotServe(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testHandOff(t, fast) })
	}
}

func testHandOff(t *testing.T, fast bool) {
	var log pathLog
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		log.add(r.Method + " " + r.URL.RequestURI() + " " + string(b))
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, fmt.Sprintf("limits: {max_header_bytes: 8192}\nfast_http1: %v", fast)), nil, Deps{})
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n"
	cases := []struct {
		name, req string
		status    int
		body      string // "" when not checked
		keepAlive bool
	}{
		{"POST with a body", "POST /p HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 3\r\n\r\nabc", 200, "POST /p abc", true},
		{"chunked body", "PUT /c HTTP/1.1\r\nHost: " + testHost + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n", 200, "PUT /c xyz", true},
		{"GET with a body hiding a request", "GET /g HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: " +
			fmt.Sprint(len(smuggled)) + "\r\n\r\n" + smuggled, 200, "GET /g " + smuggled, true},
		{"Content-Length and Transfer-Encoding", "POST /cl-te HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, "POST /cl-te ", true},
		{"space before the colon", "GET /sp HTTP/1.1\r\nHost: " + testHost + "\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "", false},
		{"two Hosts", "GET /hh HTTP/1.1\r\nHost: " + testHost + "\r\nHost: other.example\r\n\r\n", 400, "", false},
		{"no Host", "GET /nh HTTP/1.1\r\n\r\n", 400, "", false},
		{"bad Host", "GET /bh HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "", false},
		{"bare LF line ends", "GET /lf HTTP/1.1\nHost: " + testHost + "\n\n", 200, "GET /lf ", true},
		{"obs-fold", "GET /fold HTTP/1.1\r\nHost: " + testHost + "\r\nX-A: 1\r\n 2\r\n\r\n", 200, "GET /fold ", true},
		{"absolute-form target", "GET http://" + testHost + "/abs HTTP/1.1\r\nHost: other\r\n\r\n", 200, "GET /abs ", true},
		{"head larger than the front end's buffer", "GET /big HTTP/1.1\r\nHost: " + testHost + "\r\nCookie: " +
			strings.Repeat("c", 6000) + "\r\n\r\n", 200, "GET /big ", true},
		{"head over max_header_bytes", "GET /huge HTTP/1.1\r\nHost: " + testHost + "\r\nCookie: " +
			strings.Repeat("c", 20000) + "\r\n\r\n", 431, "", false},
		{"invalid escape in the target", "GET /%zz HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n", 400, "", false},
		{"control character in a value", "GET /ctl HTTP/1.1\r\nHost: " + testHost + "\r\nX-A: a\x01b\r\n\r\n", 400, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, h)
			rc.send(tc.req)
			resp, body := rc.read(strings.Fields(tc.req)[0])
			if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if !tc.keepAlive {
				return
			}
			rc.send(get("/after"))
			if resp, body := rc.read("GET"); resp.StatusCode != 200 || body != "GET /after " {
				t.Fatalf("next request on the connection: %d %q", resp.StatusCode, body)
			}
		})
	}
	wantHandoffs := float64(len(cases))
	if !fast {
		wantHandoffs = 0
	}
	if got := h.counter("gslb_proxy_http1_handoffs_total"); got != wantHandoffs {
		t.Errorf("gslb_proxy_http1_handoffs_total = %v, want %v", got, wantHandoffs)
	}
	for _, p := range log.list() {
		if strings.HasPrefix(p, "GET /smuggled") {
			t.Fatalf("a smuggled request reached the upstream: %q", log.list())
		}
	}
}

func TestFrontHTTP10(t *testing.T) {
	east := newBackend(t, "east", nil)
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, ""), nil, Deps{})
	rc := dialRaw(t, h)
	rc.send("GET / HTTP/1.0\r\nHost: " + testHost + "\r\n\r\n")
	resp, body := rc.read("GET")
	if resp.StatusCode != 200 || body != "east" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !rc.closed() {
		t.Fatal("HTTP/1.0 connection without keep-alive left open")
	}
}

// TestFrontResponseFraming checks, on the wire, how the front end frames
// each kind of upstream response, and that net/http (fast_http1 off)
// frames them the same way.
func TestFrontResponseFraming(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testResponseFraming(t, fast) })
	}
}

func testResponseFraming(t *testing.T, fast bool) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked": // no length: the upstream sends it chunked
			io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			io.WriteString(w, big)
		case "/bigchunked":
			io.WriteString(w, big)
		case "/empty204":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Add("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "final")
		case "/nocontenttype":
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>")
		}
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, fmt.Sprintf("fast_http1: %v", fast)), nil, Deps{})
	rc := dialRaw(t, h)

	check := func(path string, status int, body string, chunked bool) *http.Response {
		t.Helper()
		rc.send(get(path))
		resp, got := rc.read("GET")
		isChunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
		if resp.StatusCode != status || got != body || isChunked != chunked {
			t.Fatalf("%s: %d chunked=%v %d bytes, want %d chunked=%v %d bytes",
				path, resp.StatusCode, isChunked, len(got), status, chunked, len(body))
		}
		if !chunked && status != 204 && status != 304 && resp.ContentLength != int64(len(body)) {
			t.Fatalf("%s: Content-Length %d, body %d", path, resp.ContentLength, len(body))
		}
		return resp
	}
	check("/length", 200, "hello", false)
	check("/chunked", 200, "part1 part2", true)
	if resp := check("/trailer", 200, "body", true); resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("trailer X-Sum = %q, want 42 (trailers %v)", resp.Trailer.Get("X-Sum"), resp.Trailer)
	}
	check("/big", 200, big, false)
	check("/bigchunked", 200, big, true)
	check("/empty204", 204, "", false)
	if resp := check("/notmodified", 304, "", false); resp.Header.Get("Etag") != `"x"` {
		t.Fatalf("304 lost its ETag: %v", resp.Header)
	}
	if resp := check("/nocontenttype", 200, "<html>", false); resp.Header["Content-Type"] != nil {
		t.Fatalf("a Content-Type was invented: %q", resp.Header["Content-Type"])
	}

	// An interim 103 comes before the final response, on the wire.
	rc.send(get("/hints"))
	line, err := rc.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 103 ") {
		t.Fatalf("first line %q (%v), want a 103", line, err)
	}
	for {
		l, err := rc.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	if resp, body := rc.read("GET"); resp.StatusCode != 200 || body != "final" {
		t.Fatalf("after 103: %d %q", resp.StatusCode, body)
	}
}

func TestFrontIdleAndHeaderTimeouts(t *testing.T) {
	east := newBackend(t, "east", nil)
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}},
		"timeouts: {idle: 300ms, read_header: 300ms}"), nil, Deps{})

	idle := dialRaw(t, h)
	idle.send(get("/"))
	if resp, _ := idle.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Nothing more: the server closes the connection (the client's own
	// deadline, 20 s, would fail the read otherwise).
	if !idle.closed() {
		t.Fatal("idle connection not closed")
	}

	slow := dialRaw(t, h)
	slow.send("GET / HTTP/1.1\r\nHost: ") // and never the rest
	if !slow.closed() {
		t.Fatal("connection with an unfinished head not closed")
	}

	silent := dialRaw(t, h) // connects and says nothing
	if !silent.closed() {
		t.Fatal("silent connection not closed")
	}
}

// TestFrontShutdownClosesIdleKeepsBusy: at shutdown an idle keep-alive
// connection is closed at once, while a request in flight completes and
// is told the connection closes.
func TestFrontShutdownClosesIdleKeepsBusy(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, ""), nil, Deps{})

	idle := dialRaw(t, h)
	idle.send(get("/"))
	if resp, _ := idle.read("GET"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	busy := dialRaw(t, h)
	busy.send(get("/slow"))
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	if !idle.closed() {
		t.Fatal("idle connection not closed at shutdown")
	}
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Fatalf("request in flight at shutdown: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestFrontMatchesNetHTTPOnTheWire sends the same requests to the proxy
// with fast_http1 on and off and compares the responses byte for byte,
// header order and Date aside.
func TestFrontMatchesNetHTTPOnTheWire(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("Etag", `"x"`)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(304)
		case "/299":
			w.WriteHeader(299)
			io.WriteString(w, "x")
		case "/103":
			w.Header().Set("Link", "</a>; rel=preload")
			w.WriteHeader(103)
			io.WriteString(w, "after103")
		case "/trailer":
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "body")
			w.Header().Set("X-T", "v")
		case "/nobody":
		default:
			io.WriteString(w, "hello")
		}
	})
	var fast, std *harness
	for _, on := range []bool{true, false} {
		h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, fmt.Sprintf("fast_http1: %v", on)), nil, Deps{})
		if on {
			fast = h
		} else {
			std = h
		}
	}
	date := regexp.MustCompile(`Date: [^\r]*`)
	exchange := func(h *harness, req string) string {
		rc := dialRaw(t, h)
		rc.send(req)
		b, _ := io.ReadAll(rc.c)
		var heads []string
		for _, part := range strings.SplitAfter(date.ReplaceAllString(string(b), "Date: -"), "\r\n\r\n") {
			line, fields, ok := strings.Cut(part, "\r\n")
			if !ok || !strings.HasPrefix(line, "HTTP/") {
				heads = append(heads, fmt.Sprintf("%q", part))
				continue
			}
			f := strings.Split(strings.TrimSuffix(fields, "\r\n\r\n"), "\r\n")
			sort.Strings(f)
			heads = append(heads, fmt.Sprintf("%q %q", line, f))
		}
		return strings.Join(heads, "\n")
	}
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: nope.example\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: nope.example\r\nConnection: close\r\n\r\n",
		"GET /204 HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"GET /304 HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"GET /299 HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"GET /103 HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"GET /trailer HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"GET /nobody HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
		"HEAD /nobody HTTP/1.1\r\nHost: " + testHost + "\r\nConnection: close\r\n\r\n",
	} {
		if a, b := exchange(fast, req), exchange(std, req); a != b {
			t.Errorf("%q\nfront end:\n%s\nnet/http:\n%s", strings.SplitN(req, "\r\n", 3)[:2], a, b)
		}
	}
}

// TestFrontHandOffKeepsReadHeaderDeadline: a head that began under the
// front end and goes to net/http midway (a bare LF) keeps its read-header
// deadline; the hand-off does not restart it.
func TestFrontHandOffKeepsReadHeaderDeadline(t *testing.T) {
	east := newBackend(t, "east", nil)
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}},
				fmt.Sprintf("fast_http1: %v\ntimeouts: {read_header: 1s}", fast)), nil, Deps{})
			rc := dialRaw(t, h)
			rc.send("GET / HTTP/1.1\r\nHost: " + testHost + "\r\nX-A: a")
			// One byte every 100 ms for 1.8 s, a bare LF at 0.9 s: the
			// head takes longer than read_header in all.
			var err error
			for i := 0; i < 18 && err == nil; i++ {
				time.Sleep(100 * time.Millisecond)
				b := "a"
				if i == 8 {
					b = "\nX-B: b"
				}
				_, err = io.WriteString(rc.c, b)
			}
			if err == nil {
				_, err = io.WriteString(rc.c, "\r\n\r\n")
			}
			if resp, err := http.ReadResponse(rc.br, nil); err == nil {
				t.Fatalf("a head that took 1.8 s with read_header 1s was served: %s", resp.Status)
			}
		})
	}
}

// TestNoContentTypeInvented: a response the upstream sends without a
// Content-Type reaches the client without one, whichever path carries it:
// the fast path (GET) or the ReverseProxy (POST, a request with a body).
// The ReverseProxy copies header values, not keys, so the nil value that
// keeps net/http from sniffing has to be set on the client's header at
// WriteHeader (recorder), not on the upstream response.
func TestNoContentTypeInvented(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = nil // the backend sends none either
		io.WriteString(w, "<html><body>hello</body></html>")
	})
	h := startProxy(t, testConfig(t, []ep{{"east-1", "east", east.port()}}, ""), nil, Deps{})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("form=1")
		}
		resp := h.do(method, "/page", body)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(got), "hello") {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, got)
		}
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("%s: the proxy invented Content-Type %q", method, ct)
		}
	}
}
