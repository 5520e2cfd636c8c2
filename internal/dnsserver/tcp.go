package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// tcpTracker counts TCP connections per client and in total, and closes
// them on shutdown.
type tcpTracker struct {
	mu      sync.Mutex
	closing bool
	total   int
	perIP   map[netip.Addr]int
	open    map[*tcpConn]struct{}
	conns   sync.WaitGroup
}

func (t *tcpTracker) init() {
	t.perIP = map[netip.Addr]int{}
	t.open = map[*tcpConn]struct{}{}
}

// tcpConn is one accepted connection.
type tcpConn struct {
	c  *net.TCPConn
	ip netip.Addr

	mu      sync.Mutex
	idle    bool // waiting for the first byte of a query
	closing bool // the server is shutting down
}

// admit registers a new connection from ip, or returns the reason it is
// refused. Limits of zero or less are unlimited.
func (t *tcpTracker) admit(c *net.TCPConn, ip netip.Addr, lim tcpLimits) (*tcpConn, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closing:
		return nil, reasonShutdown
	case lim.maxConns > 0 && t.total >= lim.maxConns:
		return nil, reasonMaxConnections
	case lim.maxConnsPerIP > 0 && t.perIP[ip] >= lim.maxConnsPerIP:
		return nil, reasonMaxPerIP
	}
	t.total++
	t.perIP[ip]++
	tc := &tcpConn{c: c, ip: ip}
	t.open[tc] = struct{}{}
	t.conns.Add(1)
	return tc, ""
}

// release forgets a closed connection.
func (t *tcpTracker) release(tc *tcpConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
	if t.perIP[tc.ip]--; t.perIP[tc.ip] <= 0 {
		delete(t.perIP, tc.ip)
	}
	delete(t.open, tc)
	t.conns.Done()
}

// shutdown refuses new connections, closes idle ones now and lets those
// reading a query finish it.
func (t *tcpTracker) shutdown() {
	t.mu.Lock()
	t.closing = true
	conns := make([]*tcpConn, 0, len(t.open))
	for tc := range t.open {
		conns = append(conns, tc)
	}
	t.mu.Unlock()
	for _, tc := range conns {
		tc.mu.Lock()
		tc.closing = true
		if tc.idle {
			_ = tc.c.SetReadDeadline(time.Now())
		}
		tc.mu.Unlock()
	}
}

// forceClose closes every open connection.
func (t *tcpTracker) forceClose() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tc := range t.open {
		tc.c.Close()
	}
}

// waitIdle arms the idle timeout before the next query; false means the
// server is shutting down.
func (tc *tcpConn) waitIdle(d time.Duration) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.closing {
		return false
	}
	tc.idle = true
	_ = tc.c.SetReadDeadline(time.Now().Add(d))
	return true
}

// startRead arms the read timeout once a query has begun to arrive.
func (tc *tcpConn) startRead(d time.Duration) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.idle = false
	_ = tc.c.SetReadDeadline(time.Now().Add(d))
}

func (tc *tcpConn) isClosing() bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.closing
}

// serveTCP accepts connections on l until it is closed, refusing those
// over the connection limits.
func (s *Server) serveTCP(l *net.TCPListener) {
	backoff := time.Duration(0)
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, then retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		ip := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		tc, reason := s.tcp.admit(c, ip, s.Handler().limits)
		if reason != "" {
			s.m.tcpRejected.WithLabelValues(reason).Inc()
			_ = c.SetLinger(0) // reset: no TIME_WAIT for refused floods
			c.Close()
			continue
		}
		s.m.tcpConnections.Inc()
		go s.serveConn(tc)
	}
}

// serveConn answers the queries of one connection in order (RFC 7766
// pipelining) until the client closes it, a timeout or limit ends it, or
// the server shuts down.
func (s *Server) serveConn(tc *tcpConn) {
	reason := reasonError
	defer func() {
		tc.c.Close()
		s.tcp.release(tc)
		s.m.tcpConnections.Dec()
		s.m.tcpClosed.WithLabelValues(reason).Inc()
	}()
	src := tc.c.RemoteAddr().(*net.TCPAddr).AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	br := bufio.NewReaderSize(tc.c, 4096)
	msg := make([]byte, 0, 512)
	out := make([]byte, 0, 4096)
	var prefix [2]byte
	for queries := 1; ; queries++ {
		lim := s.Handler().limits
		if !tc.waitIdle(time.Duration(lim.idleTimeout)) {
			reason = reasonShutdown
			return
		}
		b0, err := br.ReadByte()
		if err != nil {
			reason = tc.readErrReason(err, reasonIdleTimeout)
			return
		}
		tc.startRead(time.Duration(lim.readTimeout))
		b1, err := br.ReadByte()
		if err != nil {
			reason = tc.readErrReason(err, reasonReadTimeout)
			return
		}
		n := int(b0)<<8 | int(b1)
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(br, msg); err != nil {
			reason = tc.readErrReason(err, reasonReadTimeout)
			return
		}
		resp, _ := s.handle(out, msg, src, TCP, true)
		if resp == nil {
			return // not a query: this is no DNS client
		}
		binary.BigEndian.PutUint16(prefix[:], uint16(len(resp)))
		_ = tc.c.SetWriteDeadline(time.Now().Add(time.Duration(lim.readTimeout)))
		bufs := net.Buffers{prefix[:], resp}
		if _, err := bufs.WriteTo(tc.c); err != nil {
			return
		}
		if cap(resp) > cap(out) && cap(resp) <= maxUDPMessage {
			out = resp[:0]
		}
		if lim.maxQueries > 0 && queries >= lim.maxQueries {
			reason = reasonMaxQueries
			return
		}
	}
}

// readErrReason names why a read ended; timeout is the reason for a
// deadline that was not caused by shutdown.
func (tc *tcpConn) readErrReason(err error, timeout string) string {
	switch {
	case tc.isClosing():
		return reasonShutdown
	case errors.Is(err, os.ErrDeadlineExceeded):
		return timeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return reasonClientClosed
	}
	return reasonError
}
