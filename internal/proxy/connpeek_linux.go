//go:build linux

package proxy

import (
	"net"
	"syscall"
)

// idleClean reports whether an idle pooled connection can carry a new
// request: nothing arrived on it since its last response ended (bytes an
// upstream sent past a response's end would be read as the next one's
// start, handing one client's exchange another's bytes) and the upstream
// has not closed it. http.Transport learns the same from the reader
// goroutine it keeps on every idle connection; the fast path has none, so
// it peeks once, without blocking, when it takes the connection.
func idleClean(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	clean := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			// Only "nothing to read" is clean: n == 0 is the upstream's
			// close, n > 0 unsolicited bytes, another error a dead socket.
			clean = n < 0 && err == syscall.EAGAIN
			return
		}
	})
	return err == nil && clean
}
