package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/routing"
)

// Transport says how a message arrived.
type Transport uint8

// Transports.
const (
	UDP Transport = iota
	TCP
)

// Outcome describes how one message was handled, for metrics.
type Outcome struct {
	// Zone is the apex of the zone that answered ("" for none).
	Zone string
	// Qtype is the question's type (0 when there was no question).
	Qtype uint16
	// Rcode is the response code sent, or RcodeDropped.
	Rcode int
}

// RcodeDropped is the Outcome.Rcode of a message that got no response.
const RcodeDropped = -1

// Header bits of the second 16-bit word.
const (
	flagQR     = 1 << 15
	flagRD     = 1 << 8
	flagCD     = 1 << 4
	headerSize = 12
)

// Handler answers DNS messages for one config: the zone data, the router
// and the EDNS and ECS settings. It is immutable and safe for concurrent
// use; a reload builds a new Handler.
type Handler struct {
	zones      *Zones
	udpSize    uint16
	ecsEnabled bool
	trusted    []netip.Prefix
	maxScopeV4 int
	maxScopeV6 int
	limits     tcpLimits
	scratch    sync.Pool
}

// tcpLimits are the TCP limits of a config (see config.DNSConfig).
type tcpLimits struct {
	maxConns, maxConnsPerIP, maxQueries int
	idleTimeout, readTimeout            int64 // nanoseconds
}

// scratch holds the per-message state a Handler reuses.
type scratch struct {
	resp dns.Msg
	res  Result
}

// NewHandler builds a Handler for cfg answering GSLB service names with
// router.
func NewHandler(cfg *config.Config, router Router) (*Handler, error) {
	zones, err := NewZones(cfg, router)
	if err != nil {
		return nil, err
	}
	d := cfg.DNS
	h := &Handler{
		zones:      zones,
		udpSize:    max(d.UDPSize, dns.MinMsgSize),
		ecsEnabled: d.ECS.ECSEnabled(),
		maxScopeV4: d.ECS.MaxScopeV4,
		maxScopeV6: d.ECS.MaxScopeV6,
		limits: tcpLimits{
			maxConns:      d.MaxTCPConnections,
			maxConnsPerIP: d.MaxTCPConnectionsPerIP,
			maxQueries:    d.MaxQueriesPerTCPConnection,
			idleTimeout:   int64(d.TCPIdleTimeout),
			readTimeout:   int64(d.TCPReadTimeout),
		},
	}
	for _, p := range d.ECS.TrustedResolvers {
		h.trusted = append(h.trusted, p.Prefix)
	}
	h.scratch.New = func() any { return new(scratch) }
	return h, nil
}

// Zones returns the handler's zone data.
func (h *Handler) Zones() *Zones { return h.zones }

