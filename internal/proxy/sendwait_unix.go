//go:build unix

package proxy

import (
	"net"
	"os"
	"syscall"
)

// sender writes a request head from inside the wait for the answer (see
// upConn.sendAndAwait).
type sender struct {
	rc    syscall.RawConn // nil: the connection has no file descriptor
	cb    func(fd uintptr) bool
	buf   []byte // what to write
	off   int    // how much of buf is written
	began bool   // the callback ran once (the write happened)
	err   error  // the write's error
}

func (s *sender) init(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
			s.cb = s.writeThenWait // bound once: no closure per request
		}
	}
}

func (s *sender) sendAndAwait(c net.Conn, b []byte) error {
	if s.rc == nil {
		_, err := c.Write(b)
		return err
	}
	s.buf, s.off, s.began, s.err = b, 0, false, nil
	err := s.rc.Read(s.cb)
	rest := s.buf[s.off:]
	s.buf = nil
	switch {
	case err != nil:
		return err
	case s.err != nil:
		return s.err
	case len(rest) > 0:
		// The socket buffer was full: finish writing the ordinary way
		// (the runtime waits for room), then let the reader wait.
		_, err := c.Write(rest)
		return err
	}
	return nil
}

// writeThenWait is the RawConn.Read callback: on its first call it writes
// the head without blocking and returns false so that the runtime waits
// for the socket to become readable; on the next call (readable) it is done.
func (s *sender) writeThenWait(fd uintptr) bool {
	if s.began {
		return true
	}
	s.began = true
	for s.off < len(s.buf) {
		n, err := syscall.Write(int(fd), s.buf[s.off:])
		if n > 0 {
			s.off += n
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true // finished by sendAndAwait with a blocking Write
		default:
			s.err = os.NewSyscallError("write", err)
			return true
		}
	}
	return false
}
