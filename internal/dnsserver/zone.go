package dnsserver

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/routing"
)

// Router makes routing decisions for GSLB service names.
// *routing.Engine implements it.
type Router interface {
	Decide(serviceID string, q routing.Query) routing.Decision
}

var _ Router = (*routing.Engine)(nil)

// node is one owner name of a zone: its RRsets, the GSLB service answered
// there, and its wildcard child. A node without RRsets and service is an
// empty non-terminal.
type node struct {
	name    string
	rrsets  map[uint16][]dns.RR
	types   []uint16 // the keys of rrsets, sorted
	service string   // GSLB service ID ("" for none)
	// wildcard is the node "*.<name>", if the zone has one.
	wildcard *node
}

// Zone is the immutable data of one authoritative zone.
type Zone struct {
	origin string
	negSOA *dns.SOA // the SOA for negative answers: TTL min(SOA TTL, minimum) (RFC 2308)
	apex   *node
	nodes  map[string]*node
	// hasCuts is true when the zone delegates some name below its apex.
	hasCuts bool
}

// Zones is the immutable data of every configured zone together with the
// router that answers their GSLB service names. A reload builds a new one.
type Zones struct {
	zones  map[string]*Zone
	router Router
}

// NewZones builds the data of every zone of cfg. router answers GSLB
// service names; it may be nil only for checking a config, in which case
// service names answer NODATA.
func NewZones(cfg *config.Config, router Router) (*Zones, error) {
	zs := &Zones{zones: make(map[string]*Zone, len(cfg.Zones)), router: router}
	for _, zc := range cfg.Zones {
		if zc == nil {
			continue
		}
		z, err := buildZone(cfg, zc)
		if err != nil {
			return nil, fmt.Errorf("build zone %s: %w", zc.Name, err)
		}
		zs.zones[z.origin] = z
	}
	return zs, nil
}

// find returns the zone that is authoritative for qname (the longest
// matching apex), or nil. qname must be lower case and fully qualified.
func (zs *Zones) find(qname string) *Zone {
	for off := 0; ; {
		if z, ok := zs.zones[qname[off:]]; ok {
			return z
		}
		next, end := dns.NextLabel(qname, off)
		if end {
			return nil
		}
		off = next
	}
}

func buildZone(cfg *config.Config, zc *config.Zone) (*Zone, error) {
	origin := strings.ToLower(dns.Fqdn(zc.Name))
	z := &Zone{origin: origin, nodes: map[string]*node{}}
	z.apex = z.node(origin)

	s := zc.SOA
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.TTL},
		Ns:      dns.Fqdn(s.MName),
		Mbox:    dns.Fqdn(s.RName),
		Serial:  s.Serial,
		Refresh: s.Refresh,
		Retry:   s.Retry,
		Expire:  s.Expire,
		Minttl:  s.Minimum,
	}
	z.negSOA = dns.Copy(soa).(*dns.SOA)
	z.negSOA.Hdr.Ttl = min(s.TTL, s.Minimum)
	z.apex.add(soa)
	for _, ns := range zc.NS {
		z.apex.add(&dns.NS{
			Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: zc.TTL},
			Ns:  strings.ToLower(dns.Fqdn(ns)),
		})
	}
	for i, text := range zc.Records {
		rr, err := config.ParseRecord(text, zc)
		if err != nil {
			return nil, fmt.Errorf("records[%d]: %w", i, err)
		}
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		if !dns.IsSubDomain(origin, h.Name) {
			return nil, fmt.Errorf("records[%d]: %s is outside the zone", i, h.Name)
		}
		if h.Rrtype == dns.TypeSOA {
			return nil, fmt.Errorf("records[%d]: SOA must come from the zone's soa settings", i)
		}
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("records[%d]: class %s is not served", i, dns.ClassToString[h.Class])
		}
		z.node(h.Name).add(rr)
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		svc := cfg.Services[id]
		if svc == nil || svc.Name == "" {
			continue
		}
		name := strings.ToLower(dns.Fqdn(svc.Name))
		if owner := cfg.ZoneFor(name); owner == nil || strings.ToLower(dns.Fqdn(owner.Name)) != origin {
			continue
		}
		n := z.node(name)
		if n.service != "" {
			return nil, fmt.Errorf("services %s and %s share the name %s", n.service, id, name)
		}
		n.service = id
	}
	return z, z.finish()
}

// node returns the node for name, creating it if needed.
func (z *Zone) node(name string) *node {
	n := z.nodes[name]
	if n == nil {
		n = &node{name: name, rrsets: map[uint16][]dns.RR{}}
		z.nodes[name] = n
	}
	return n
}

// add adds rr to its RRset unless an identical record is there already.
func (n *node) add(rr dns.RR) {
	t := rr.Header().Rrtype
	for _, old := range n.rrsets[t] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	n.rrsets[t] = append(n.rrsets[t], rr)
}

// finish checks the zone's consistency and derives what lookups need:
// empty non-terminals, wildcard links, sorted types, one TTL per RRset.
func (z *Zone) finish() error {
	// The names are taken before the loop: it adds empty non-terminals.
	for _, name := range slices.Sorted(maps.Keys(z.nodes)) {
		n := z.nodes[name]
		if _, ok := n.rrsets[dns.TypeCNAME]; ok {
			if len(n.rrsets) > 1 || n.service != "" {
				return fmt.Errorf("%s has a CNAME and other data", name)
			}
			if len(n.rrsets[dns.TypeCNAME]) > 1 {
				return fmt.Errorf("%s has more than one CNAME", name)
			}
		}
		if n != z.apex && len(n.rrsets[dns.TypeNS]) > 0 {
			z.hasCuts = true
			if n.service != "" {
				return fmt.Errorf("%s is both delegated and a GSLB service", name)
			}
		}
		for t, set := range n.rrsets {
			n.types = append(n.types, t)
			// RFC 2181 §5.2: the records of an RRset share one TTL.
			ttl := set[0].Header().Ttl
			for _, rr := range set[1:] {
				ttl = min(ttl, rr.Header().Ttl)
			}
			for _, rr := range set {
				rr.Header().Ttl = ttl
			}
		}
		slices.Sort(n.types)
		// Empty non-terminals: every name between this one and the apex exists.
		for p := parent(name); p != "" && p != z.origin && dns.IsSubDomain(z.origin, p); p = parent(p) {
			if _, ok := z.nodes[p]; ok {
				break
			}
			z.node(p)
		}
	}
	for name, n := range z.nodes {
		if strings.HasPrefix(name, "*.") {
			if p := z.nodes[name[2:]]; p != nil {
				p.wildcard = n
			}
		}
	}
	return nil
}

// parent returns name without its first label ("" for the root).
func parent(name string) string {
	next, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[next:]
}