// Respond handles the request message req that arrived from src over tr.
// It returns the response packed into buf's storage when it fits (buf may
// be nil), or nil when no response must be sent (a runt or a response
// message). It never panics on any input.
func (h *Handler) Respond(buf, req []byte, src netip.AddrPort, tr Transport) ([]byte, Outcome) {
	out := Outcome{Rcode: RcodeDropped}
	if len(req) < headerSize {
		return nil, out // not even a header to answer
	}
	flags := binary.BigEndian.Uint16(req[2:])
	if flags&flagQR != 0 {
		return nil, out // never answer a response
	}
	if opcode := int(flags>>11) & 0xF; opcode != dns.OpcodeQuery {
		out.Rcode = dns.RcodeNotImplemented
		return headerReply(buf, req, dns.RcodeNotImplemented), out
	}
	if binary.BigEndian.Uint16(req[4:]) != 1 {
		out.Rcode = dns.RcodeFormatError
		return headerReply(buf, req, dns.RcodeFormatError), out
	}
	var m dns.Msg
	if err := m.Unpack(req); err != nil || len(m.Question) != 1 ||
		// The decoder forgives counts larger than the records sent; a
		// message whose header lies is malformed all the same.
		len(m.Answer) != int(binary.BigEndian.Uint16(req[6:])) ||
		len(m.Ns) != int(binary.BigEndian.Uint16(req[8:])) ||
		len(m.Extra) != int(binary.BigEndian.Uint16(req[10:])) {
		out.Rcode = dns.RcodeFormatError
		return headerReply(buf, req, dns.RcodeFormatError), out
	}
	s := h.scratch.Get().(*scratch)
	defer h.scratch.Put(s)
	resp := &s.resp
	q := m.Question[0]
	out.Qtype = q.Qtype
	*resp = dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id: m.Id, Response: true, Opcode: dns.OpcodeQuery,
			RecursionDesired: m.RecursionDesired, CheckingDisabled: m.CheckingDisabled,
		},
		Compress: true,
		Question: append(resp.Question[:0], q),
		Answer:   resp.Answer[:0],
		Ns:       resp.Ns[:0],
		Extra:    resp.Extra[:0],
	}

	// EDNS(0), RFC 6891.
	var opt *dns.OPT
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				out.Rcode = dns.RcodeFormatError
				return headerReply(buf, req, dns.RcodeFormatError), out
			}
			opt = o
		}
	}
	var respOpt *dns.OPT
	if opt != nil {
		respOpt = &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		respOpt.SetUDPSize(h.udpSize)
		respOpt.SetDo(opt.Do())
		if opt.Version() != 0 {
			return h.finish(buf, resp, respOpt, dns.RcodeBadVers, tr, opt, &out)
		}
	}

	switch q.Qclass {
	case dns.ClassINET, dns.ClassANY:
	default:
		return h.finish(buf, resp, respOpt, dns.RcodeRefused, tr, opt, &out)
	}
	switch q.Qtype {
	case dns.TypeOPT:
		return h.finish(buf, resp, respOpt, dns.RcodeFormatError, tr, opt, &out)
	case dns.TypeAXFR, dns.TypeIXFR:
		// Zone transfers are not offered.
		return h.finish(buf, resp, respOpt, dns.RcodeRefused, tr, opt, &out)
	case dns.TypeMAILA, dns.TypeMAILB, dns.TypeTKEY, dns.TypeTSIG:
		return h.finish(buf, resp, respOpt, dns.RcodeNotImplemented, tr, opt, &out)
	}

	// The client the answer is for: the ECS subnet (RFC 7871) or the source.
	srcAddr := src.Addr().Unmap()
	client := routing.Query{Client: srcAddr, SourcePrefix: srcAddr.BitLen()}
	var ecs *ClientSubnet
	if opt != nil && h.ecsEnabled && hasSubnetOption(opt) && h.trustedSource(srcAddr) {
		data, found, err := findSubnetOption(req)
		if err != nil {
			return h.finish(buf, resp, respOpt, dns.RcodeFormatError, tr, opt, &out)
		}
		if found {
			cs, err := ParseClientSubnet(data)
			if err != nil {
				return h.finish(buf, resp, respOpt, dns.RcodeFormatError, tr, opt, &out)
			}
			ecs = &cs
			if cs.SourcePrefix == 0 {
				// RFC 7871 §7.1.2: the client asked that no address be
				// used, not even the resolver's own.
				client = routing.Query{}
			} else {
				client = routing.Query{Client: cs.Addr, SourcePrefix: int(cs.SourcePrefix)}
			}
		}
	}

	res := &s.res
	h.zones.LookupInto(res, q.Name, q.Qtype, client)
	out.Zone = res.Zone
	resp.Authoritative = res.Authoritative
	resp.Answer = append(resp.Answer, res.Answer...)
	resp.Ns = append(resp.Ns, res.Ns...)
	resp.Extra = append(resp.Extra, res.Extra...)
	if ecs != nil {
		scope := 0
		if res.Routed && ecs.SourcePrefix > 0 {
			scope = min(res.Scope, h.maxScope(ecs.Family))
		}
		respOpt.Option = append(respOpt.Option, ecs.responseOption(max(scope, 0)))
	}
	return h.finish(buf, resp, respOpt, res.Rcode, tr, opt, &out)
}

