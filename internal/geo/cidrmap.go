package geo

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/gslb-dev/gslb/internal/config"
)

// cidrEntry is one compiled CIDR map: the network and the Location it
// gives (without Network, which depends on the address looked up).
type cidrEntry struct {
	prefix netip.Prefix
	loc    Location
}

// cidrTable holds the CIDR maps of a config, immutable after construction.
// Lookups scan it linearly: CIDR maps are hand-written lists of tens of
// networks, and one pass finds both the longest match and how far the
// answer extends around the address.
type cidrTable struct {
	entries []cidrEntry
}

// newCIDRTable compiles the CIDR maps. A map naming a region places the
// network at the region's coordinates; otherwise its country, continent,
// subdivision and coordinates are used (continent centroid as a stand-in
// when it has a continent but no coordinates).
func newCIDRTable(maps []config.CIDRMap, regions map[string]*config.Region) cidrTable {
	t := cidrTable{entries: make([]cidrEntry, 0, len(maps))}
	for _, m := range maps {
		p := normalizePrefix(m.CIDR.Prefix)
		if !p.IsValid() {
			continue
		}
		loc := Location{
			Country:     m.Country,
			Continent:   m.Continent,
			Subdivision: m.Subdivision,
			Source:      SourceCIDRMap,
		}
		if r := regions[m.Region]; m.Region != "" && r != nil {
			loc.Region = m.Region
			loc.Latitude, loc.Longitude, loc.HasCoordinates = r.Latitude, r.Longitude, true
		}
		if m.Latitude != nil && m.Longitude != nil {
			loc.Latitude, loc.Longitude, loc.HasCoordinates = *m.Latitude, *m.Longitude, true
		}
		if !loc.HasCoordinates {
			if lat, lon, ok := continentCentroid(loc.Continent); ok {
				loc.Latitude, loc.Longitude, loc.HasCoordinates, loc.Approximate = lat, lon, true, true
			}
		}
		t.entries = append(t.entries, cidrEntry{prefix: p, loc: loc})
	}
	return t
}

// normalizePrefix turns an IPv4-mapped IPv6 prefix into its IPv4 form so
// that it matches unmapped addresses.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.IsValid() && p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// lookup returns the longest-prefix entry containing addr (nil when none)
// and the number of leading bits of addr that decide that outcome: the
// answer is the same for every address sharing them. addr must be
// unmapped.
func (t *cidrTable) lookup(addr netip.Addr) (*cidrEntry, int) {
	var best *cidrEntry
	need := 0
	for i := range t.entries {
		e := &t.entries[i]
		if e.prefix.Addr().Is4() != addr.Is4() {
			continue
		}
		cpl := CommonPrefixLen(addr, e.prefix.Addr())
		if cpl >= e.prefix.Bits() {
			if best == nil || e.prefix.Bits() > best.prefix.Bits() {
				best = e
			}
			continue
		}
		// Addresses sharing cpl+1 bits with addr lie outside e, as addr does.
		need = max(need, cpl+1)
	}
	if best != nil {
		need = max(need, best.prefix.Bits())
	}
	return best, need
}

// CommonPrefixLen counts the leading bits a and b share; both must be of
// the same family.
func CommonPrefixLen(a, b netip.Addr) int {
	if a.Is4() {
		x, y := a.As4(), b.As4()
		return bits.LeadingZeros32(binary.BigEndian.Uint32(x[:]) ^ binary.BigEndian.Uint32(y[:]))
	}
	x, y := a.As16(), b.As16()
	hi := binary.BigEndian.Uint64(x[:8]) ^ binary.BigEndian.Uint64(y[:8])
	if hi != 0 {
		return bits.LeadingZeros64(hi)
	}
	return 64 + bits.LeadingZeros64(binary.BigEndian.Uint64(x[8:])^binary.BigEndian.Uint64(y[8:]))
}
