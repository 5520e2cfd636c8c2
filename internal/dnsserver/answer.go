package dnsserver

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/routing"
)

// capture receives, from the full path, an answer that may be cached.
type capture struct {
	ok     bool
	resp   []byte // a copy of the packed answer, without the ECS option
	zone   string
	rcode  int
	routed bool
	scope  int
}

// take records a copy of packed (the answer before any ECS option is
// appended) when its rcode is one the zone data gave.
func (c *capture) take(packed []byte, res *Result) {
	switch res.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused:
	default:
		return
	}
	c.ok = true
	c.resp = bytes.Clone(packed)
	c.zone, c.rcode, c.routed, c.scope = res.Zone, res.Rcode, res.Routed, res.Scope
}

// ednsShape is the part of a cache key that the EDNS of a query decides.
func ednsShape(q *wireQuery) byte {
	switch {
	case !q.hasOPT:
		return 0
	case q.do:
		return 3
	}
	return 1
}

// respondCached answers q from the cache, or through the full path,
// caching what it answered.
func (h *Handler) respondCached(buf, req []byte, q *wireQuery, src netip.AddrPort, tr Transport) ([]byte, Outcome, *entry) {
	c := h.cache
	srcAddr := src.Addr().Unmap()
	client := routing.Query{Client: srcAddr, SourcePrefix: srcAddr.BitLen()}
	var ecs ClientSubnet
	hasECS := false
	if q.ecs != nil && h.ecsEnabled && h.trustedSource(srcAddr) {
		cs, err := ParseClientSubnet(q.ecs)
		if err != nil { // parseQuery lets none through (validSubnet): a guard
			resp, out := h.respond(buf, req, src, tr, nil)
			return resp, out, nil
		}
		ecs, hasECS, client = cs, true, ecsClient(cs)
	}

	var kb [maxKeyLen]byte
	key := appendLowerName(kb[:0], q.name(req))
	key = binary.BigEndian.AppendUint16(key, q.qtype)
	key = binary.BigEndian.AppendUint16(key, q.qclass)
	key = append(key, ednsShape(q))
	base := len(key)
	key = append(key, keyPlain)
	plainHash := c.hash(key)

	e := c.get(plainHash, key)
	if e != nil && e.marker {
		e = h.routedEntry(e, key[:base], routing.NormalizeClient(client), h.snapshotVersion())
	}
	if e != nil {
		if resp, out, ok := h.serveEntry(buf, req, q, e, hasECS, &ecs, tr); ok {
			return resp, out, e
		}
		resp, out := h.respond(buf, req, src, tr, nil) // too large for the client
		return resp, out, nil
	}

	version := h.snapshotVersion() // before deciding: an older version only expires sooner
	var capt capture
	resp, out := h.respond(buf, req, src, tr, &capt)
	if capt.ok {
		h.store(&capt, key[:base], plainHash, routing.NormalizeClient(client), version)
	}
	return resp, out, nil
}

// snapshotVersion returns the router's current snapshot version (0 when
// it has none: routed answers are then not cached).
func (h *Handler) snapshotVersion() uint64 {
	if h.versions == nil {
		return 0
	}
	return h.versions.SnapshotVersion()
}

// routedEntry returns the routed answer for client, trying the client's
// network at each scope the marker m has seen, or nil.
func (h *Handler) routedEntry(m *entry, key []byte, client netip.Addr, version uint64) *entry {
	if h.versions == nil {
		return nil
	}
	c := h.cache
	now := h.nanos()
	usable := func(e *entry) bool {
		return e != nil && e.routed && e.version == version && now < e.expires
	}
	if !client.IsValid() {
		k := append(key, keyUnknown)
		return nilUnless(c.get(c.hash(k), k), usable)
	}
	if client.Is4() {
		set := m.scopes4.Load()
		for set != 0 {
			scope := 63 - bits.LeadingZeros64(set)
			set &^= 1 << scope
			k := appendRouteKey(key, client, scope)
			if e := c.get(c.hash(k), k); usable(e) {
				return e
			}
		}
		return nil
	}
	for w := len(m.scopes6) - 1; w >= 0; w-- {
		set := m.scopes6[w].Load()
		for set != 0 {
			bit := 63 - bits.LeadingZeros64(set)
			set &^= 1 << bit
			k := appendRouteKey(key, client, w*64+bit)
			if e := c.get(c.hash(k), k); usable(e) {
				return e
			}
		}
	}
	return nil
}