// finish sets the rcode and OPT of resp, packs it and truncates it to
// the client's UDP size.
func (h *Handler) finish(buf []byte, resp *dns.Msg, respOpt *dns.OPT, rcode int, tr Transport, opt *dns.OPT, out *Outcome) ([]byte, Outcome) {
	resp.Rcode = rcode
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		resp.Authoritative = false
		resp.Answer, resp.Ns, resp.Extra = resp.Answer[:0], resp.Ns[:0], resp.Extra[:0]
	}
	if respOpt != nil {
		resp.Extra = append(resp.Extra, respOpt)
	}
	out.Rcode = rcode
	packed, err := resp.PackBuffer(buf[:cap(buf)])
	if err != nil {
		out.Rcode = dns.RcodeServerFailure
		return headerReplyFor(buf, resp, dns.RcodeServerFailure), *out
	}
	limit := dns.MaxMsgSize // TCP: what the length prefix can carry
	if tr == UDP {
		limit = dns.MinMsgSize
		if opt != nil {
			limit = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		limit = min(limit, int(h.udpSize))
	}
	if len(packed) > limit {
		resp.Truncate(limit)
		if resp.Truncated && tr == UDP {
			// RFC 2181 §9: a resolver retries a truncated answer over TCP
			// and ignores what it got; send as little as possible.
			resp.Answer, resp.Ns, resp.Extra = resp.Answer[:0], resp.Ns[:0], resp.Extra[:0]
			if respOpt != nil {
				resp.Extra = append(resp.Extra, respOpt)
			}
		}
		if packed, err = resp.PackBuffer(buf[:cap(buf)]); err != nil {
			out.Rcode = dns.RcodeServerFailure
			return headerReplyFor(buf, resp, dns.RcodeServerFailure), *out
		}
	}
	return packed, *out
}

func (h *Handler) maxScope(family uint16) int {
	if family == ecsFamilyIPv4 {
		return h.maxScopeV4
	}
	return h.maxScopeV6
}

// trustedSource reports whether ECS from addr is honoured.
func (h *Handler) trustedSource(addr netip.Addr) bool {
	if len(h.trusted) == 0 {
		return true
	}
	for _, p := range h.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// headerReply builds a reply to req holding only a header with rcode and,
// when it can be read, the question exactly as sent.
func headerReply(buf, req []byte, rcode int) []byte {
	qlen := 0
	if binary.BigEndian.Uint16(req[4:]) == 1 {
		if end, ok := plainNameEnd(req, headerSize); ok && end+4 <= len(req) {
			qlen = end + 4 - headerSize
		}
	}
	flags := binary.BigEndian.Uint16(req[2:])
	out := append(buf[:0], req[0], req[1])
	out = binary.BigEndian.AppendUint16(out, flagQR|flags&(0xF<<11|flagRD|flagCD)|uint16(rcode&0xF))
	qd := uint16(0)
	if qlen > 0 {
		qd = 1
	}
	out = binary.BigEndian.AppendUint16(out, qd)
	out = append(out, 0, 0, 0, 0, 0, 0)
	return append(out, req[headerSize:headerSize+qlen]...)
}

// headerReplyFor builds a header-only reply for a response that could not
// be packed.
func headerReplyFor(buf []byte, resp *dns.Msg, rcode int) []byte {
	var hdr [headerSize]byte
	binary.BigEndian.PutUint16(hdr[0:], resp.Id)
	flags := uint16(flagQR | rcode&0xF)
	if resp.RecursionDesired {
		flags |= flagRD
	}
	binary.BigEndian.PutUint16(hdr[2:], flags)
	return append(buf[:0], hdr[:]...)
}

// plainNameEnd returns the offset past the uncompressed name at off.
func plainNameEnd(msg []byte, off int) (int, bool) {
	start := off
	for off < len(msg) && off-start <= 255 {
		c := int(msg[off])
		if c == 0 {
			return off + 1, true
		}
		if c&0xC0 != 0 {
			return 0, false
		}
		off += 1 + c
	}
	return 0, false
}
