package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"strings"
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
	maxAmp     int // answers over UDP at most maxAmp × the query's size (0: no cap)
	ecsEnabled bool
	trusted    []netip.Prefix
	maxScopeV4 int
	maxScopeV6 int
	limits     tcpLimits
	scratch    sync.Pool

	// cache holds packed answers (nil when dns.cache_size is 0).
	cache *answerCache
	// versions reports the health snapshot version routing decisions
	// are made from; routed answers are cached only when it is known.
	versions SnapshotVersioner
	// nanos is the clock of routed entries' ages (Unix nanoseconds);
	// a Server sets its coarse clock.
	nanos func() int64
}

// SnapshotVersioner is implemented by a Router whose decisions depend
// only on the query's client and type, its config and a versioned health
// snapshot (*routing.Engine does). Routed answers are cached only for
// such a Router, and only while SnapshotVersion returns the version they
// were decided from.
type SnapshotVersioner interface {
	SnapshotVersion() uint64
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
		maxAmp:     d.MaxUDPAmplification,
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
	h.cache = newAnswerCache(d.CacheSize)
	h.versions, _ = router.(SnapshotVersioner)
	h.nanos = wallNanos
	for _, p := range d.ECS.TrustedResolvers {
		h.trusted = append(h.trusted, p.Prefix)
	}
	h.scratch.New = func() any { return new(scratch) }
	return h, nil
}

// Respond handles the request message req that arrived from src over tr.
// It returns the response packed into buf's storage when it fits (buf may
// be nil), or nil when no response must be sent (a runt or a response
// message). It never panics on any input.
//
// A query of the common shape (see parseQuery) is answered from the
// answer cache when it holds the answer, without allocating; the cache
// returns exactly the bytes the full path would.
func (h *Handler) Respond(buf, req []byte, src netip.AddrPort, tr Transport) ([]byte, Outcome) {
	resp, out, _ := h.respondEntry(buf, req, src, tr)
	return resp, out
}

// respondEntry is Respond also returning the cache entry that answered
// (nil when the full path did), whose counter slot saves the Server a
// metrics lookup.
func (h *Handler) respondEntry(buf, req []byte, src netip.AddrPort, tr Transport) ([]byte, Outcome, *entry) {
	if h.cache != nil {
		if q, ok := parseQuery(req); ok {
			return h.respondCached(buf, req, &q, src, tr)
		}
	}
	resp, out := h.respond(buf, req, src, tr, nil)
	return resp, out, nil
}

// respond is the full path: it decodes req with dns.Msg.Unpack, looks the
// answer up and packs it. When capt is not nil and the answer may be
// cached, it fills capt.
func (h *Handler) respond(buf, req []byte, src netip.AddrPort, tr Transport, capt *capture) ([]byte, Outcome) {
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
			return h.finish(buf, resp, respOpt, dns.RcodeBadVers, &out)
		}
	}

	switch q.Qclass {
	case dns.ClassINET, dns.ClassANY:
	default:
		return h.finish(buf, resp, respOpt, dns.RcodeRefused, &out)
	}
	switch q.Qtype {
	case dns.TypeOPT:
		return h.finish(buf, resp, respOpt, dns.RcodeFormatError, &out)
	case dns.TypeAXFR, dns.TypeIXFR:
		// Zone transfers are not offered.
		return h.finish(buf, resp, respOpt, dns.RcodeRefused, &out)
	case dns.TypeMAILA, dns.TypeMAILB, dns.TypeTKEY, dns.TypeTSIG:
		return h.finish(buf, resp, respOpt, dns.RcodeNotImplemented, &out)
	}

	// The client the answer is for: the ECS subnet (RFC 7871) or the source.
	srcAddr := src.Addr().Unmap()
	client := routing.Query{Client: srcAddr, SourcePrefix: srcAddr.BitLen()}
	var ecs *ClientSubnet
	var ecsData []byte
	if opt != nil && h.ecsEnabled && hasSubnetOption(opt) && h.trustedSource(srcAddr) {
		data, found, err := findSubnetOption(req)
		if err != nil {
			return h.finish(buf, resp, respOpt, dns.RcodeFormatError, &out)
		}
		if found {
			cs, err := ParseClientSubnet(data)
			if err != nil {
				return h.finish(buf, resp, respOpt, dns.RcodeFormatError, &out)
			}
			ecs, ecsData, client = &cs, data, ecsClient(cs)
		}
	}

	res := &s.res
	h.zones.LookupInto(res, q.Name, q.Qtype, client)
	out.Zone = res.Zone
	resp.Authoritative = res.Authoritative
	resp.Answer = append(resp.Answer, res.Answer...)
	resp.Ns = append(resp.Ns, res.Ns...)
	resp.Extra = append(resp.Extra, res.Extra...)
	ecsScope := 0
	if ecs != nil {
		ecsScope = h.ecsScope(*ecs, res.Routed, res.Scope)
	}
	return h.finishAnswer(buf, req, resp, respOpt, res, ecs, ecsData, ecsScope, tr, opt, &out, capt)
}

