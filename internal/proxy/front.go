package proxy

import (
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
// request from inside the wait for the next one (run), so its
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

// frontWatchPoll is how often the client watch looks at the connection
// of a request still running.
const frontWatchPoll = 100 * time.Millisecond

// frontLinger bounds how long a connection closed after a response reads
// what its client still sends (see closeAfterResponse).
const frontLinger = 500 * time.Millisecond

// frontServer runs the front end on some listeners; connections it does
// not serve itself go to net/http through handoff.
type frontServer struct {
	s       *Server
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
		s: s,
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
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Temporary() { //nolint:staticcheck // as net/http decides
				return fmt.Errorf("proxy accept: %w", err)
			}
			// Out of file descriptors and the like: back off, as net/http.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.s.log.Warn("proxy accept failed; retrying", zap.Error(err), zap.Duration("in", delay))
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
	fc.buf = make([]byte, frontReadBuffer)
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			fc.rc = rc
		}
	}
	fc.peek.init(c)
	fc.w = frontWriter{fc: fc, header: make(http.Header)}
	fc.ctx, fc.cancel = context.WithCancel(context.WithValue(f.base, http.LocalAddrContextKey, c.LocalAddr()))
	fc.ctx = withAbortHook(fc.ctx)
	fc.watchTimer = time.AfterFunc(time.Hour, fc.checkClient)
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
	open := make([]net.Conn, 0, len(f.conns))
	for fc := range f.conns {
		open = append(open, fc.c)
	}
	f.mu.Unlock()
	// Outside the lock: Close waits for a handler still running in the
	// connection's RawConn.Read to return.
	for _, c := range open {
		c.Close()
	}
	f.wg.Wait()
}

// frontConn is one client connection served by the front end.
type frontConn struct {
	f      *frontServer
	c      net.Conn
	remote string
	w      frontWriter
	// ctx is the context of every request on the connection: one per
	// connection rather than one per request (a context per request cost
	// about 7% of the proxy's CPU per request). It is cancelled when the
	// client watch finds the client gone, after which the connection
	// serves no more requests, and when the connection ends. A request's
	// context thus stays live after its handler returns while the
	// connection does; the proxy's handler, the only one the front end
	// runs, leaves nothing behind that waits for that.
	ctx    context.Context
	cancel context.CancelFunc

	// rdl and wdl are the read and write deadlines set on c (see
	// armReadDeadline).
	rdl, wdl time.Time
	// idle is set while the connection waits for its next request.
	idle atomic.Bool

	// rc is the connection's descriptor, read by run from inside one
	// RawConn.Read; buf[lo:hi] holds what was read and not yet served.
	rc     syscall.RawConn
	buf    []byte
	lo, hi int
	// searched is how much of buf[lo:hi] holds no end of the head.
	searched int
	drained  bool // the last read left nothing in the socket
	// headArmed: the read-header deadline of the head being read is set.
	headArmed bool
	// exit is how run ended: frontExitClose, frontExitLinger or
	// frontExitHandOff.
	exit int
	peek peeker // the client watch's check (see checkClient)

	// The client watch, under mu.
	mu         sync.Mutex
	inRequest  bool
	clientGone bool
	watchTimer *time.Timer
}

// How run ended.
const (
	frontExitClose   = iota // close the connection
	frontExitLinger         // close it after the client had time to read the response
	frontExitHandOff        // give it to net/http
)

// serve reads and answers requests until the connection ends or is handed
// to net/http.
func (fc *frontConn) serve() {
	fc.exit = frontExitHandOff // without a descriptor, the connection is net/http's
	if fc.rc != nil {
		fc.exit = frontExitClose // unless run says otherwise (a failed wait ends Read)
		fc.armReadDeadline(fc.f.readHeader)
		fc.headArmed = true // the first request's head is bounded from the connection's start
		fc.runLoop()
	}
	fc.cancel() // no request of the connection runs any more
	switch fc.exit {
	case frontExitHandOff:
		if !fc.handOff() {
			fc.c.Close()
		}
	case frontExitLinger:
		fc.closeAfterResponse()
	default:
		fc.c.Close()
	}
	fc.f.forget(fc)
}

