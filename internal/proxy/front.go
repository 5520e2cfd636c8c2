package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The front end is the proxy's own HTTP/1.1 server on plain listeners. It
// serves the plainest requests itself — bodiless GET and HEAD with a
// CRLF-clean head (see parseFrontRequest), the bulk of a site's traffic —
// and hands every other connection, from its first unusual request on, to
// net/http: request bodies, upgrades, h2c, HTTP/1.0, odd syntax, heads
// larger than its buffer.
//
// It exists for speed. net/http's server makes two reads per request that
// find nothing — the background read that watches for the client's close,
// and the read for the next request before the client has sent it — and
// runs a goroutine hand-off for the first. The front end serves each
// request from inside the wait for the next one (serveAndAwait), so its
// only read per request is the one that finds the request, and it watches
// for a client's close only when a request is still running after
// frontWatchAfter.

// frontReadBuffer is the front end's read buffer per connection: a request
// head that does not fit goes to net/http.
const frontReadBuffer = 4 << 10

// frontWatchAfter is how long a request runs before the front end starts
// watching its client's connection for a close (which cancels the
// request, as net/http's background read does).
const frontWatchAfter = 10 * time.Millisecond

// frontWatchPoll is how often the client watch checks whether its
// request has ended.
const frontWatchPoll = 100 * time.Millisecond

// frontLinger bounds how long a connection closed after a response reads
// what its client still sends (see closeAfterResponse).
const frontLinger = 500 * time.Millisecond

// frontServer runs the front end on some listeners; connections it does
// not serve itself go to net/http through handoff.
type frontServer struct {
	s       *Server
	log     *zap.Logger
	handoff *handoffListener
	base    context.Context // parent of every request context

	readHeader time.Duration // bounds a request head once it has begun
	idle       time.Duration // bounds the wait for the next request
	write      time.Duration // bounds writing a response
	maxHead    int           // longer heads go to net/http

	closing atomic.Bool
	// dateNow caches the Date field value of the current second.
	dateNow atomic.Pointer[httpDate]
	mu      sync.Mutex
	conns   map[*frontConn]struct{}
	wg      sync.WaitGroup
}

// newFrontServer builds the front end for the plain listeners; srv is the
// net/http server its hand-offs go to.
func (s *Server) newFrontServer(base context.Context, srv *http.Server, handoffAddr net.Addr) *frontServer {
	px := s.listenCfg
	f := &frontServer{
		s: s, log: s.log,
		// As net/http's request contexts (the ReverseProxy, for one, cuts
		// a response whose upstream body failed only under a server).
		base:    context.WithValue(base, http.ServerContextKey, srv),
		handoff: newHandoffListener(handoffAddr),
		conns:   map[*frontConn]struct{}{},
		idle:    px.Timeouts.Idle,
		write:   px.Timeouts.Write,
		maxHead: px.Limits.MaxHeaderBytes,
	}
	f.readHeader = px.Timeouts.ReadHeader
	if f.readHeader <= 0 || (px.Timeouts.Read > 0 && px.Timeouts.Read < f.readHeader) {
		f.readHeader = px.Timeouts.Read
	}
	if f.idle <= 0 {
		f.idle = px.Timeouts.Read // as net/http falls back
	}
	return f
}

// httpDate is an HTTP Date value and the second it names.
type httpDate struct {
	sec   int64
	value []byte
}

// date returns the Date field value for now, formatted once per second.
func (f *frontServer) date() []byte {
	now := time.Now()
	if d := f.dateNow.Load(); d != nil && d.sec == now.Unix() {
		return d.value
	}
	d := &httpDate{sec: now.Unix(), value: now.UTC().AppendFormat(nil, http.TimeFormat)}
	f.dateNow.Store(d)
	return d.value
}

// serve accepts connections on ln until ln is closed.
func (f *frontServer) serve(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closing.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			// Out of file descriptors and the like: back off, as net/http.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.log.Warn("proxy accept failed; retrying", zap.Error(err), zap.Duration("in", delay))
			time.Sleep(delay)
			continue
		}
		delay = 0
		fc := f.newConn(c)
		if fc == nil {
			c.Close()
			return http.ErrServerClosed
		}
		go fc.serve()
	}
}

