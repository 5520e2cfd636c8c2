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
	result bool
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
func (p *peeker) clean() bool {
	if p.rc == nil {
		return true
	}
	p.result = false
	return p.rc.Control(p.cb) == nil && p.result
}

func (p *peeker) peek(fd uintptr) {
	for {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		// Only "nothing to read" is clean: n == 0 is the upstream's
		// close, n > 0 unsolicited bytes, another error a dead socket.
		p.result = n < 0 && err == syscall.EAGAIN
		return
	}
}
