//go:build !linux

package dnsserver

import (
	"errors"
	"net"
	"time"
)

// threadWakeInterval and threadIdleAfter are unused on this platform.
const (
	threadWakeInterval = 0
	threadIdleAfter    = 0
)

// udpThreadsSupported is false: thread readers block in recvmmsg, which
// is Linux's; elsewhere every socket is read through the runtime's poller.
const udpThreadsSupported = false

// udpThread is not used on this platform.
type udpThread struct{}

func newUDPThread(*net.UDPConn, time.Duration) (*udpThread, error) {
	return nil, errors.New("udp thread readers need Linux")
}

func (t *udpThread) stop()                                  {}
func (t *udpThread) close()                                 {}
func (s *Server) serveUDPThread(t *udpThread, pktinfo bool) {}
