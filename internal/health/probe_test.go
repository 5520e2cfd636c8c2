package health

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
)

func TestHTTPProbeStatus(t *testing.T) {
	var gotHost, gotHeader, gotPath, gotMethod atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		gotHeader.Store(r.Header.Get("X-Check"))
		gotPath.Store(r.URL.Path)
		gotMethod.Store(r.Method)
		switch r.URL.Path {
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/", http.StatusFound)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	ep := endpointFor(t, srv.Listener.Addr().String())
	tests := []struct {
		path   string
		expect []string
		ok     bool
		reason string
	}{
		{"/", []string{"2xx"}, true, "ok"},
		{"/503", []string{"2xx"}, false, "status 503"},
		{"/503", []string{"200", "503"}, true, "ok"},
		{"/204", []string{"200"}, false, "status 204"},
		{"/204", []string{"204"}, true, "ok"},
		{"/redirect", []string{"2xx"}, false, "status 302"}, // redirects are not followed
		{"/redirect", []string{"3xx"}, true, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.path+"_"+strings.Join(tt.expect, ","), func(t *testing.T) {
			check := httpCheck(func(c *config.Check) { c.Path = tt.path; c.ExpectStatus = tt.expect })
			r := Probe(context.Background(), check, ep)
			if r.OK != tt.ok || r.Reason != tt.reason {
				t.Fatalf("Probe(%s, %v) = ok=%v reason=%q detail=%q; want ok=%v reason=%q",
					tt.path, tt.expect, r.OK, r.Reason, r.Detail, tt.ok, tt.reason)
			}
		})
	}

	check := httpCheck(func(c *config.Check) {
		c.Method, c.Path, c.Host = "HEAD", "/health", "shop.example.com"
		c.Headers = map[string]string{"X-Check": "yes"}
	})
	if r := Probe(context.Background(), check, ep); !r.OK {
		t.Fatalf("probe with host header: %+v", r)
	}
	if gotHost.Load() != "shop.example.com" || gotHeader.Load() != "yes" || gotPath.Load() != "/health" || gotMethod.Load() != "HEAD" {
		t.Fatalf("server saw host=%v header=%v path=%v method=%v", gotHost.Load(), gotHeader.Load(), gotPath.Load(), gotMethod.Load())
	}
}

func TestProbeCheckPortOverridesEndpointPort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ep := endpointFor(t, srv.Listener.Addr().String())
	_, port := hostPort(t, srv.Listener.Addr().String())
	ep.Port = closedPort(t)
	if r := Probe(context.Background(), httpCheck(nil), ep); r.OK || r.Reason != "connection refused" {
		t.Fatalf("probe of closed endpoint port = %+v, want connection refused", r)
	}
	check := httpCheck(func(c *config.Check) { c.Port = port })
	if r := Probe(context.Background(), check, ep); !r.OK {
		t.Fatalf("probe with check.port = %+v, want ok", r)
	}
}

// closedPort returns a loopback TCP port with no listener.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := hostPort(t, ln.Addr().String())
	ln.Close()
	return port
}

func TestHTTPProbeHungServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	check := httpCheck(func(c *config.Check) { c.Timeout = 200 * time.Millisecond })
	r := Probe(context.Background(), check, endpointFor(t, srv.Listener.Addr().String()))
	if r.OK || r.Reason != "timeout" {
		t.Fatalf("hung server: %+v, want timeout", r)
	}
}

func TestHTTPProbeSilentServerTimesOut(t *testing.T) {
	// The kernel completes the TCP handshake for a listener that never
	// accepts: the connection opens and the request is never answered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	check := httpCheck(func(c *config.Check) { c.Timeout = 200 * time.Millisecond })
	r := Probe(context.Background(), check, endpointFor(t, ln.Addr().String()))
	if r.OK || r.Reason != "timeout" {
		t.Fatalf("silent server: %+v, want timeout", r)
	}
}

