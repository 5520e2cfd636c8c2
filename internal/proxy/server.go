// Package proxy is gslb's L7 sidecar reverse proxy. It routes requests by
// Host (and optional path prefix) to a service, asks the routing engine for
// the service's upstreams (local region first while it is up), and forwards
// with retries, passive outlier detection, per-client rate limits and
// concurrency limits.
//
// On plain listeners the proxy's own HTTP/1.1 front end (front.go) reads
// the plainest requests — bodiless GET and HEAD with a CRLF-clean head —
// and writes their responses itself, and hands every other connection to
// net/http (config proxy.fast_http1, on by default). Its parser accepts
// only requests net/http reads the same way (fronthead.go).
//
// Requests without a body, of an idempotent method and not asking for a
// protocol upgrade take a fast path to plain-HTTP upstreams (fastpath.go):
// the handler goroutine writes the request on a pooled keep-alive
// HTTP/1.1 connection and copies the response back, parsing common
// response heads itself. The others go through net/http/httputil's
// ReverseProxy, extended through its hooks (hooks.go). Both apply the same
// header hygiene, retries and outlier accounting.
//
// Behaviour worth knowing:
//   - Requests for hosts that no route names get 421 Misdirected Request
//     (RFC 9110 §15.5.20), CONNECT gets 405: the proxy is never an open proxy.
//   - Plain listeners speak HTTP/1.1 and h2c with prior knowledge (the
//     HTTP/1.1 "Upgrade: h2c" dance is not supported, as in net/http); TLS
//     listeners speak HTTP/1.1 and HTTP/2.
//   - The client's Host is passed upstream unchanged; X-Forwarded-For (kept
//     from trusted proxies only), X-Forwarded-Host, X-Forwarded-Proto and
//     Via ("1.1 gslb" or "2.0 gslb") are set; responses carry Via and
//     X-Gslb-Region naming the region of the upstream that answered.
//   - Requests whose client went away are counted and logged as 499.
//   - net/http allows 4096 bytes of slack above max_header_bytes on
//     HTTP/1.1 before answering 431.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
)

// DefaultShutdownTimeout bounds graceful shutdown when Deps.ShutdownTimeout
// is zero: requests still running after it are cut.
const DefaultShutdownTimeout = 10 * time.Second

