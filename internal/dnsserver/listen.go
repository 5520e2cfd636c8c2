package dnsserver

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
)

// maxBindAttempts bounds the retries of binding an ephemeral port whose
// TCP or SO_REUSEPORT UDP twin turned out to be taken.
const maxBindAttempts = 10

// listenGroup binds n UDP sockets sharing addr with SO_REUSEPORT (one
// plain socket when n is 1 or the platform lacks it) and a TCP listener
// on the same address. With port 0 the port is the one the kernel chose
// for a plain UDP socket, which is then closed and re-bound as the group:
// binding port 0 with SO_REUSEPORT could share a port with another
// process's reuseport group (the kernel counts that as free).
func listenGroup(ctx context.Context, addr string, n int) ([]*net.UDPConn, *net.TCPListener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var plain net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, err := plain.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err
		}
		first := pc.(*net.UDPConn)
		bound := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
		l, err := plain.Listen(ctx, "tcp", bound)
		if err != nil {
			first.Close()
			if port != "0" || attempt >= maxBindAttempts {
				return nil, nil, err
			}
			continue
		}
		if n <= 1 || !reusePortSupported {
			return []*net.UDPConn{first}, l.(*net.TCPListener), nil
		}
		first.Close()
		us, err := listenReusePort(ctx, bound, n)
		if err == nil {
			return us, l.(*net.TCPListener), nil
		}
		l.Close()
		if port != "0" || attempt >= maxBindAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// listenReusePort binds n UDP sockets to addr with SO_REUSEPORT.
func listenReusePort(ctx context.Context, addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: setReusePort}
	us := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, u := range us {
				u.Close()
			}
			return nil, err
		}
		us = append(us, pc.(*net.UDPConn))
	}
	return us, nil
}
