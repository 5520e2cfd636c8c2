package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// BenchmarkProxy measures a GET through the proxy over real loopback
// sockets (client → proxy → backend, keep-alive), next to a bare
// httputil.ReverseProxy on the same backend for reference.
//
//	go test -run '^$' -bench Proxy -benchmem ./internal/proxy/
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello from east\n")
	east := newBackend(b, "east", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })

	run := func(b *testing.B, url string) {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, url+"/bench", nil)
				req.Host = testHost
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}

	b.Run("gslb", func(b *testing.B) {
		// As bench/run.sh configures it: outlier detection (on by default)
		// and a per-client rate limit that is never reached.
		cfg := testConfig(b, []ep{{"east-1", "east", east.port()}},
			"rate_limit: {requests_per_second: 1000000000, burst: 1000000000}")
		h := startProxy(b, cfg, nil, Deps{})
		run(b, h.url)
	})
	b.Run("httputil", func(b *testing.B) {
		target, _ := url.Parse(east.URL)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 512}
		front := httptest.NewServer(rp)
		defer front.Close()
		run(b, front.URL)
	})
}
