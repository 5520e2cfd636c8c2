package dnsserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported is true where several UDP sockets can share a port
// with the kernel balancing datagrams over them.
const reusePortSupported = true

// setReusePort sets SO_REUSEPORT on a socket before it is bound.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
