package dnsserver

import (
	"encoding/binary"
	"errors"
	"net"
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
// response rate limiting. Several goroutines may serve one socket; each
// owns its buffers.
func (s *Server) serveUDP(u *net.UDPConn, pktinfo bool) {
	in := make([]byte, maxUDPMessage)
	out := make([]byte, 0, 4096)
	var oob []byte
	if pktinfo {
		oob = make([]byte, oobSize)
	}
	var (
		count    uint32
		lastTick int64
		budget   int
	)
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
		if src.Port() == 0 {
			continue // cannot be answered
		}
		// Time every message while this loop handles few, else one in
		// durationSample.
		count++
		if tick := s.clock.nanos(); tick != lastTick {
			lastTick, budget = tick, timedPerTick
		}
		timed := budget > 0 || count%durationSample == 0
		budget--
		resp, rcode := s.handle(out, in[:n], src, UDP, timed)
		if resp == nil {
			continue
		}
		if lim := s.rrl.Load(); lim != nil {
			switch lim.Check(src.Addr(), rrl.ClassOf(rcode)) {
			case rrl.Slip:
				s.m.rrlSlip.Inc()
				resp = slipReply(resp)
			case rrl.Drop:
				s.m.rrlDrop.Inc()
				continue
			}
		}
		if pktinfo {
			_, _, _ = u.WriteMsgUDPAddrPort(resp, replySource(oob[:oobn]), src)
		} else {
			_, _ = u.WriteToUDPAddrPort(resp, src)
		}
		if cap(resp) > cap(out) && cap(resp) <= maxUDPMessage {
			out = resp[:0] // keep the larger buffer
		}
	}
}

// The duration histogram times the first timedPerTick UDP messages of a
// loop in each tick of the coarse clock (so every message at low rates)
// and one in durationSample of the rest.
const (
	timedPerTick   = 4
	durationSample = 16
)

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
