package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// maxUDPReaders bounds the reader goroutines per UDP socket.
const maxUDPReaders = 64

// Deps are the Server's injected dependencies. Zero values are safe: a
// nil Logger logs nothing and a nil Registry is replaced by a fresh one.
type Deps struct {
	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Server serves the zones of a config over UDP and TCP on every address
// of cfg.DNS.Listen. Its zone data and router are swapped atomically on
// reload; its listeners stay open.
type Server struct {
	listen  []string
	readers int
	log     *zap.Logger
	m       *metrics

	handler atomic.Pointer[Handler]
	tcp     tcpTracker

	started atomic.Bool
	ready   chan struct{}
	addrs   []netip.AddrPort // set before ready is closed

	lastPanicLog atomic.Int64
}

// NewServer builds a Server for cfg answering GSLB service names with
// router. Listening starts with Run.
func NewServer(cfg *config.Config, router Router, deps Deps) (*Server, error) {
	if router == nil {
		return nil, errors.New("new dns server: router is required")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	h, err := NewHandler(cfg, router)
	if err != nil {
		return nil, fmt.Errorf("new dns server: %w", err)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("new dns server: %w", err)
	}
	readers := cfg.DNS.UDPSockets
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	s := &Server{
		listen:  slices.Clone(cfg.DNS.Listen),
		readers: min(readers, maxUDPReaders),
		log:     deps.Logger,
		m:       m,
		ready:   make(chan struct{}),
	}
	s.tcp.init()
	s.handler.Store(h)
	return s, nil
}

// Handler returns the handler currently answering queries.
func (s *Server) Handler() *Handler { return s.handler.Load() }

// Swap builds a handler for cfg and router beside the current one and, if
// that succeeds, atomically replaces it: queries in flight finish with the
// old data, the next ones get the new. Listeners stay open; a change of
// cfg.DNS.Listen takes effect only on restart. On error the current
// handler is kept.
func (s *Server) Swap(cfg *config.Config, router Router) error {
	if router == nil {
		return errors.New("swap dns config: router is required")
	}
	h, err := NewHandler(cfg, router)
	if err != nil {
		return fmt.Errorf("swap dns config: %w", err)
	}
	if !slices.Equal(cfg.DNS.Listen, s.listen) {
		s.log.Warn("dns listen addresses change only on restart",
			zap.Strings("listening", s.listen), zap.Strings("configured", cfg.DNS.Listen))
	}
	s.handler.Store(h)
	s.log.Info("dns config swapped", zap.Int("zones", len(h.zones.zones)))
	return nil
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound address of every listener (UDP and TCP share
// it), in the order of cfg.DNS.Listen; nil before Ready is closed.
func (s *Server) Addrs() []netip.AddrPort {
	select {
	case <-s.ready:
		return slices.Clone(s.addrs)
	default:
		return nil
	}
}

// Run binds UDP and TCP on every listen address and serves until ctx is
// cancelled. Then it closes the listeners, lets TCP queries already being
// read finish (bounded by the TCP read timeout) and returns nil. It
// returns an error when a listener cannot be bound.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dns server: Run called twice")
	}
	var (
		udps  []*net.UDPConn
		tcps  []*net.TCPListener
		addrs []netip.AddrPort
	)
	closeAll := func() {
		for _, u := range udps {
			u.Close()
		}
		for _, t := range tcps {
			t.Close()
		}
	}
	for _, addr := range s.listen {
		u, t, err := listenPair(ctx, addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("dns listen %s: %w", addr, err)
		}
		udps, tcps = append(udps, u), append(tcps, t)
		addrs = append(addrs, u.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	s.addrs = addrs
	close(s.ready)
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	s.log.Info("dns listening", zap.Strings("addrs", strs), zap.Int("udp_readers", s.readers))

	var loops sync.WaitGroup
	for _, u := range udps {
		pktinfo := enablePktinfo(u)
		for range s.readers {
			loops.Go(func() { s.serveUDP(u, pktinfo) })
		}
	}
	for _, t := range tcps {
		loops.Go(func() { s.serveTCP(t) })
	}

	<-ctx.Done()
	closeAll()
	s.tcp.shutdown()
	loops.Wait()

	grace := time.Duration(s.Handler().limits.readTimeout) + time.Second
	done := make(chan struct{})
	go func() {
		s.tcp.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("dns tcp connections did not finish in time; closing them", zap.Duration("grace", grace))
		s.tcp.forceClose()
		<-done
	}
	s.log.Info("dns stopped")
	return nil
}

// listenPair binds UDP and TCP on the same address. With port 0 the TCP
// port is the one the kernel chose for UDP (retried if it is taken).
func listenPair(ctx context.Context, addr string) (*net.UDPConn, *net.TCPListener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err
		}
		u := pc.(*net.UDPConn)
		p := u.LocalAddr().(*net.UDPAddr).Port
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return u, l.(*net.TCPListener), nil
		}
		u.Close()
		if port != "0" || attempt >= 10 {
			return nil, nil, err
		}
	}
}

// handle answers one message with the current handler, recording metrics.
// A panic is a bug: it is counted, logged at most once a minute, and the
// message dropped.
func (s *Server) handle(buf, req []byte, src netip.AddrPort, tr Transport) (resp []byte) {
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			resp = nil
			s.m.panics.Inc()
			now := time.Now().UnixNano()
			if last := s.lastPanicLog.Load(); now-last > int64(time.Minute) && s.lastPanicLog.CompareAndSwap(last, now) {
				buf := make([]byte, 4096)
				buf = buf[:runtime.Stack(buf, false)]
				s.log.Error("dns handler panicked; message dropped", zap.Any("panic", v), zap.ByteString("stack", buf))
			}
		}
	}()
	resp, out := s.handler.Load().Respond(buf, req, src, tr)
	s.m.duration.Observe(time.Since(start).Seconds())
	s.m.observe(out)
	return resp
}
