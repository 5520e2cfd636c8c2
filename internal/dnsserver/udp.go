package dnsserver

import (
	"errors"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
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

// serveUDP reads and answers queries on u until it is closed. Several
// goroutines may serve one socket; each owns its buffers.
func (s *Server) serveUDP(u *net.UDPConn, pktinfo bool) {
	in := make([]byte, maxUDPMessage)
	out := make([]byte, 0, 4096)
	var oob []byte
	if pktinfo {
		oob = make([]byte, oobSize)
	}
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
		resp := s.handle(out, in[:n], src, UDP)
		if resp == nil {
			continue
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