// Deps are the Server's injected dependencies. Every field is optional.
type Deps struct {
	// Logger receives state changes (ejections, listeners) and, when
	// enabled, the sampled access log. Default: zap.NewNop().
	Logger *zap.Logger
	// Registry receives the proxy's metrics. Default: a fresh registry.
	Registry prometheus.Registerer
	// HealthFeed receives passive ejections when proxy.feed_health is true.
	HealthFeed HealthFeed
	// Health, when set, lets a passing active health check end an outlier
	// ejection early: an endpoint seen down and then up again by the
	// checker since it was ejected returns to service at once.
	Health health.Source
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ShutdownTimeout bounds graceful shutdown (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
}

// Server is the L7 proxy. It is an http.Handler; Run serves it on the
// configured listeners.
type Server struct {
	deps Deps
	log  *zap.Logger
	m    *metrics
	now  func() time.Time
	rp   *httputil.ReverseProxy
	bufs *bufferPool

	rt      atomic.Pointer[runtime]
	cert    atomic.Pointer[tls.Certificate]
	pending atomic.Int64
	logSeq  atomic.Uint64

	// The listen settings of the config given to New; a reload cannot
	// change them.
	listenCfg *config.ProxyConfig

	running  atomic.Bool
	ready    chan struct{}
	addrMu   sync.Mutex
	addrs    []net.Addr
	tlsAddrs []net.Addr
}

// New builds a proxy Server for cfg.Proxy, choosing upstreams through
// router. It loads the TLS certificate when TLS listeners are configured.
func New(cfg *config.Config, router Router, deps Deps) (*Server, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.ShutdownTimeout <= 0 {
		deps.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg == nil || cfg.Proxy == nil {
		return nil, errors.New("proxy: config has no proxy section")
	}
	s := &Server{
		deps:      deps,
		log:       deps.Logger.Named("proxy"),
		now:       deps.Now,
		m:         newMetrics(deps.Registry),
		listenCfg: cfg.Proxy,
		ready:     make(chan struct{}),
		bufs:      newBufferPool(),
	}
	s.rp = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      attemptTransport{},
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.errorHandler,
		ErrorLog:       zap.NewStdLog(s.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		BufferPool:     s.bufs,
	}
	rt, err := s.newRuntime(cfg, router, nil)
	if err != nil {
		return nil, err
	}
	cert, err := s.readCert(cfg.Proxy)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		s.cert.Store(cert)
	}
	s.rt.Store(rt)
	return s, nil
}

// Swap atomically replaces the routes, settings and router with those of a
// new config, without closing listeners. Requests in flight finish with the
// old settings. Upstreams whose pool, name, address and port are unchanged
// keep their outlier state and in-flight counts. Listen addresses, server
// timeouts and max_header_bytes apply only at restart. On error (no proxy
// section, unreadable certificate) the old config stays in force.
func (s *Server) Swap(cfg *config.Config, router Router) error {
	apply, err := s.PrepareSwap(cfg, router)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// PrepareSwap does the fallible part of Swap (building the new routes and
// settings, reading the certificate) without changing anything, and
// returns the function that swaps them in. A reload prepares every part
// before applying any, so a failure leaves the old config in force
// everywhere. Call at most one returned apply, and before any other Swap.
func (s *Server) PrepareSwap(cfg *config.Config, router Router) (apply func(), err error) {
	old := s.rt.Load()
	if cfg == nil {
		return nil, errors.New("proxy: swap: nil config")
	}
	rt, err := s.newRuntime(cfg, router, old)
	if err != nil {
		return nil, fmt.Errorf("proxy: swap: %w", err)
	}
	cert, err := s.readCert(cfg.Proxy)
	if err != nil {
		return nil, fmt.Errorf("proxy: swap: %w", err)
	}
	return func() { s.commit(cfg, old, rt, cert) }, nil
}

// commit swaps rt (built from old) and cert (nil: keep the current one) in.
func (s *Server) commit(cfg *config.Config, old, rt *runtime, cert *tls.Certificate) {
	if cert != nil {
		s.cert.Store(cert)
	}
	s.logRestartOnly(s.listenCfg, cfg.Proxy)
	rt.reg.adopt()
	s.rt.Store(rt)
	if old.outlier.feed != nil && rt.outlier.feed == nil {
		// feed_health was turned off: withdraw what the proxy reported.
		for k, u := range rt.reg.byKey {
			if u.ejectedUntil.Load() != 0 {
				old.outlier.feed.SetEjected(k.pool, k.endpoint, false, "proxy feed_health disabled")
			}
		}
	}
	if old.tr != rt.tr {
		old.tr.closeIdle()
	}
	for k, u := range old.reg.byKey {
		if rt.reg.byKey[k] != u {
			u.conns.retire() // not carried over
		}
	}
	s.log.Info("proxy config swapped", zap.Int("routes", len(cfg.Proxy.Routes)), zap.String("source", cfg.Source))
}

// readCert loads the TLS certificate of px; nil without TLS listeners or
// certificate.
func (s *Server) readCert(px *config.ProxyConfig) (*tls.Certificate, error) {
	if len(s.listenCfg.ListenTLS) == 0 || px.CertFile == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(px.CertFile, px.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load proxy certificate %q: %w", px.CertFile, err)
	}
	return &c, nil
}

func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("proxy: no certificate loaded")
}

// Ready is closed once every listener is bound (then Addrs and TLSAddrs
// are final).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound plain-HTTP (HTTP/1.1 and h2c) listener addresses.
func (s *Server) Addrs() []net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// TLSAddrs returns the bound HTTPS listener addresses.
func (s *Server) TLSAddrs() []net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return append([]net.Addr(nil), s.tlsAddrs...)
}

