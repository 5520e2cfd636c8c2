// Package demo runs the embedded demo's two in-process HTTP "ingresses",
// one per region, on loopback addresses, so that the demo's health checks,
// DNS answers and proxy traffic are real.
package demo

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Ingress is one demo region's HTTP server. It can be stopped and started
// again to show failover.
type Ingress struct {
	Region string
	Addr   string

	log *zap.Logger

	mu  sync.Mutex
	srv *http.Server
}

// NewIngress returns a stopped ingress for region at addr (host:port).
func NewIngress(region, addr string, log *zap.Logger) *Ingress {
	if log == nil {
		log = zap.NewNop()
	}
	return &Ingress{Region: region, Addr: addr, log: log}
}

// Start binds the address and serves in the background. Starting a
// running ingress is a no-op.
func (in *Ingress) Start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", in.Addr)
	if err != nil {
		return fmt.Errorf("start demo ingress %s on %s: %w", in.Region, in.Addr, err)
	}
	srv := &http.Server{Handler: in.handler(), ReadHeaderTimeout: 5 * time.Second}
	in.srv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Warn("demo ingress stopped", zap.String("region", in.Region), zap.Error(err))
		}
	}()
	in.log.Info("demo ingress started", zap.String("region", in.Region), zap.String("addr", in.Addr))
	return nil
}

// Stop closes the listener and every connection at once, as a crashed
// ingress would. Stopping a stopped ingress is a no-op.
func (in *Ingress) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.srv == nil {
		return
	}
	_ = in.srv.Close()
	in.srv = nil
	in.log.Info("demo ingress stopped", zap.String("region", in.Region), zap.String("addr", in.Addr))
}

func (in *Ingress) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Demo-Region", in.Region)
		fmt.Fprintf(w, "hello from the %s ingress (%s), host %q, path %q\n", in.Region, in.Addr, r.Host, r.URL.Path)
	})
	return mux
}

// Ingresses are the demo's east and west ingresses.
type Ingresses struct {
	ByRegion map[string]*Ingress
}

// Demo ingress addresses, fixed by the demo contract.
const (
	EastAddr = "127.0.0.11:18080"
	WestAddr = "127.0.0.12:18080"
)

// NewIngresses returns the demo's two ingresses (not started).
func NewIngresses(log *zap.Logger) *Ingresses {
	return &Ingresses{ByRegion: map[string]*Ingress{
		"east": NewIngress("east", EastAddr, log),
		"west": NewIngress("west", WestAddr, log),
	}}
}

// Start starts both ingresses; on error none is left running.
func (d *Ingresses) Start() error {
	for _, in := range d.ByRegion {
		if err := in.Start(); err != nil {
			d.Stop()
			return err
		}
	}
	return nil
}

// Stop stops both ingresses.
func (d *Ingresses) Stop() {
	for _, in := range d.ByRegion {
		in.Stop()
	}
}
