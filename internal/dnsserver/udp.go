package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/gslb-dev/gslb/internal/rrl"
)

// maxUDPMessage is the largest UDP payload.
const maxUDPMessage = 65535

// oobSize fits either family's destination-address control message.
var oobSize = max(len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
	len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)))

// enablePktinfo asks the kernel for each packet's destination address
// when u is bound to a wildcard address, so that replies leave from the
// address the query was sent to. It reports whether it did.
func enablePktinfo(u *net.UDPConn) bool {
	la, ok := u.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return false
	}
	err6 := ipv6.NewPacketConn(u).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	err4 := ipv4.NewPacketConn(u).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	return err4 == nil || err6 == nil
}

// serveUDP reads and answers queries on u until it is closed, subject to
// response rate limiting. It reads and writes many datagrams per system
// call where the platform can (serveUDPBatch), else one at a time.
func (s *Server) serveUDP(u *net.UDPConn, pktinfo bool) {
	if s.serveUDPBatch(u, pktinfo) {
		return
	}
	s.serveUDPSingle(u, pktinfo)
}

// serveUDPSingle reads and answers one datagram per system call until u
// is closed. Several goroutines may serve one socket; each owns its
// buffers.
func (s *Server) serveUDPSingle(u *net.UDPConn, pktinfo bool) {
	in := make([]byte, maxUDPMessage)
	out := make([]byte, 0, 4096)
	var oob []byte
	if pktinfo {
		oob = make([]byte, oobSize)
	}
	var smp sampler
	var sources replySources
	for {
		n, oobn, _, src, err := u.ReadMsgUDPAddrPort(in, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. a buffer error): do not spin on it.
			time.Sleep(time.Millisecond)
			continue
		}
		resp := s.answerUDP(out, in[:n], src, &smp)
		if resp == nil {
			continue
		}
		if pktinfo {
			_, _, _ = u.WriteMsgUDPAddrPort(resp, sources.of(oob[:oobn]), src)
		} else {
			_, _ = u.WriteToUDPAddrPort(resp, src)
		}
		if cap(resp) > cap(out) && cap(resp) <= maxUDPMessage {
			out = resp[:0] // keep the larger buffer
		}
	}
}

// answerUDP answers the UDP datagram req from src into out's storage and
// applies response rate limiting. It returns the datagram to send, or nil
// when nothing must be sent.
func (s *Server) answerUDP(out, req []byte, src netip.AddrPort, smp *sampler) []byte {
	if src.Port() == 0 {
		return nil // cannot be answered
	}
	resp, rcode := s.handle(out, req, src, UDP, smp.timed(s.clock.nanos()))
	if resp == nil {
		return nil
	}
	return s.limitUDP(resp, src, rcode)
}

// limitUDP applies response rate limiting to the UDP response resp with
// rcode for src: it returns resp, its slip reply, or nil (dropped).
func (s *Server) limitUDP(resp []byte, src netip.AddrPort, rcode int) []byte {
	if lim := s.rrl.Load(); lim != nil {
		switch lim.Check(src.Addr(), rrl.ClassOf(rcode)) {
		case rrl.Slip:
			s.m.rrlSlip.Inc()
			resp = slipReply(resp)
		case rrl.Drop:
			s.m.rrlDrop.Inc()
			return nil
		}
	}
	return resp
}

// sampler chooses the UDP messages a loop times for the duration
// histogram: every message while the loop handles few, else one in
// durationSample.
type sampler struct {
	count    uint32
	lastTick int64
	budget   int
}

// timed reports whether the next message is timed; tick is the coarse
// clock's current reading.
func (p *sampler) timed(tick int64) bool {
	p.count++
	if tick != p.lastTick {
		p.lastTick, p.budget = tick, timedPerTick
	}
	p.budget--
	return p.budget >= 0 || p.count%durationSample == 0
}

// The duration histogram times the first timedPerTick UDP messages of a
// loop in each tick of the coarse clock (so every message at low rates)
// and one in durationSample of the rest.
const (
	timedPerTick   = 4
	durationSample = 16
)

// replySources remembers the last control message replySource made: on a
// wildcard socket nearly every query arrives for the same address, and
// parsing and marshalling it costs several allocations per reply. The
// slices it returns are shared and never written.
type replySources struct {
	oob, reply []byte
}

// of returns replySource(oob), computed again only when oob differs from
// the previous one.
func (c *replySources) of(oob []byte) []byte {
	if c.oob == nil || !bytes.Equal(oob, c.oob) {
		c.reply = replySource(oob)
		c.oob = append(c.oob[:0], oob...)
	}
	return c.reply
}

// replySource turns the destination address of a received packet into the
// control message that makes the reply leave from it.
func replySource(oob []byte) []byte {
	if len(oob) == 0 {
		return nil
	}
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		if cm6.Dst.To4() == nil {
			return (&ipv6.ControlMessage{Src: cm6.Dst}).Marshal()
		}
		return (&ipv4.ControlMessage{Src: cm6.Dst}).Marshal()
	}
	var cm4 ipv4.ControlMessage
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		return (&ipv4.ControlMessage{Src: cm4.Dst}).Marshal()
	}
	return nil
}

// slipReply turns resp, in place, into the minimal reply RRL sends for a
// limited response (a "slip"): its header with TC=1 and no records, and
// its question, so that a real client retries over TCP.
func slipReply(resp []byte) []byte {
	if len(resp) < headerSize {
		return resp
	}
	end := headerSize
	if e, ok := plainNameEnd(resp, headerSize); ok && e+4 <= len(resp) && binary.BigEndian.Uint16(resp[4:]) == 1 {
		end = e + 4
	} else {
		binary.BigEndian.PutUint16(resp[4:], 0)
	}
	resp[2] |= 0x02 // TC
	clear(resp[6:12])
	return resp[:end]
}
