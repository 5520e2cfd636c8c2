package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestUpstreamDurationExcludesRequestBodyUpload: the upstream duration of
// an attempt runs from the attempt's start, not from the request's: the
// time a slow client takes to send a body the proxy buffers (for
// retries) before the first attempt is not the upstream's. (461f086 gave
// the first attempt the request's start time.)
func TestUpstreamDurationExcludesRequestBodyUpload(t *testing.T) {
	east := newBackend(t, "east", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	clock := newFakeClock()
	cfg := testConfig(t, []ep{{"east-1", "east", east.port()}}, "")
	h := startProxy(t, cfg, nil, Deps{Now: clock.Now})

	c, err := net.Dial("tcp", h.srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: "+testHost+"\r\nContent-Length: 5\r\n\r\n")
	waitFor(t, "the request to be pending", func() bool { return h.srv.pending.Load() == 1 })
	clock.Advance(10 * time.Second) // the client takes its time with the body
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}

	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "gslb_proxy_upstream_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			found = true
			if hs := m.GetHistogram(); hs.GetSampleCount() != 1 || hs.GetSampleSum() >= 1 {
				t.Fatalf("upstream duration: %d samples, sum %v s; want 1 sample well under the 10 s the client took to send its body",
					hs.GetSampleCount(), hs.GetSampleSum())
			}
		}
	}
	if !found {
		t.Fatal("no upstream duration observed")
	}
}