// newHTTPServer builds an http.Server with the configured limits; base is
// the parent of every request context.
func (s *Server) newHTTPServer(tlsOn bool, base context.Context) *http.Server {
	px := s.listenCfg
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: px.Timeouts.ReadHeader,
		ReadTimeout:       px.Timeouts.Read,
		WriteTimeout:      px.Timeouts.Write,
		IdleTimeout:       px.Timeouts.Idle,
		MaxHeaderBytes:    px.Limits.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		BaseContext:       func(net.Listener) context.Context { return base },
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if tlsOn {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{GetCertificate: s.getCertificate, MinVersion: tls.VersionTLS12}
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	}
	return srv
}

// Run binds the listeners, serves until ctx is done, then shuts down
// gracefully: it stops accepting, waits up to the shutdown timeout for
// requests in flight, then cuts the rest (including upgraded connections).
// Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("proxy: Run called twice")
	}
	var lc net.ListenConfig
	var plain, secure []net.Listener
	closeAll := func() {
		for _, l := range append(plain, secure...) {
			l.Close()
		}
	}
	for _, addr := range s.listenCfg.Listen {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("proxy listen %s: %w", addr, err)
		}
		plain = append(plain, l)
	}
	for _, addr := range s.listenCfg.ListenTLS {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("proxy listen tls %s: %w", addr, err)
		}
		secure = append(secure, l)
	}

	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	plainSrv := s.newHTTPServer(false, base)
	tlsSrv := s.newHTTPServer(true, base)

	s.addrMu.Lock()
	for _, l := range plain {
		s.addrs = append(s.addrs, l.Addr())
	}
	for _, l := range secure {
		s.tlsAddrs = append(s.tlsAddrs, l.Addr())
	}
	s.addrMu.Unlock()

	errc := make(chan error, len(plain)+len(secure)+1)
	var wg sync.WaitGroup
	var front *frontServer
	if len(plain) > 0 && s.listenCfg.FastHTTP1 && frontReadsRaw {
		// The front end serves plain listeners and hands net/http what it
		// does not serve itself (front.go).
		front = s.newFrontServer(base, plainSrv, plain[0].Addr())
		wg.Go(func() { errc <- plainSrv.Serve(front.handoff) })
	}
	for _, l := range plain {
		if front != nil {
			wg.Go(func() { errc <- front.serve(l) })
		} else {
			wg.Go(func() { errc <- plainSrv.Serve(l) })
		}
		s.log.Info("proxy listening", zap.Stringer("addr", l.Addr()), zap.String("protocols", "http/1.1 h2c"))
	}
	for _, l := range secure {
		wg.Go(func() { errc <- tlsSrv.ServeTLS(l, "", "") })
		s.log.Info("proxy listening", zap.Stringer("addr", l.Addr()), zap.String("protocols", "https h2"))
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	wg.Go(func() { s.sweepLoop(sweepCtx) })
	close(s.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("proxy serve: %w", err)
		}
	}
	stopSweep()
	sctx, cancel := context.WithTimeout(context.Background(), s.deps.ShutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	if front != nil {
		for _, l := range plain {
			l.Close() // the front end's; net/http closes its own
		}
		swg.Go(func() {
			if err := front.shutdown(sctx); err != nil {
				s.log.Warn("proxy graceful shutdown cut short", zap.Error(err))
			}
		})
	}
	for _, srv := range []*http.Server{plainSrv, tlsSrv} {
		swg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Warn("proxy graceful shutdown cut short", zap.Error(err))
			}
		})
	}
	swg.Wait()
	cancelBase() // ends upgraded (hijacked) connections and stragglers
	if front != nil {
		front.close()
	}
	plainSrv.Close()
	tlsSrv.Close()
	wg.Wait()
	rt := s.rt.Load()
	rt.tr.closeIdle()
	rt.reg.retire()
	s.log.Info("proxy stopped")
	return runErr
}

// sweepLoop returns ejected upstreams to service when their time is up,
// even without traffic.
func (s *Server) sweepLoop(ctx context.Context) {
	for {
		rt := s.rt.Load()
		d := min(time.Second, max(10*time.Millisecond, rt.px.Outlier.BaseEjectionTime/4))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			rt.outlier.sweep(rt.reg)
			rt.reg.pruneIdle(time.Now().Add(-upstreamIdleConnTimeout))
		}
	}
}
