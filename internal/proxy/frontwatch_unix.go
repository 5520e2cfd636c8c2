//go:build unix

package proxy

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// watchClient watches a client connection while its request runs: it
// calls gone when the client closes it (or it fails), and returns then,
// when the client sends more (the next pipelined request: the client is
// there), or when running reports false. It polls instead of reading:
// the request is served from inside a RawConn.Read, which holds the
// connection's read lock.
func watchClient(rc syscall.RawConn, running func() bool, gone func()) {
	var buf [1]byte
	for running() {
		closed, more := false, false
		err := rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
			n, err := unix.Poll(fds, int(frontWatchPoll.Milliseconds()))
			if err != nil || n == 0 {
				return // EINTR or nothing yet
			}
			// Readable: bytes, or the end of the stream (a close, or a
			// half-close, which net/http also takes for the client gone).
			m, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			switch {
			case m > 0:
				more = true
			case err == unix.EAGAIN || err == unix.EINTR:
			default:
				closed = true
			}
		})
		switch {
		case err != nil || closed:
			gone()
			return
		case more:
			return
		}
	}
}
