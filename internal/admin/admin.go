// Package admin serves gslb's admin HTTP API: liveness and readiness,
// Prometheus metrics, the status JSON and page, routing explanations,
// drains and reloads. It asks the running gslb through a Backend and
// never decides anything itself.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// Limits of the admin HTTP server.
const (
	// ShutdownTimeout bounds the graceful shutdown of Run.
	ShutdownTimeout = 5 * time.Second
	// ReadHeaderTimeout bounds reading request headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds writing a response (a reload included).
	WriteTimeout = 30 * time.Second
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout = 60 * time.Second
	// MaxHeaderBytes bounds request headers.
	MaxHeaderBytes = 64 << 10
)

// Deps are the admin server's dependencies. Every field is optional.
type Deps struct {
	// Logger receives one event per mutation and per lifecycle change.
	Logger *zap.Logger
	// Gatherer is exposed on /metrics (default: Registry when it is a
	// Gatherer, else a fresh registry).
	Gatherer prometheus.Gatherer
	// Registry receives the admin's own metrics (default: a fresh registry).
	Registry prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// settings are the reloadable parts of the admin config.
type settings struct {
	maxBody int64
	token   token
}

// Server is the admin HTTP server.
type Server struct {
	listen  string
	backend Backend
	log     *zap.Logger
	now     func() time.Time
	metrics *metrics
	actions *actionLog
	handler http.Handler
	page    *pageRenderer

	settings atomic.Pointer[settings]

	running atomic.Bool
	ready   chan struct{}
	addrMu  sync.Mutex
	addr    net.Addr
}

// New returns an admin server for cfg asking backend. It reads the token
// (cfg.TokenFile, else cfg.Token); with neither, mutating calls are
// refused with 403. A Listen of "" or "off" is an error: do not start the
// admin server then.
func New(cfg config.AdminConfig, backend Backend, deps Deps) (*Server, error) {
	if backend == nil {
		return nil, errors.New("new admin server: nil backend")
	}
	if cfg.Listen == "" || cfg.Listen == "off" {
		return nil, errors.New("new admin server: admin.listen is off")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Gatherer == nil {
		if g, ok := deps.Registry.(prometheus.Gatherer); ok {
			deps.Gatherer = g
		} else {
			deps.Gatherer = prometheus.NewRegistry()
		}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	page, err := newPageRenderer()
	if err != nil {
		return nil, err
	}
	s := &Server{
		listen:  cfg.Listen,
		backend: backend,
		log:     deps.Logger.Named("admin"),
		now:     deps.Now,
		metrics: m,
		actions: newActionLog(DefaultRecentActions),
		page:    page,
		ready:   make(chan struct{}),
	}
	if err := s.SetConfig(cfg); err != nil {
		return nil, err
	}
	s.handler = s.routes(deps.Gatherer)
	return s, nil
}

// SetConfig applies a new admin config: the token is read again and the
// body limit replaced. On error the previous settings stay. A changed
// Listen address takes effect only on restart (it is logged).
func (s *Server) SetConfig(cfg config.AdminConfig) error {
	apply, err := s.PrepareConfig(cfg)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// PrepareConfig does the fallible part of SetConfig (reading the token)
// without changing anything, and returns the function that applies the
// new settings. A reload prepares every part before applying any, so a
// failure leaves the old config in force everywhere.
func (s *Server) PrepareConfig(cfg config.AdminConfig) (apply func(), err error) {
	tok, err := loadToken(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin config: %w", err)
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = config.DefaultAdminMaxBodyBytes
	}
	return func() {
		old := s.settings.Swap(&settings{maxBody: maxBody, token: tok})
		if cfg.Listen != "" && cfg.Listen != s.listen {
			s.log.Warn("admin listen address changed; restart to apply", zap.String("listen", s.listen), zap.String("configured", cfg.Listen))
		}
		if old == nil || old.token.source != tok.source || old.token.digest != tok.digest {
			// Log the token's source only, never the token.
			s.log.Info("admin token set", zap.String("source", tok.source), zap.Bool("mutations_enabled", tok.set))
		}
	}, nil
}

// Handler returns the admin HTTP handler (all routes, instrumented).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once Run listens; Addr is valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the listening address (nil before Ready is closed).
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Run listens on the configured address and serves until ctx is done,
// then shuts down gracefully within ShutdownTimeout. Run may be called
// once.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("admin server: Run called twice")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()
	close(s.ready)
	s.log.Info("admin API listening", zap.Stringer("addr", ln.Addr()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("admin shutdown: %w", err)
	}
	s.log.Info("admin API stopped")
	return nil
}

// routes builds the mux.
func (s *Server) routes(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.log), MaxRequestsInFlight: 4}))
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("GET /api/v1/status", s.handleStatus)
	mux.HandleFunc("GET /api/v1/explain", s.handleExplain)
	mux.HandleFunc("POST /api/v1/regions/{region}/drain", s.mutating(s.handleDrainRegion))
	mux.HandleFunc("POST /api/v1/regions/{region}/undrain", s.mutating(s.handleUndrainRegion))
	mux.HandleFunc("POST /api/v1/pools/{pool}/endpoints/{endpoint}/drain", s.mutating(s.handleDrainEndpoint))
	mux.HandleFunc("POST /api/v1/pools/{pool}/endpoints/{endpoint}/undrain", s.mutating(s.handleUndrainEndpoint))
	mux.HandleFunc("POST /api/v1/reload", s.mutating(s.handleReload))
	return s.metrics.instrument(securityHeaders(mux))
}

// securityHeaders sets headers every admin response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