// runLoop runs the connection's loop (run) in one RawConn.Read. A panic
// outside a handler (those are recovered by serveRequest) ends the
// connection, not the process, as net/http recovers per connection.
func (fc *frontConn) runLoop() {
	defer func() {
		if v := recover(); v != nil {
			fc.exit = frontExitClose
			fc.logPanic(v)
		}
	}()
	_ = fc.rc.Read(fc.run)
}

// run is the connection's loop, the callback of one RawConn.Read that
// lasts as long as the connection: it reads requests with non-blocking
// reads, serves them, writes their responses, and returns false to wait
// whenever it needs more bytes. It returns true, with fc.exit set, when
// the connection ends or goes to net/http. A failed wait (the idle or
// read-header deadline, shutdown, a close) ends RawConn.Read with
// fc.exit at frontExitClose.
//
// RawConn.Read arms the runtime's readiness tracking once, before the
// first call: from then on, bytes that arrive while a request is served
// (a pipelined request) or the client's close are remembered and end the
// next wait at once. So after a read that emptied the socket, the loop
// can wait without reading again: the read after each response that
// net/http makes, which finds nothing on a keep-alive connection because
// the client has not had the response yet, is not made. Nothing else
// reads the connection meanwhile: requests served here have no body, and
// the client watch peeks (checkClient).
func (fc *frontConn) run(fd uintptr) bool {
	for {
		if fc.lo < fc.hi {
			data := fc.buf[fc.lo:fc.hi]
			n, bareLF := frontHeadEnd(data, fc.searched)
			fc.searched = len(data)
			switch {
			case n > 0 && n <= fc.f.maxHead:
				fc.idle.Store(false)
				req, ok := parseFrontRequest(data[:n])
				if !ok {
					fc.exit = frontExitHandOff
					return true
				}
				fc.lo += n
				fc.searched = 0
				if !fc.serveOne(&req) {
					return true
				}
				continue // a pipelined request may be buffered already
			case n > 0, bareLF, len(data) >= len(fc.buf), len(data) > fc.f.maxHead:
				fc.exit = frontExitHandOff // net/http's to read (or refuse)
				return true
			}
			fc.idle.Store(false)
			if !fc.headArmed {
				fc.headArmed = true
				fc.armReadDeadline(fc.f.readHeader)
			}
		} else {
			fc.lo, fc.hi, fc.searched = 0, 0, 0
			// Waiting for a request: shutdown may end the wait from now
			// on, so it is told first, then checked for.
			fc.idle.Store(true)
			if fc.f.closing.Load() {
				fc.exit = frontExitClose
				return true
			}
		}
		if fc.drained {
			// The last read emptied the socket: wait (the next call reads).
			fc.drained = false
			return false
		}
		if fc.lo > 0 { // make room at the end
			fc.hi = copy(fc.buf, fc.buf[fc.lo:fc.hi])
			fc.lo = 0
		}
		n, again, err := readNow(fd, fc.buf[fc.hi:])
		switch {
		case again:
			return false
		case err != nil || n <= 0: // the client closed the connection, or it failed
			fc.exit = frontExitClose
			return true
		default:
			fc.hi += n
			fc.drained = fc.hi < len(fc.buf)
		}
	}
}

// serveOne serves req and writes its response, and reports whether the
// connection carries on (else fc.exit says how it ends).
func (fc *frontConn) serveOne(req *http.Request) bool {
	keep, complete := fc.serveRequest(req)
	fc.w.flushOut()
	switch {
	case fc.w.err != nil || !complete:
		fc.exit = frontExitClose
		return false
	case !keep || fc.f.closing.Load():
		fc.exit = frontExitLinger
		return false
	}
	fc.w.trim()
	fc.armReadDeadline(fc.f.idle)
	fc.headArmed = false
	return true
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

// serveRequest runs the proxy's handler for req and completes the
// response, leaving its last bytes in fc.w.out. It reports whether the
// connection can carry another request, and whether the response is
// complete (false: the handler panicked and the response is cut).
func (fc *frontConn) serveRequest(req *http.Request) (keep, complete bool) {
	req.RemoteAddr = fc.remote
	r := req.WithContext(fc.ctx) // the one copy on the heap (req may stay on the stack)
	fc.w.reset(r)
	fc.armWriteDeadline()

	fc.mu.Lock()
	fc.inRequest = true
	fc.mu.Unlock()
	fc.watchTimer.Reset(frontWatchAfter)
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				fc.logPanic(v)
			}
			keep, complete = false, false
			fc.w.out = fc.w.out[:0] // the client must see the response cut
		}
		if fc.endWatch() {
			keep = false
		}
	}()
	fc.f.s.ServeHTTP(&fc.w, r)
	return fc.w.finish(), true
}

