// Command bareproxy is the benchmark's Go baseline proxy: a bare
// httputil.ReverseProxy that spreads requests round robin over its upstreams,
// with no health checks, retries or limits.
//
// Its only tuning is a larger idle connection pool per upstream than the
// net/http default of 2, so that it reuses upstream connections like the
// other proxies in the benchmark instead of exhausting ephemeral ports.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	upstreams := flag.String("upstream", "", "comma-separated upstream URLs, e.g. http://127.0.0.1:8081")
	idle := flag.Int("max-idle-per-host", 256, "idle upstream connections kept per upstream")
	flag.Parse()

	var targets []*url.URL
	for _, s := range strings.Split(*upstreams, ",") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			log.Fatalf("bad upstream %q: %v", s, err)
		}
		targets = append(targets, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = *idle
	tr.MaxIdleConns = *idle * len(targets)

	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			t := targets[next.Add(1)%uint64(len(targets))]
			r.SetURL(t)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
	}
	log.Printf("bareproxy listening on %s -> %s", *listen, *upstreams)
	log.Fatal(http.ListenAndServe(*listen, rp))
}
