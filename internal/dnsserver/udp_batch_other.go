//go:build !linux

package dnsserver

import "net"

// serveUDPBatch reports false: batched reads (recvmmsg) are used on Linux
// only, so serveUDP reads one datagram per system call.
func (s *Server) serveUDPBatch(*net.UDPConn, bool) bool { return false }