// newConn tracks a new connection; nil once the server is closing.
func (f *frontServer) newConn(c net.Conn) *frontConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Load() {
		return nil
	}
	fc := &frontConn{f: f, c: c, remote: c.RemoteAddr().String(), rdl: aLongTimeAgo, wdl: aLongTimeAgo}
	fc.br = bufio.NewReaderSize(c, frontReadBuffer)
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			fc.rc, fc.inWait = rc, fc.serveInWait // bound once: no closure per request
		}
	}
	fc.w = frontWriter{fc: fc, header: make(http.Header)}
	fc.ctx = context.WithValue(f.base, http.LocalAddrContextKey, c.LocalAddr())
	fc.watchTimer = time.AfterFunc(time.Hour, fc.startWatch)
	fc.watchTimer.Stop()
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	return fc
}

func (f *frontServer) forget(fc *frontConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	f.wg.Done()
}

// setClosing makes newConn refuse connections. Under mu, so that no
// connection is added to wg once shutdown waits for it.
func (f *frontServer) setClosing() {
	f.mu.Lock()
	f.closing.Store(true)
	f.mu.Unlock()
}

// shutdown stops the front end gracefully: listeners are closed by the
// caller; idle connections are closed now, busy ones after their current
// response (which says Connection: close). It returns when every
// connection is gone or ctx is done.
func (f *frontServer) shutdown(ctx context.Context) error {
	f.setClosing()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		for fc := range f.conns {
			if fc.idle.Load() {
				// Wakes its wait for the next request, which then ends.
				_ = fc.c.SetReadDeadline(aLongTimeAgo)
			}
		}
		f.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// close cuts every connection still open (after shutdown timed out) and
// waits for their goroutines.
func (f *frontServer) close() {
	f.setClosing()
	f.mu.Lock()
	for fc := range f.conns {
		fc.c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// frontConn is one client connection served by the front end.
type frontConn struct {
	f      *frontServer
	c      net.Conn
	remote string
	br     *bufio.Reader
	w      frontWriter
	ctx    context.Context // the connection's: parent of its requests'

	// rdl and wdl are the read and write deadlines set on c (see
	// armDeadline).
	rdl, wdl time.Time
	// idle is set while the connection waits for its next request.
	idle atomic.Bool

	// rc and inWait serve a request inside the wait for the next one (see
	// serveAndAwait); rc is nil for a connection without a descriptor.
	rc     syscall.RawConn
	inWait func(fd uintptr) bool
	// The request being served by inWait and its outcome.
	waitReq      *http.Request
	waitServed   bool
	waitKeep     bool
	waitComplete bool

	// The client watch (see startWatch), under mu.
	mu         sync.Mutex
	inRequest  bool
	watching   bool
	cancel     context.CancelFunc
	clientGone bool
	watchTimer *time.Timer
}

// serve reads and answers requests until the connection ends or is handed
// to net/http.
func (fc *frontConn) serve() {
	handedOff, linger := false, false
	defer func() {
		switch {
		case handedOff:
		case linger:
			fc.closeAfterResponse()
		default:
			fc.c.Close()
		}
		fc.f.forget(fc)
	}()
	fc.armReadDeadline(fc.f.readHeader)
	headArmed := true // the first request's head is bounded from the connection's start
	for {
		if fc.waitIdle() {
			return
		}
		head, err := fc.readHead(headArmed)
		if err != nil {
			return
		}
		var req *http.Request
		if head != nil {
			req, _ = parseFrontRequest(head)
		}
		if req == nil {
			handedOff = fc.handOff()
			return
		}
		_, _ = fc.br.Discard(len(head))
		keep, complete, err := fc.serveAndAwait(req)
		if !keep || fc.w.err != nil || fc.f.closing.Load() {
			linger = complete && fc.w.err == nil
			return
		}
		if err != nil {
			return // idle timeout, shutdown, or the connection failed
		}
		headArmed = false
	}
}

// serveAndAwait serves req, writes its response and waits until the next
// request can be read (or the client closed).
//
// The request is served from inside syscall.RawConn.Read, which arms the
// runtime's readiness tracking for the connection before calling back: a
// request the client sends while the handler runs (pipelining) or the
// client's close is then remembered, and the wait that follows the
// response returns at once for it. Served first and waited for after in
// the usual way (write, then read), the read after each response would
// find nothing on a keep-alive connection, because the client cannot have
// sent its next request before it had the response, and that empty read
// is a system call per request. Nothing reads the client connection
// while the handler runs (requests served here have no body, and the
// client watch polls, see watchClient).
func (fc *frontConn) serveAndAwait(req *http.Request) (keep, complete bool, err error) {
	// A read deadline already past would fail the wait before the
	// request is served.
	fc.armReadDeadline(fc.f.idle)
	if fc.rc == nil {
		keep, complete = fc.serveRequest(req)
		fc.w.flushOut()
		fc.w.trim()
		return keep, complete, nil
	}
	fc.waitReq, fc.waitServed = req, false
	err = fc.rc.Read(fc.inWait)
	fc.waitReq = nil
	if !fc.waitServed {
		// The wait failed before calling back (the connection was closed
		// or interrupted by shutdown): the request was not served.
		return false, false, err
	}
	return fc.waitKeep, fc.waitComplete, err
}

// serveInWait is the RawConn.Read callback of serveAndAwait: on its first
// call it serves the request and writes the response, and returns false
// to wait for the next request unless there is no need to; on its next
// call the connection is readable.
func (fc *frontConn) serveInWait(uintptr) bool {
	if fc.waitServed {
		return true
	}
	fc.waitServed = true
	fc.waitKeep, fc.waitComplete = fc.serveRequest(fc.waitReq)
	fc.w.flushOut()
	if !fc.waitKeep || fc.w.err != nil || fc.br.Buffered() > 0 {
		return true // closing, or the next request was read already
	}
	fc.w.trim()
	fc.armReadDeadline(fc.f.idle)
	// Shutdown may end the wait from now on (see waitIdle).
	return fc.waitIdle()
}

// waitIdle marks the connection idle — waiting for a request, which
// shutdown may interrupt — and reports whether shutdown has begun.
func (fc *frontConn) waitIdle() (closing bool) {
	fc.idle.Store(true)
	return fc.f.closing.Load()
}

// closeAfterResponse ends a connection whose last response was written
// whole: it sends FIN first and reads what the client still sends until it
// closes too (for at most frontLinger), so that a close with unread bytes
// does not reset the connection and destroy the response before the
// client reads it (as net/http's closeWriteAndWait).
func (fc *frontConn) closeAfterResponse() {
	defer fc.c.Close()
	cw, ok := fc.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = fc.c.SetReadDeadline(time.Now().Add(frontLinger))
	_, _ = io.Copy(io.Discard, io.LimitReader(fc.c, 256<<10))
}

// readHead returns the next request head, still in br's buffer. A nil
// head with a nil error means the connection is net/http's: the head is
// not CRLF-clean, or larger than the buffer or max_header_bytes. Once the
// head's first bytes are in, the rest must come within the read-header
// timeout (armed: that deadline is set already).
func (fc *frontConn) readHead(armed bool) ([]byte, error) {
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		n, bareLF := frontHeadEnd(buf)
		switch {
		case n > 0 && n <= fc.f.maxHead:
			fc.idle.Store(false)
			return buf[:n], nil
		case n > 0, bareLF, len(buf) >= fc.br.Size(), len(buf) > fc.f.maxHead:
			return nil, nil
		}
		if len(buf) > 0 {
			fc.idle.Store(false)
			if !armed {
				armed = true
				fc.armReadDeadline(fc.f.readHeader)
			}
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// serveRequest runs the proxy's handler for req and completes the
// response, leaving its last bytes in fc.w.out. It reports whether the
// connection can carry another request, and whether the response is
// complete (false: the handler panicked and the response is cut).
func (fc *frontConn) serveRequest(req *http.Request) (keep, complete bool) {
	ctx, cancel := context.WithCancel(fc.ctx)
	defer cancel()
	req.RemoteAddr = fc.remote
	req = req.WithContext(ctx)
	fc.w.reset(req)
	fc.armWriteDeadline()

	fc.mu.Lock()
	fc.inRequest, fc.cancel = true, cancel
	fc.mu.Unlock()
	fc.watchTimer.Reset(frontWatchAfter)
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				fc.f.log.Error("proxy: panic serving request", zap.String("client", fc.remote),
					zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			}
			keep, complete = false, false
			fc.w.out = fc.w.out[:0] // the client must see the response cut
		}
		if fc.endWatch() {
			keep = false
		}
	}()
	fc.f.s.ServeHTTP(&fc.w, req)
	return fc.w.finish(), true
}

// startWatch runs in its own goroutine (watchTimer) once a request has
// run for frontWatchAfter: it watches the client's connection while the
// request runs and cancels the request when the client closes it, as
// net/http's background read does (see watchClient).
func (fc *frontConn) startWatch() {
	fc.mu.Lock()
	if !fc.inRequest || fc.watching || fc.rc == nil {
		fc.mu.Unlock()
		return
	}
	fc.watching = true
	fc.mu.Unlock()
	defer func() {
		fc.mu.Lock()
		fc.watching = false
		fc.mu.Unlock()
	}()
	watchClient(fc.rc, func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return fc.inRequest
	}, func() {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		if fc.inRequest {
			fc.clientGone = true
			fc.cancel()
		}
	})
}

// endWatch ends the request's client watch, if it began (the watch sees
// it within frontWatchPoll), and reports whether the client went away.
func (fc *frontConn) endWatch() (gone bool) {
	fc.watchTimer.Stop()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.inRequest, fc.cancel = false, nil
	return fc.clientGone
}

// handOff gives the connection, with what was read of it, to net/http.
func (fc *frontConn) handOff() bool {
	fc.f.s.m.handoffs.Inc()
	buf, _ := fc.br.Peek(fc.br.Buffered())
	replay := append([]byte(nil), buf...)
	// net/http sets the deadlines it wants.
	_ = fc.c.SetDeadline(time.Time{})
	return fc.f.handoff.deliver(&replayConn{Conn: fc.c, replay: replay})
}

// armReadDeadline makes reads fail unless they complete within d (d <= 0:
// no limit). As upConn.armDeadline, it keeps a deadline already set that
// ends no more than d/16 early, sparing a timer update per request.
func (fc *frontConn) armReadDeadline(d time.Duration) {
	if t, ok := nextDeadline(fc.rdl, time.Now(), d); ok {
		fc.rdl = t
		_ = fc.c.SetReadDeadline(t)
	}
}

// armWriteDeadline bounds the writing of the response to the request that
// begins now by the write timeout (as net/http, from the request's start),
// in the same way.
func (fc *frontConn) armWriteDeadline() {
	if t, ok := nextDeadline(fc.wdl, time.Now(), fc.f.write); ok {
		fc.wdl = t
		_ = fc.c.SetWriteDeadline(t)
	}
}

// nextDeadline returns the deadline to set for a limit of d from now (d
// <= 0: none), and false when the current one, cur, may stay: it ends no
// later than that and no more than d/16 earlier, which spares a runtime
// timer update per request on a busy connection.
func nextDeadline(cur, now time.Time, d time.Duration) (time.Time, bool) {
	if d <= 0 {
		return time.Time{}, !cur.IsZero()
	}
	want := now.Add(d)
	if !cur.IsZero() && !cur.After(want) && !cur.Before(want.Add(-d/16)) {
		return cur, false
	}
	return want, true
}

// replayConn is a connection handed to net/http: its reads return first
// the bytes the front end had read already.
type replayConn struct {
	net.Conn
	replay []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection (net/http uses it to end a
// connection gracefully).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handoffListener is the listener net/http serves: its connections are
// those the front end handed over.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver passes c to net/http; false once the listener is closed.
func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// Accept implements net.Listener.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("proxy hand-off listener: %w", net.ErrClosed)
	}
}

// Close implements net.Listener.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *handoffListener) Addr() net.Addr { return l.addr }
