//go:build linux

package proxy

import (
	"net"
	"syscall"
)

// peeker checks an idle pooled connection before reuse (see clean). Its
// RawConn and callback are made once per connection: no allocation per
// request.
type peeker struct {
	rc     syscall.RawConn // nil: the connection has no file descriptor
	cb     func(fd uintptr)
	result peekState
	buf    [1]byte
}

func (p *peeker) init(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc, p.cb = rc, p.peek
		}
	}
}

// clean reports whether an idle pooled connection can carry a new
// request: nothing arrived on it since its last response ended (bytes an
// upstream sent past a response's end would be read as the next one's
// start, handing one client's exchange another's bytes) and the upstream
// has not closed it. http.Transport learns the same from the reader
// goroutine it keeps on every idle connection; the fast path has none, so
// it peeks once, without blocking, when it takes the connection.
func (p *peeker) clean() bool { return p.state() == peekNothing }

// state looks, without blocking or consuming anything, at what the
// connection has to read.
func (p *peeker) state() peekState {
	if p.rc == nil {
		return peekNothing
	}
	p.result = peekClosed
	if p.rc.Control(p.cb) != nil {
		return peekClosed
	}
	return p.result
}

func (p *peeker) peek(fd uintptr) {
	for {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case n > 0:
			p.result = peekData
		case n < 0 && err == syscall.EAGAIN:
			p.result = peekNothing
		default: // n == 0: the peer's close; another error: a dead socket
			p.result = peekClosed
		}
		return
	}
}