// logPanic logs a panic recovered while serving the connection, with its
// stack, as net/http does.
func (fc *frontConn) logPanic(v any) {
	fc.f.s.log.Error("proxy: panic serving connection", zap.String("client", fc.remote),
		zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
}

// checkClient runs on watchTimer while a request runs: from
// frontWatchAfter on, and then every frontWatchPoll, it checks without
// blocking whether the client closed the connection, and if so cancels
// the request, as net/http's background read does. Bytes from the client
// (the next pipelined request) end the watch: the client is there.
func (fc *frontConn) checkClient() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !fc.inRequest {
		return
	}
	switch fc.peek.state() {
	case peekClosed:
		fc.clientGone = true
		fc.cancel()
	case peekNothing:
		fc.watchTimer.Reset(frontWatchPoll)
	}
}

// endWatch ends the request's client watch and reports whether the client
// went away.
func (fc *frontConn) endWatch() (gone bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.inRequest = false
	// Under mu: a checkClient running now cannot re-arm the timer after.
	fc.watchTimer.Stop()
	return fc.clientGone
}

// handOff gives the connection, with what was read of it, to net/http.
func (fc *frontConn) handOff() bool {
	fc.f.s.m.handoffs.Inc()
	rc := &replayConn{Conn: fc.c, replay: append([]byte(nil), fc.buf[fc.lo:fc.hi]...)}
	if n, _ := frontHeadEnd(rc.replay, 0); n == 0 && fc.headArmed && fc.hi > fc.lo {
		// A head that began here and is not complete keeps its
		// read-header deadline: a hand-off must not restart it.
		rc.headDeadline = fc.rdl
	}
	// net/http sets the deadlines it wants.
	_ = fc.c.SetDeadline(time.Time{})
	return fc.f.handoff.deliver(rc)
}

// armReadDeadline makes reads fail unless they complete within d (d <= 0:
// no limit). As upConn.armDeadline, it keeps a deadline already set that
// ends no more than d/16 early, sparing a timer update per request.
func (fc *frontConn) armReadDeadline(d time.Duration) {
	if fc.f.closing.Load() {
		return // shutdown's wake-up (see shutdown) must stand
	}
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

	mu sync.Mutex
	// headDeadline, while set, bounds every read deadline net/http sets:
	// the head being read began before the hand-off, under the front
	// end's read-header deadline. It is lifted (and the deadline net/http
	// asked for last, want, applied) once the head's blank line is read.
	headDeadline time.Time
	want         time.Time
	lineStart    bool // the last byte read ended a line
}

func (c *replayConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.replay) > 0 {
		n = copy(p, c.replay)
		c.replay = c.replay[n:]
	} else {
		n, err = c.Conn.Read(p)
	}
	c.mu.Lock()
	if !c.headDeadline.IsZero() && c.headEnds(p[:n]) {
		c.headDeadline = time.Time{}
		_ = c.Conn.SetReadDeadline(c.want)
	}
	c.mu.Unlock()
	return n, err
}

// headEnds scans bytes read for the blank line that ends a head (CRLF or,
// as net/http accepts, bare LF line endings).
func (c *replayConn) headEnds(b []byte) bool {
	for _, ch := range b {
		switch {
		case ch == '\n' && c.lineStart:
			return true
		case ch == '\n':
			c.lineStart = true
		case ch == '\r' && c.lineStart:
		default:
			c.lineStart = false
		}
	}
	return false
}

// SetReadDeadline implements net.Conn (see headDeadline).
func (c *replayConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.headDeadline.IsZero() {
		c.want = t
		if t.IsZero() || t.After(c.headDeadline) {
			t = c.headDeadline
		}
	}
	return c.Conn.SetReadDeadline(t)
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