// finishAnswer completes an answer from the zone data: it packs resp with
// the question name in lower case and then puts the client's spelling
// back (so that the bytes do not depend on the case the client chose:
// names compressed against the question take its case, as in Knot),
// appends the ECS option, and truncates to the client's limit. An answer
// that is not truncated is offered to capt for the cache.
func (h *Handler) finishAnswer(buf, req []byte, resp *dns.Msg, respOpt *dns.OPT, res *Result, ecs *ClientSubnet, ecsData []byte, ecsScope int, tr Transport, opt *dns.OPT, out *Outcome, capt *capture) ([]byte, Outcome) {
	rcode := res.Rcode // REFUSED comes with empty sections and AA clear
	resp.Rcode = rcode
	if respOpt != nil {
		resp.Extra = append(resp.Extra, respOpt)
	}
	out.Rcode = rcode
	var wireName []byte
	if end, ok := plainNameEnd(req, headerSize); ok {
		wireName = req[headerSize:end]
	}
	packed, caseOK := packQuestionFolded(buf, resp, wireName)
	if packed == nil {
		out.Rcode = dns.RcodeServerFailure
		return headerReplyFor(buf, resp, dns.RcodeServerFailure), *out
	}
	udpSize := uint16(0)
	if opt != nil {
		udpSize = opt.UDPSize()
	}
	limit := h.sizeLimit(tr, opt != nil, udpSize, len(req))
	ecsLen := 0
	if ecs != nil {
		ecsLen = 4 + len(ecsData)
	}
	if len(packed)+ecsLen <= limit {
		if capt != nil && caseOK && len(packed) <= maxCachedResponse {
			capt.take(packed, res)
		}
		if ecs != nil {
			packed = appendECS(packed, ecsData, ecsScope)
		}
		return packed, *out
	}
	if ecs != nil {
		respOpt.Option = append(respOpt.Option, ecs.responseOption(ecsScope))
	}
	truncate(resp, respOpt, limit, tr)
	if packed, _ = packQuestionFolded(buf, resp, wireName); packed == nil {
		out.Rcode = dns.RcodeServerFailure
		return headerReplyFor(buf, resp, dns.RcodeServerFailure), *out
	}
	return packed, *out
}

// packQuestionFolded packs resp into buf with its question name in lower
// case, then copies the name as the client sent it (wireName, uncompressed
// wire format) over the packed question. When wireName is nil or does not
// match, resp is packed as it is and folded is false. It returns nil when
// resp cannot be packed.
func packQuestionFolded(buf []byte, resp *dns.Msg, wireName []byte) (packed []byte, folded bool) {
	name := resp.Question[0].Name
	if wireName != nil {
		resp.Question[0].Name = strings.ToLower(name)
		p, err := resp.PackBuffer(buf[:cap(buf)])
		resp.Question[0].Name = name
		if err == nil && len(p) >= headerSize+len(wireName) && equalFoldASCII(p[headerSize:headerSize+len(wireName)], wireName) {
			copy(p[headerSize:], wireName)
			return p, true
		}
	}
	p, err := resp.PackBuffer(buf[:cap(buf)])
	if err != nil {
		return nil, false
	}
	return p, false
}

// sizeLimit is the largest response a client may get over tr: over UDP
// its advertised size (512 without EDNS), capped by dns.udp_size and, for
// a query of reqLen bytes (0: not capped), by dns.max_udp_amplification
// times reqLen, so a spoofed query cannot draw a large answer at a victim.
func (h *Handler) sizeLimit(tr Transport, hasOPT bool, udpSize uint16, reqLen int) int {
	if tr != UDP {
		return dns.MaxMsgSize // what the length prefix can carry
	}
	limit := dns.MinMsgSize
	if hasOPT {
		limit = max(int(udpSize), dns.MinMsgSize)
	}
	limit = min(limit, int(h.udpSize))
	if h.maxAmp > 0 && reqLen > 0 {
		limit = min(limit, h.maxAmp*reqLen)
	}
	return limit
}

// finish answers with an error rcode, before any record was added: the
// header, the question and the OPT. At most 12 + 255 + 4 + 11 bytes, it
// fits every client's limit (512 at least), so it is never truncated.
func (h *Handler) finish(buf []byte, resp *dns.Msg, respOpt *dns.OPT, rcode int, out *Outcome) ([]byte, Outcome) {
	resp.Rcode = rcode
	if respOpt != nil {
		resp.Extra = append(resp.Extra, respOpt)
	}
	out.Rcode = rcode
	packed, err := resp.PackBuffer(buf[:cap(buf)])
	if err != nil {
		out.Rcode = dns.RcodeServerFailure
		return headerReplyFor(buf, resp, dns.RcodeServerFailure), *out
	}
	return packed, *out
}

// truncate shrinks resp, whose packed form exceeds limit, to fit: records
// are dropped (dns.Msg.Truncate), and over UDP a truncated answer is sent
// empty with TC=1, since a resolver retries it over TCP and ignores what it
// got (RFC 2181 §9). A UDP limit below 512 bytes (the amplification cap)
// always gives the empty TC=1 answer: dns.Msg.Truncate never goes below 512.
func truncate(resp *dns.Msg, respOpt *dns.OPT, limit int, tr Transport) {
	resp.Truncate(limit)
	if tr == UDP && (resp.Truncated || limit < dns.MinMsgSize) {
		resp.Truncated = true
		resp.Answer, resp.Ns, resp.Extra = resp.Answer[:0], resp.Ns[:0], resp.Extra[:0]
		if respOpt != nil {
			resp.Extra = append(resp.Extra, respOpt)
		}
	}
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

// plainNameEnd returns the offset past the uncompressed name at off,
// which must be at most 255 octets long on the wire (RFC 1035 section
// 2.3.4), root label included.
func plainNameEnd(msg []byte, off int) (int, bool) {
	start := off
	for off < len(msg) && off-start <= 255 {
		c := int(msg[off])
		if c == 0 {
			if off+1-start > 255 {
				return 0, false
			}
			return off + 1, true
		}
		if c&0xC0 != 0 {
			return 0, false
		}
		off += 1 + c
	}
	return 0, false
}
