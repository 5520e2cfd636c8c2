//go:build !linux

package proxy

import "net"

// peeker would check an idle pooled connection before reuse. Without a
// non-blocking peek it trusts the connection; a stale one is replaced
// after the write fails (roundTripFast).
type peeker struct{}

func (p *peeker) init(net.Conn) {}

func (p *peeker) clean() bool { return true }

func (p *peeker) state() peekState { return peekNothing }
