package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/routing"
)

// ECS address families (RFC 7871 §6, IANA Address Family Numbers).
const (
	ecsFamilyIPv4 = 1
	ecsFamilyIPv6 = 2
)

// ClientSubnet is a validated EDNS Client Subnet option of a query.
type ClientSubnet struct {
	// Family is 1 (IPv4) or 2 (IPv6).
	Family uint16
	// SourcePrefix is the SOURCE PREFIX-LENGTH.
	SourcePrefix uint8
	// Addr is the ADDRESS, padded to the family's length (bits beyond
	// SourcePrefix are zero).
	Addr netip.Addr
}

// Prefix returns the client network the option describes.
func (c ClientSubnet) Prefix() netip.Prefix { return netip.PrefixFrom(c.Addr, int(c.SourcePrefix)) }

// errECS is wrapped by every ECS validation error.
var errECS = errors.New("malformed client subnet option")

// ParseClientSubnet validates the data of an ECS option taken from a
// query, as RFC 7871 §6 and §7.1.2 require: a known family, a source
// prefix no longer than the family's address, exactly ceil(prefix/8)
// address bytes, no bits set beyond the prefix, and a zero scope.
func ParseClientSubnet(data []byte) (ClientSubnet, error) {
	if len(data) < 4 {
		return ClientSubnet{}, fmt.Errorf("%w: %d bytes", errECS, len(data))
	}
	c := ClientSubnet{Family: binary.BigEndian.Uint16(data), SourcePrefix: data[2]}
	scope, addr := data[3], data[4:]
	var bits int
	switch c.Family {
	case ecsFamilyIPv4:
		bits = 32
	case ecsFamilyIPv6:
		bits = 128
	default:
		return ClientSubnet{}, fmt.Errorf("%w: family %d", errECS, c.Family)
	}
	if int(c.SourcePrefix) > bits {
		return ClientSubnet{}, fmt.Errorf("%w: source prefix %d longer than %d bits", errECS, c.SourcePrefix, bits)
	}
	if scope != 0 {
		return ClientSubnet{}, fmt.Errorf("%w: scope %d in a query", errECS, scope)
	}
	if want := (int(c.SourcePrefix) + 7) / 8; len(addr) != want {
		return ClientSubnet{}, fmt.Errorf("%w: %d address bytes for a /%d", errECS, len(addr), c.SourcePrefix)
	}
	if rem := c.SourcePrefix % 8; rem != 0 && addr[len(addr)-1]&(0xff>>rem) != 0 {
		return ClientSubnet{}, fmt.Errorf("%w: address bits set beyond /%d", errECS, c.SourcePrefix)
	}
	var buf [16]byte
	copy(buf[:], addr)
	if c.Family == ecsFamilyIPv4 {
		c.Addr = netip.AddrFrom4([4]byte(buf[:4]))
	} else {
		c.Addr = netip.AddrFrom16(buf)
	}
	return c, nil
}

// responseOption returns the ECS option echoed in a response with the
// given SCOPE PREFIX-LENGTH.
func (c ClientSubnet) responseOption(scope int) *dns.EDNS0_SUBNET {
	return &dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        c.Family,
		SourceNetmask: c.SourcePrefix,
		SourceScope:   uint8(scope),
		Address:       net.IP(c.Addr.AsSlice()),
	}
}

// hasSubnetOption reports whether opt carries an ECS option.
func hasSubnetOption(opt *dns.OPT) bool {
	for _, o := range opt.Option {
		if o.Option() == dns.EDNS0SUBNET {
			return true
		}
	}
	return false
}

// findSubnetOption returns the raw data of the ECS option in the OPT
// record of msg. found is false when there is none; err is set when the
// message cannot be walked or holds more than one OPT or ECS option.
// The raw bytes are needed because a decoded option no longer tells how
// many address bytes were sent.
func findSubnetOption(msg []byte) (data []byte, found bool, err error) {
	rdata, ok, err := findOPT(msg)
	if err != nil || !ok {
		return nil, false, err
	}
	for off := 0; off < len(rdata); {
		if off+4 > len(rdata) {
			return nil, false, fmt.Errorf("%w: truncated option header", errECS)
		}
		code := binary.BigEndian.Uint16(rdata[off:])
		n := int(binary.BigEndian.Uint16(rdata[off+2:]))
		off += 4
		if off+n > len(rdata) {
			return nil, false, fmt.Errorf("%w: option overruns the OPT record", errECS)
		}
		if code == dns.EDNS0SUBNET {
			if found {
				return nil, false, fmt.Errorf("%w: more than one", errECS)
			}
			data, found = rdata[off:off+n], true
		}
		off += n
	}
	return data, found, nil
}

// findOPT returns the RDATA of the OPT record of msg.
func findOPT(msg []byte) (rdata []byte, found bool, err error) {
	if len(msg) < 12 {
		return nil, false, errShortMessage
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	for range qd {
		if off, err = skipName(msg, off); err != nil {
			return nil, false, err
		}
		if off += 4; off > len(msg) {
			return nil, false, errShortMessage
		}
	}
	for i := range rrs + ar {
		if off, err = skipName(msg, off); err != nil {
			return nil, false, err
		}
		if off+10 > len(msg) {
			return nil, false, errShortMessage
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		n := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+n > len(msg) {
			return nil, false, errShortMessage
		}
		if i >= rrs && typ == dns.TypeOPT {
			if found {
				return nil, false, errors.New("more than one OPT record")
			}
			rdata, found = msg[off:off+n], true
		}
		off += n
	}
	return rdata, found, nil
}

var (
	errShortMessage = errors.New("message too short")
	errBadName      = errors.New("bad name")
)

// skipName returns the offset just past the (possibly compressed) name at
// off. It follows no pointers, so it cannot loop.
func skipName(msg []byte, off int) (int, error) {
	for off < len(msg) {
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errShortMessage
			}
			return off + 2, nil
		default:
			return 0, errBadName
		}
	}
	return 0, errShortMessage
}

// ecsClient is the routing query for a client that sent ECS option cs.
func ecsClient(cs ClientSubnet) routing.Query {
	if cs.SourcePrefix == 0 {
		// RFC 7871 §7.1.2: the client asked that no address be used, not
		// even the resolver's own.
		return routing.Query{}
	}
	return routing.Query{Client: cs.Addr, SourcePrefix: int(cs.SourcePrefix)}
}

// ecsScope is the scope prefix length of the answer to ECS option cs: the
// routing decision's scope, capped by the configured maximum, for a routed
// answer to a query that gave an address; 0 otherwise.
func (h *Handler) ecsScope(cs ClientSubnet, routed bool, scope int) int {
	if !routed || cs.SourcePrefix == 0 {
		return 0
	}
	return max(min(scope, h.maxScope(cs.Family)), 0)
}