func TestHTTPProbeBody(t *testing.T) {
	body := strings.Repeat("x", 100) + "status: healthy" // match starts at byte 100
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	ep := endpointFor(t, srv.Listener.Addr().String())
	tests := []struct {
		name   string
		mod    func(*config.Check)
		ok     bool
		reason string
	}{
		{"substring", func(c *config.Check) { c.ExpectBody = "healthy" }, true, "ok"},
		{"substring mismatch", func(c *config.Check) { c.ExpectBody = "degraded" }, false, "body mismatch"},
		{"within limit", func(c *config.Check) { c.ExpectBody = "healthy"; c.BodyLimit = 115 }, true, "ok"},
		{"beyond limit", func(c *config.Check) { c.ExpectBody = "healthy"; c.BodyLimit = 110 }, false, "body mismatch"},
		{"regexp", func(c *config.Check) { c.ExpectBodyRegexp = `status: (healthy|ok)` }, true, "ok"},
		{"regexp mismatch", func(c *config.Check) { c.ExpectBodyRegexp = `^status` }, false, "body mismatch"},
		{"regexp beyond limit", func(c *config.Check) { c.ExpectBodyRegexp = `healthy`; c.BodyLimit = 50 }, false, "body mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Probe(context.Background(), httpCheck(tt.mod), ep)
			if r.OK != tt.ok || r.Reason != tt.reason {
				t.Fatalf("got ok=%v reason=%q detail=%q; want ok=%v reason=%q", r.OK, r.Reason, r.Detail, tt.ok, tt.reason)
			}
		})
	}
}

func TestHTTPProbeEndlessBodyIsBounded(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("a", 32<<10))
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ep := endpointFor(t, srv.Listener.Addr().String())
	check := httpCheck(func(c *config.Check) { c.ExpectBody = "never there"; c.BodyLimit = 4096; c.Timeout = 5 * time.Second })
	r := Probe(context.Background(), check, ep)
	if r.OK || r.Reason != "body mismatch" {
		t.Fatalf("endless body: %+v, want body mismatch (read bounded by body_limit, not timeout)", r)
	}
	if !strings.Contains(r.Detail, "first 4096 bytes") {
		t.Fatalf("detail %q does not show the 4096-byte bound", r.Detail)
	}
	// Without a body expectation the body is not read at all.
	if r := Probe(context.Background(), httpCheck(func(c *config.Check) { c.Timeout = 5 * time.Second }), ep); !r.OK {
		t.Fatalf("endless body without body check: %+v", r)
	}
}

func TestHTTPProbeHugeHeadersFail(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 4000))
		}
	}))
	defer srv.Close()
	r := Probe(context.Background(), httpCheck(nil), endpointFor(t, srv.Listener.Addr().String()))
	if r.OK {
		t.Fatalf("160 KB of response headers passed: %+v", r)
	}
}

func TestHTTPProbeConnectionReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf) // the request
			c.(*net.TCPConn).SetLinger(0)
			c.Close() // RST
		}
	}()
	defer func() { ln.Close(); <-done }()
	r := Probe(context.Background(), httpCheck(nil), endpointFor(t, ln.Addr().String()))
	if r.OK || r.Reason != "connection reset" {
		t.Fatalf("reset: %+v, want connection reset", r)
	}
}

func TestHTTPSProbeTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	defer srv.Close()
	ep := endpointFor(t, srv.Listener.Addr().String())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mod    func(*config.Check)
		ok     bool
		reason string
	}{
		{"untrusted", nil, false, "tls: certificate signed by unknown authority"},
		{"ca_file", func(c *config.Check) { c.CAFile = caFile }, true, "ok"},
		{"insecure_skip_verify", func(c *config.Check) { c.InsecureSkipVerify = true }, true, "ok"},
		{"sni in cert", func(c *config.Check) { c.CAFile = caFile; c.SNI = "example.com" }, true, "ok"},
		{"host header sets sni", func(c *config.Check) { c.CAFile = caFile; c.Host = "example.com:443" }, true, "ok"},
		{"sni not in cert", func(c *config.Check) { c.CAFile = caFile; c.SNI = "wrong.test" }, false, "tls: certificate name mismatch"},
		{"bad ca_file", func(c *config.Check) { c.CAFile = filepath.Join(t.TempDir(), "missing.pem") }, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := httpCheck(func(c *config.Check) {
				c.Type = "https"
				if tt.mod != nil {
					tt.mod(c)
				}
			})
			r := Probe(context.Background(), check, ep)
			if r.OK != tt.ok || (tt.reason != "" && r.Reason != tt.reason) {
				t.Fatalf("got ok=%v reason=%q detail=%q; want ok=%v reason=%q", r.OK, r.Reason, r.Detail, tt.ok, tt.reason)
			}
		})
	}
	// A plain HTTP probe of a TLS port fails (status 400 from Go's server).
	if r := Probe(context.Background(), httpCheck(nil), ep); r.OK {
		t.Fatalf("http probe of https server passed: %+v", r)
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := endpointFor(t, ln.Addr().String())
	check := config.Check{Type: "tcp", Timeout: time.Second}
	if r := Probe(context.Background(), check, ep); !r.OK || r.Reason != "ok" {
		t.Fatalf("tcp probe of open listener: %+v", r)
	}
	ln.Close()
	if r := Probe(context.Background(), check, ep); r.OK || r.Reason != "connection refused" {
		t.Fatalf("tcp probe of closed listener: %+v", r)
	}
}

func TestNoneProbe(t *testing.T) {
	ep := endpointFor(t, "127.0.0.1:1")
	if r := Probe(context.Background(), config.Check{Type: "none"}, ep); !r.OK {
		t.Fatalf("none probe: %+v", r)
	}
}

// dnsServer starts a UDP DNS server on loopback answering NOERROR for
// ok.test. and NXDOMAIN otherwise; it never answers hang.test.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Question[0].Name == "hang.test." {
				return
			}
			m := new(dns.Msg)
			m.SetReply(r)
			if r.Question[0].Name != "ok.test." {
				m.Rcode = dns.RcodeNameError
			}
			_ = w.WriteMsg(m)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNSProbe(t *testing.T) {
	addr := dnsServer(t)
	ep := endpointFor(t, addr)
	tests := []struct {
		query, rcode string
		ok           bool
		reason       string
	}{
		{"ok.test", "NOERROR", true, "ok"},
		{"missing.test", "NOERROR", false, "rcode NXDOMAIN"},
		{"missing.test", "nxdomain", true, "ok"},
		{"hang.test", "NOERROR", false, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.query+"_"+tt.rcode, func(t *testing.T) {
			check := config.Check{Type: "dns", Timeout: 300 * time.Millisecond, Query: tt.query, QueryType: "A", ExpectRcode: tt.rcode}
			r := Probe(context.Background(), check, ep)
			if r.OK != tt.ok || r.Reason != tt.reason {
				t.Fatalf("got ok=%v reason=%q detail=%q; want ok=%v reason=%q", r.OK, r.Reason, r.Detail, tt.ok, tt.reason)
			}
		})
	}
	// Nothing listening on the port: ICMP port unreachable.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := endpointFor(t, pc.LocalAddr().String())
	pc.Close()
	check := config.Check{Type: "dns", Timeout: time.Second, Query: "ok.test", QueryType: "SOA", ExpectRcode: "NOERROR"}
	if r := Probe(context.Background(), check, closed); r.OK || r.Reason != "connection refused" {
		t.Fatalf("dns probe of closed port: %+v", r)
	}
}

func TestStatusMatches(t *testing.T) {
	tests := []struct {
		code   int
		expect []string
		want   bool
	}{
		{200, []string{"2xx"}, true},
		{299, []string{"2xx"}, true},
		{300, []string{"2xx"}, false},
		{404, []string{"200", "404"}, true},
		{500, []string{"4xx", "200"}, false},
		{500, nil, false},
	}
	for _, tt := range tests {
		if got := statusMatches(tt.code, tt.expect); got != tt.want {
			t.Errorf("statusMatches(%d, %v) = %v, want %v", tt.code, tt.expect, got, tt.want)
		}
	}
}
