package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on a fresh OS thread that has joined the named network
// namespace. Sockets created by fn live in that namespace for their whole
// life. The thread is never unlocked, so the Go runtime discards it when
// fn's goroutine ends and no other goroutine ever runs in the namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see the doc comment
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join netns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// nsDialer dials from inside a network namespace, optionally from a given
// local address.
type nsDialer struct {
	ns    string
	local net.IP // nil: the kernel picks
}

// DialContext dials network/addr from inside the namespace.
func (d nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(d.ns, func() error {
		var nd net.Dialer
		if d.local != nil {
			switch network {
			case "udp", "udp4", "udp6":
				nd.LocalAddr = &net.UDPAddr{IP: d.local}
			default:
				nd.LocalAddr = &net.TCPAddr{IP: d.local}
			}
		}
		c, err := nd.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from netns %s: %w", network, addr, d.ns, err)
	}
	return conn, nil
}
