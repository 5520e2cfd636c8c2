package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/rrl"
)

// maxUDPSockets bounds the UDP sockets per listen address.
const maxUDPSockets = 256

// Deps are the Server's injected dependencies. Zero values are safe: a
// nil Logger logs nothing and a nil Registry is replaced by a fresh one.
type Deps struct {
	Logger   *zap.Logger
	Registry prometheus.Registerer
	// Now is the clock of response rate limiting; nil means time.Now.
	Now func() time.Time
}

// Server serves the zones of a config over UDP and TCP on every address
// of cfg.DNS.Listen. Its zone data and router are swapped atomically on
// reload; its listeners stay open.
type Server struct {
	listen  []string
	sockets int // UDP sockets per listen address
	// threads: each UDP socket is read by a thread of its own (udpThread)
	// rather than through the runtime's poller.
	threads bool
	// threadWake is the receive timeout of thread readers
	// (threadWakeInterval; tests lengthen it).
	threadWake time.Duration
	// threadIdle is how long a thread reader goes without a datagram
	// before it gives its P back (threadIdleAfter; tests change it).
	threadIdle time.Duration
	log        *zap.Logger
	m          *metrics

	handler atomic.Pointer[Handler]
	tcp     tcpTracker

	// rrl limits UDP responses (nil when disabled); rrlCfg is its config,
	// so that a reload keeps the buckets unless the settings changed.
	rrl    atomic.Pointer[rrl.Limiter]
	rrlCfg config.RRLConfig
	now    func() time.Time
	rrlMu  sync.Mutex // serialises Swap's replacement of rrl
	clock  *coarseClock

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
	sockets := cfg.DNS.UDPSockets
	if sockets <= 0 {
		sockets = unreservedProcs()
	}
	s := &Server{
		listen:     slices.Clone(cfg.DNS.Listen),
		sockets:    min(sockets, maxUDPSockets),
		threads:    udpThreadsSupported && cfg.DNS.UDPReader != config.UDPReaderNetpoll,
		threadWake: threadWakeInterval,
		threadIdle: threadIdleAfter,
		log:        deps.Logger,
		m:          m,
		ready:      make(chan struct{}),
		now:        deps.Now,
		rrlCfg:     cfg.DNS.RRL,
		clock:      newCoarseClock(),
	}
	if s.now == nil {
		s.now = s.clock.Now
	}
	s.tcp.init()
	h.nanos = s.clock.nanos
	s.handler.Store(h)
	s.rrl.Store(rrl.New(cfg.DNS.RRL, rrl.Deps{Now: s.now}))
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
	apply, err := s.PrepareSwap(cfg, router)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// PrepareSwap builds the handler for cfg and router (the step of Swap that
// can fail) and returns the function that puts it in service, so that a
// caller reloading several components can check them all before changing
// any.
func (s *Server) PrepareSwap(cfg *config.Config, router Router) (apply func(), err error) {
	if router == nil {
		return nil, errors.New("swap dns config: router is required")
	}
	h, err := NewHandler(cfg, router)
	if err != nil {
		return nil, fmt.Errorf("swap dns config: %w", err)
	}
	h.nanos = s.clock.nanos
	return func() {
		if !slices.Equal(cfg.DNS.Listen, s.listen) {
			s.log.Warn("dns listen addresses change only on restart",
				zap.Strings("listening", s.listen), zap.Strings("configured", cfg.DNS.Listen))
		}
		s.handler.Store(h)
		s.rrlMu.Lock()
		if !reflect.DeepEqual(cfg.DNS.RRL, s.rrlCfg) {
			s.rrlCfg = cfg.DNS.RRL
			s.rrl.Store(rrl.New(cfg.DNS.RRL, rrl.Deps{Now: s.now}))
		}
		s.rrlMu.Unlock()
		s.log.Info("dns config swapped", zap.Int("zones", len(h.zones.zones)))
	}, nil
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
// returns an error when a listener cannot be bound. With thread readers
// (dns.udp_reader: thread, on Linux) GOMAXPROCS is one higher per UDP
// socket that is receiving queries (serveUDPThread).
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
		us, t, err := listenGroup(ctx, addr, s.sockets)
		if err != nil {
			closeAll()
			return fmt.Errorf("dns listen %s: %w", addr, err)
		}
		udps, tcps = append(udps, us...), append(tcps, t)
		addrs = append(addrs, us[0].LocalAddr().(*net.UDPAddr).AddrPort())
	}
	s.addrs = addrs

	var loops sync.WaitGroup
	threads, err := s.startUDPReaders(&loops, udps)
	if err != nil {
		closeAll()
		return err
	}
	for _, t := range tcps {
		loops.Go(func() { s.serveTCP(t) })
	}
	loops.Go(func() { s.clock.run(ctx) })
	close(s.ready)
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	mode := config.UDPReaderNetpoll
	if s.threads {
		mode = config.UDPReaderThread
	}
	s.log.Info("dns listening", zap.Strings("addrs", strs), zap.Int("udp_sockets_per_address", len(udps)/len(addrs)),
		zap.String("udp_reader", mode), zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))

	<-ctx.Done()
	for _, t := range threads {
		t.stop()
	}
	closeAll()
	s.tcp.shutdown()
	loops.Wait()
	for _, t := range threads {
		t.close()
	}

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

// startUDPReaders starts one reader per UDP socket, answering inline: the
// kernel spreads the queries over the sockets (SO_REUSEPORT), and no
// goroutine is started or buffer allocated per packet. With thread
// readers it takes the sockets from the runtime's poller (closing the
// *net.UDPConn values); the threads are to be stopped, and closed once
// the loops are done. On error nothing is started.
func (s *Server) startUDPReaders(loops *sync.WaitGroup, udps []*net.UDPConn) (threads []*udpThread, err error) {
	pktinfo := make([]bool, len(udps))
	for i, u := range udps {
		pktinfo[i] = enablePktinfo(u)
		if !s.threads {
			continue
		}
		t, err := newUDPThread(u, s.threadWake)
		if err != nil {
			for _, t := range threads {
				t.close()
			}
			return nil, fmt.Errorf("dns listen %s: %w", u.LocalAddr(), err)
		}
		threads = append(threads, t)
	}
	for i, u := range udps {
		if threads != nil {
			loops.Go(func() { s.serveUDPThread(threads[i], pktinfo[i]) })
		} else {
			loops.Go(func() { s.serveUDP(u, pktinfo[i]) })
		}
	}
	return threads, nil
}

// handle answers one message with the current handler, recording metrics.
// A panic is a bug: it is counted, logged at most once a minute, and the
// message dropped.
//
// Reading the clock costs as much as a cached answer on common virtual
// machines, so only messages with timed set are timed for the duration
// histogram (the UDP loops time one in durationSample).
func (s *Server) handle(buf, req []byte, src netip.AddrPort, tr Transport, timed bool) (resp []byte, rcode int) {
	var start time.Time
	if timed {
		start = time.Now()
	}
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
	resp, out, e := s.handler.Load().respondEntry(buf, req, src, tr)
	if timed {
		s.m.duration.Observe(time.Since(start).Seconds())
	}
	s.m.observeEntry(out, e)
	return resp, out.Rcode
}
