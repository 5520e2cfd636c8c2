package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// wireQuery is a query read by parseQuery straight from its bytes, without
// dns.Msg.Unpack: what the answer cache needs to find a packed answer.
// It refers into the request; it is valid only while the request is.
type wireQuery struct {
	flags   uint16
	nameEnd int // offset just past the question name (which starts at 12)
	qtype   uint16
	qclass  uint16
	hasOPT  bool
	do      bool
	udpSize uint16 // the OPT's UDP payload size (0 without OPT)
	ecs     []byte // the data of the ECS option, nil when there is none
}

// name returns the question name as sent, in wire format.
func (q *wireQuery) name(req []byte) []byte { return req[headerSize:q.nameEnd] }

// EDNS options the fast path accepts. dns.Msg.Unpack never fails on them,
// so the fast path and the full decoder agree on whether a query is
// well formed. Any other option sends the query down the full path.
const (
	optNSID    = 3
	optCookie  = 10
	optPadding = 12
)

// parseQuery reads the commonest shape of query: one question with an
// uncompressed name, no answer or authority records, and at most one
// additional record, an OPT of version 0 with known options, with no
// bytes after it. ok is false for anything else, which the full path
// (dns.Msg.Unpack) then handles; parseQuery accepts nothing that path
// would reject or treat differently. It never panics and never allocates.
func parseQuery(req []byte) (q wireQuery, ok bool) {
	if len(req) < headerSize {
		return q, false
	}
	q.flags = binary.BigEndian.Uint16(req[2:])
	if q.flags&flagQR != 0 || (q.flags>>11)&0xF != dns.OpcodeQuery {
		return q, false
	}
	if binary.BigEndian.Uint16(req[4:]) != 1 || binary.BigEndian.Uint16(req[6:]) != 0 ||
		binary.BigEndian.Uint16(req[8:]) != 0 {
		return q, false
	}
	ar := binary.BigEndian.Uint16(req[10:])
	if ar > 1 {
		return q, false
	}
	// No compression pointer (nothing precedes the name to point at) and
	// at most 255 bytes.
	off, ok := plainNameEnd(req, headerSize)
	if !ok || off+4 > len(req) {
		return q, false
	}
	q.nameEnd = off
	q.qtype = binary.BigEndian.Uint16(req[off:])
	q.qclass = binary.BigEndian.Uint16(req[off+2:])
	off += 4
	if ar == 0 {
		return q, off == len(req)
	}
	// The OPT record (RFC 6891 §6.1.2): root owner, type, UDP size, TTL
	// (extended rcode, version, flags), RDATA of options.
	if off+11 > len(req) || req[off] != 0 || binary.BigEndian.Uint16(req[off+1:]) != dns.TypeOPT {
		return q, false
	}
	q.hasOPT = true
	q.udpSize = binary.BigEndian.Uint16(req[off+3:])
	if req[off+6] != 0 { // version
		return q, false
	}
	q.do = req[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(req[off+9:]))
	off += 11
	if off+rdlen != len(req) {
		return q, false
	}
	for off < len(req) {
		if off+4 > len(req) {
			return q, false
		}
		code := binary.BigEndian.Uint16(req[off:])
		n := int(binary.BigEndian.Uint16(req[off+2:]))
		off += 4
		if off+n > len(req) {
			return q, false
		}
		switch code {
		case dns.EDNS0SUBNET:
			if q.ecs != nil || !validSubnet(req[off:off+n]) {
				return q, false
			}
			q.ecs = req[off : off+n : off+n]
		case optNSID, optCookie, optPadding:
		default:
			return q, false
		}
		off += n
	}
	return q, true
}

// validSubnet reports whether ParseClientSubnet accepts data (and then
// so does dns.Msg.Unpack), without allocating.
func validSubnet(data []byte) bool {
	if len(data) < 4 || data[3] != 0 {
		return false
	}
	src := int(data[2])
	switch binary.BigEndian.Uint16(data) {
	case ecsFamilyIPv4:
		if src > 32 {
			return false
		}
	case ecsFamilyIPv6:
		if src > 128 {
			return false
		}
	default:
		return false
	}
	addr := data[4:]
	if len(addr) != (src+7)/8 {
		return false
	}
	return src%8 == 0 || addr[len(addr)-1]&(0xff>>(src%8)) == 0
}

// appendLowerName appends name (wire format) with ASCII letters folded to
// lower case, as strings.ToLower folds the presentation form. Label
// length bytes (at most 63) are never letters.
func appendLowerName(dst, name []byte) []byte {
	n := len(dst)
	dst = append(dst, name...)
	for i, c := range dst[n:] {
		dst[n+i] = c + (boolByte(c-'A' < 26) << 5)
	}
	return dst
}

// boolByte is 1 for true, 0 for false (compiled without a branch).
func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// equalFoldASCII reports whether a and b are equal up to ASCII case.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
