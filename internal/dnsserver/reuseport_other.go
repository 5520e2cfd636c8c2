//go:build !linux

package dnsserver

import "syscall"

// reusePortSupported is false: elsewhere SO_REUSEPORT does not balance
// datagrams over sockets, so one socket serves each address.
const reusePortSupported = false

func setReusePort(_, _ string, _ syscall.RawConn) error { return nil }
