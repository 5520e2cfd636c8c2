package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestWebSocketPassThrough(t *testing.T) {
	ws := websocket.Server{Handler: func(c *websocket.Conn) {
		var msg string
		for websocket.Message.Receive(c, &msg) == nil {
			if websocket.Message.Send(c, "echo: "+msg) != nil {
				return
			}
		}
	}}
	east := newBackend(t, "east", ws.ServeHTTP)
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `timeouts: {write: 300ms, read: 300ms}`)
	h := startProxy(t, cfg, nil, Deps{})

	conn, err := net.Dial("tcp", h.srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	wcfg, err := websocket.NewConfig("ws://"+testHost+"/chat", "http://"+testHost)
	if err != nil {
		t.Fatal(err)
	}
	c, err := websocket.NewClient(wcfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake through the proxy: %v", err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		if i == 2 {
			// Longer than the server's read/write timeouts: an upgraded
			// connection must outlive them.
			time.Sleep(500 * time.Millisecond)
		}
		want := fmt.Sprintf("hello %d", i)
		if err := websocket.Message.Send(c, want); err != nil {
			t.Fatal(err)
		}
		var got string
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.Message.Receive(c, &got); err != nil {
			t.Fatal(err)
		}
		if got != "echo: "+want {
			t.Fatalf("got %q", got)
		}
	}
}

func TestServerSentEventsStream(t *testing.T) {
	proceed := make(chan struct{})
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, `timeouts: {write: 300ms}`)
	h := startProxy(t, cfg, nil, Deps{})
	resp := h.do(http.MethodGet, "/events", nil, "Accept", "text/event-stream")
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event before the handler finished: %q %v", line, err)
	}
	// An event stream outlives the server's write timeout.
	time.Sleep(500 * time.Millisecond)
	close(proceed)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest of stream: %q", rest)
	}
}

func TestChunkedStreamingAndTrailers(t *testing.T) {
	proceed := make(chan struct{})
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		fmt.Fprint(w, "part1;")
		http.NewResponseController(w).Flush()
		<-proceed
		fmt.Fprint(w, "part2")
		w.Header().Set("X-Checksum", "abc123")
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	resp := h.do(http.MethodGet, "/download", nil)
	defer resp.Body.Close()
	buf := make([]byte, len("part1;"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part1;" {
		t.Fatalf("first chunk: %q %v", buf, err)
	}
	close(proceed)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "part2" {
		t.Fatalf("rest: %q", rest)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Fatalf("trailer X-Checksum = %q", got)
	}
}

func TestClientCancelPropagatesUpstream(t *testing.T) {
	started := make(chan struct{})
	canceled := make(chan struct{})
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/long", nil)
	req.Host = testHost
	errc := make(chan error, 1)
	go func() {
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request was not canceled when the client went away")
	}
	if err := <-errc; err == nil {
		t.Fatal("client request succeeded after cancel")
	}
	waitFor(t, "499 to be counted", func() bool {
		return h.counter("gslb_proxy_requests_total", "code", "499") == 1
	})
}

func TestH2C(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "east via ", r.Header.Get("Via"))
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
	req.Host = testHost
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != "east via 2.0 gslb" {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, b)
	}
}

func TestTLSListenerHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Forwarded-Proto"))
	})
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, fmt.Sprintf(`
listen_tls: ["127.0.0.1:0"]
cert_file: %s
key_file: %s`, certFile, keyFile))
	h := startProxy(t, cfg, nil, Deps{})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: testHost}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+h.srv.TLSAddrs()[0].String()+"/", nil)
	req.Host = testHost
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(b) != "https" {
		t.Fatalf("%s %q, want HTTP/2 and X-Forwarded-Proto https", resp.Proto, b)
	}
}

// writeSelfSigned writes a certificate for testHost and returns its files
// and a pool trusting it.
func writeSelfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: testHost},
		DNSNames:     []string{testHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
