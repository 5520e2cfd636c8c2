package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// Connection pool sizes of the upstream transports.
const (
	upstreamMaxIdleConns        = 0 // no overall limit: idlePerHost bounds each upstream
	upstreamMaxIdleConnsPerHost = 512
	upstreamIdleConnTimeout     = 90 * time.Second
	upstreamKeepAlive           = 30 * time.Second
)

// transports holds the upstream HTTP clients of one config generation. Plain
// HTTP upstreams share one transport. HTTPS upstreams get one transport per
// route host, so that TLS verifies (and SNI names) the host the client asked
// for — upstreams are addressed by IP — and pooled connections are never
// reused for another host.
type transports struct {
	scheme      string
	dial        time.Duration
	upstream    time.Duration
	idlePerHost int

	plain *http.Transport
	// dialer connects the fast path's upstream connections.
	dialer *net.Dialer

	mu  sync.Mutex
	tls map[string]*http.Transport
}

func newTransports(px *config.ProxyConfig) *transports {
	t := &transports{scheme: px.UpstreamScheme, dial: px.Timeouts.Dial, upstream: px.Timeouts.Upstream,
		idlePerHost: idlePerHost(px),
		dialer:      &net.Dialer{Timeout: px.Timeouts.Dial, KeepAlive: upstreamKeepAlive}}
	if t.scheme != "https" {
		t.plain = t.newTransport("")
	} else {
		t.tls = map[string]*http.Transport{}
	}
	return t
}

// compatible reports whether t can serve px unchanged (kept across Swap).
func (t *transports) compatible(px *config.ProxyConfig) bool {
	return t.scheme == px.UpstreamScheme && t.dial == px.Timeouts.Dial && t.upstream == px.Timeouts.Upstream &&
		t.idlePerHost == idlePerHost(px)
}

// idlePerHost is how many idle connections are kept per upstream: as many
// as may be busy at once (max_concurrent_per_upstream), so that a steady
// load at the limit never closes and redials, or upstreamMaxIdleConnsPerHost
// when concurrency is unlimited.
func idlePerHost(px *config.ProxyConfig) int {
	if n := px.Limits.MaxConcurrentPerUpstream; n > 0 {
		return n
	}
	return upstreamMaxIdleConnsPerHost
}

func (t *transports) newTransport(serverName string) *http.Transport {
	tr := &http.Transport{
		// Never honour HTTP(S)_PROXY from the environment.
		Proxy:                 nil,
		DialContext:           t.dialer.DialContext,
		MaxIdleConns:          upstreamMaxIdleConns,
		MaxIdleConnsPerHost:   t.idlePerHost,
		IdleConnTimeout:       upstreamIdleConnTimeout,
		ResponseHeaderTimeout: t.upstream,
		// The same bound as the fast path's (fastpath.go).
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		TLSHandshakeTimeout:    t.dial,
		ExpectContinueTimeout:  time.Second,
		// The proxy must not add Accept-Encoding nor decompress.
		DisableCompression: true,
	}
	if t.scheme == "https" {
		tr.TLSClientConfig = &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
		tr.ForceAttemptHTTP2 = true
	}
	return tr
}

// forHost returns the transport for a request to route host.
func (t *transports) forHost(host string) *http.Transport {
	if t.plain != nil {
		return t.plain
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.tls[host]
	if tr == nil {
		tr = t.newTransport(host)
		t.tls[host] = tr
	}
	return tr
}

// closeIdle closes every idle upstream connection.
func (t *transports) closeIdle() {
	if t.plain != nil {
		t.plain.CloseIdleConnections()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.tls {
		tr.CloseIdleConnections()
	}
}