func nilUnless(e *entry, ok func(*entry) bool) *entry {
	if ok(e) {
		return e
	}
	return nil
}

// appendRouteKey appends to key the client's network at scope bits.
// client is valid and scope within its length.
func appendRouteKey(key []byte, client netip.Addr, scope int) []byte {
	p, _ := client.Prefix(scope)
	if client.Is4() {
		a := p.Addr().As4()
		return append(append(key, keyV4, byte(scope)), a[:]...)
	}
	a := p.Addr().As16()
	return append(append(key, keyV6, byte(scope)), a[:]...)
}

// store caches a captured answer under key (the plain key without its
// kind byte; plainHash is the hash of the plain key).
func (h *Handler) store(capt *capture, key []byte, plainHash uint64, client netip.Addr, version uint64) {
	c := h.cache
	resp := capt.resp
	binary.BigEndian.PutUint16(resp[0:], 0)
	binary.BigEndian.PutUint16(resp[2:], binary.BigEndian.Uint16(resp[2:])&^(flagRD|flagCD))
	copy(resp[headerSize:], key[:len(key)-5]) // the lower-case name
	e := &entry{resp: resp, zone: capt.zone, rcode: capt.rcode}
	if !capt.routed {
		k := append(key, keyPlain)
		e.key, e.hash = bytes.Clone(k), plainHash
		c.put(e)
		return
	}
	if h.versions == nil {
		return
	}
	var k []byte
	switch {
	case !client.IsValid():
		k = append(key, keyUnknown)
	case capt.scope < 0 || capt.scope > client.BitLen():
		return
	default:
		k = appendRouteKey(key, client, capt.scope)
	}
	e.key = bytes.Clone(k)
	e.hash = c.hash(e.key)
	e.routed, e.scope, e.version = true, capt.scope, version
	e.expires = h.nanos() + routedMaxAge
	c.put(e)
	m := c.marker(plainHash, append(key, keyPlain))
	if client.IsValid() {
		kind := byte(keyV6)
		if client.Is4() {
			kind = keyV4
		}
		m.addScope(kind, capt.scope)
	}
}

// serveEntry builds the response to q from e into buf: the cached bytes
// with the query's ID, RD and CD bits, question spelling and ECS option.
// ok is false when the answer does not fit the client's limit.
func (h *Handler) serveEntry(buf, req []byte, q *wireQuery, e *entry, hasECS bool, ecs *ClientSubnet, tr Transport) ([]byte, Outcome, bool) {
	size := len(e.resp)
	if hasECS {
		size += 4 + len(q.ecs)
	}
	if size > h.sizeLimit(tr, q.hasOPT, q.udpSize, len(req)) {
		return nil, Outcome{}, false
	}
	out := append(buf[:0], e.resp...)
	copy(out[0:2], req[0:2])
	binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])|q.flags&(flagRD|flagCD))
	copy(out[headerSize:], q.name(req))
	if hasECS {
		out = appendECS(out, q.ecs, h.ecsScope(*ecs, e.routed, e.scope))
	}
	return out, Outcome{Zone: e.zone, Qtype: q.qtype, Rcode: e.rcode}, true
}

// appendECS appends to packed, whose last record is an OPT record without
// options, the ECS option of a response: the query's option data (RFC
// 7871 §7.2.1: family, source prefix and address as received) with the
// given SCOPE PREFIX-LENGTH.
func appendECS(packed, data []byte, scope int) []byte {
	rdlen := len(packed) - 2
	packed = binary.BigEndian.AppendUint16(packed, dns.EDNS0SUBNET)
	packed = binary.BigEndian.AppendUint16(packed, uint16(len(data)))
	start := len(packed)
	packed = append(packed, data...)
	packed[start+3] = byte(scope)
	binary.BigEndian.PutUint16(packed[rdlen:], uint16(4+len(data)))
	return packed
}
