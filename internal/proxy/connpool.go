package proxy

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"time"
)

// Buffer sizes of a pooled upstream connection. A request head larger than
// maxKeptWriteBuffer is sent from a buffer that is not kept afterwards.
const (
	upConnReadBuffer   = 4 << 10
	upConnWriteBuffer  = 4 << 10
	maxKeptWriteBuffer = 64 << 10
)

// upConn is one keep-alive HTTP/1.1 connection to an upstream, used by the
// fast path (fastpath.go) by one request at a time: no reader or writer
// goroutine sits behind it, so an idle connection costs a file descriptor
// and its buffers only.
type upConn struct {
	conn net.Conn
	lr   headLimitReader // under br: bounds the bytes of a response head
	br   *bufio.Reader
	// wbuf holds the request head being sent (see sendAndAwait).
	wbuf []byte
	send sender
	peek peeker
	// abortFn is abort, bound once for context.AfterFunc.
	abortFn   func()
	idleSince time.Time
	// usedAt is when the connection last sent a request.
	usedAt time.Time
	// deadline is the read deadline set on conn (zero: none).
	deadline time.Time
}

// armDeadline makes reads fail unless the upstream answers within d
// (d <= 0: no limit). A deadline set by an earlier request is kept while
// it ends no more than d/16 early, which spares re-arming the runtime
// timer on every request of a busy connection: the effective limit lies
// between 15/16 d and d.
func (c *upConn) armDeadline(now time.Time, d time.Duration) {
	c.usedAt = now
	if t, ok := nextDeadline(c.deadline, now, d); ok {
		c.deadline = t
		_ = c.conn.SetReadDeadline(t)
	}
}

// clearDeadline lifts the read deadline.
func (c *upConn) clearDeadline() {
	if !c.deadline.IsZero() {
		c.deadline = time.Time{}
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

func newUpConn(c net.Conn) *upConn {
	uc := &upConn{conn: c, lr: headLimitReader{r: c}, wbuf: make([]byte, 0, upConnWriteBuffer)}
	uc.br = bufio.NewReaderSize(&uc.lr, upConnReadBuffer)
	uc.send.init(c)
	uc.peek.init(c)
	uc.abortFn = uc.abort
	return uc
}

// limitHead makes reads from the connection fail once n more bytes have
// been read (n <= 0: no limit), as http.Transport bounds a response head
// by MaxResponseHeaderBytes. Bytes the buffer reads ahead count too.
func (c *upConn) limitHead(n int64) {
	c.lr.limited = n > 0
	c.lr.left = n
}

// headLimitReader reads from r, at most left bytes while limited.
type headLimitReader struct {
	r       net.Conn
	limited bool
	left    int64
}

func (l *headLimitReader) Read(p []byte) (int, error) {
	if !l.limited {
		return l.r.Read(p)
	}
	if l.left <= 0 {
		return 0, fmt.Errorf("proxy: upstream response head exceeds %d bytes", maxUpstreamHeaderBytes)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// abort makes every blocked or future read and write on the connection
// fail at once (a client that went away cancels its upstream exchange).
func (c *upConn) abort() { _ = c.conn.SetDeadline(aLongTimeAgo) }

func (c *upConn) close() { _ = c.conn.Close() }

// aLongTimeAgo is a deadline in the past, as net/http uses to interrupt I/O.
var aLongTimeAgo = time.Unix(1, 0)

// connPool keeps an upstream's idle fast-path connections, most recently
// used first out (so that a burst's extra connections age out).
type connPool struct {
	mu   sync.Mutex
	idle []*upConn
	// retired is set once the upstream left the config (or the server
	// stopped): connections coming back are closed, not kept.
	retired bool
}

// get returns an idle connection, or nil.
func (p *connPool) get() *upConn {
	p.mu.Lock()
	n := len(p.idle)
	if n == 0 {
		p.mu.Unlock()
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.mu.Unlock()
	return c
}

// put keeps c for reuse unless max connections are idle already, in which
// case it closes c.
func (p *connPool) put(c *upConn, max int, now time.Time) {
	c.idleSince = now
	p.mu.Lock()
	if p.retired || len(p.idle) >= max {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// prune closes connections idle since before cutoff.
func (p *connPool) prune(cutoff time.Time) {
	p.mu.Lock()
	keep := p.idle[:0]
	var stale []*upConn
	for _, c := range p.idle {
		if c.idleSince.Before(cutoff) {
			stale = append(stale, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

// retire closes every idle connection and every one returned later.
func (p *connPool) retire() {
	p.mu.Lock()
	p.retired = true
	p.mu.Unlock()
	p.closeIdle()
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// idleCount is the number of idle connections (for tests).
func (p *connPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
