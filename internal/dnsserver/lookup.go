package dnsserver

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/routing"
)

// maxCNAMEChain bounds how many CNAMEs one lookup follows inside a zone.
const maxCNAMEChain = 8

// Result is the outcome of one lookup: the sections of the answer and
// what the wire layer needs to know about it.
//
// The RRs in a Result may be shared with the zone data and with other
// Results: callers must not modify them.
type Result struct {
	// Rcode is dns.RcodeSuccess, dns.RcodeNameError or dns.RcodeRefused.
	Rcode int
	// Authoritative is the AA bit: false for referrals and refusals.
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
	// Zone is the apex of the zone that answered ("" when refused).
	Zone string
	// Routed is true when a routing decision shaped the answer.
	Routed bool
	// Scope is the widest ECS scope of those decisions (0 when not Routed).
	Scope int
}

func (r *Result) reset() {
	*r = Result{Answer: r.Answer[:0], Ns: r.Ns[:0], Extra: r.Extra[:0]}
}

// Lookup answers qname and qtype from the zone data for the given client.
// qname must be fully qualified; it is matched case-insensitively. The
// meta types (AXFR, IXFR, OPT...) are the caller's business; ANY gets a
// minimal answer (RFC 8482).
func (zs *Zones) Lookup(qname string, qtype uint16, client routing.Query) Result {
	var r Result
	zs.LookupInto(&r, qname, qtype, client)
	return r
}

// LookupInto is Lookup writing into r, reusing its slices.
func (zs *Zones) LookupInto(r *Result, qname string, qtype uint16, client routing.Query) {
	r.reset()
	name := strings.ToLower(qname)
	z := zs.find(name)
	if z == nil {
		r.Rcode = dns.RcodeRefused
		return
	}
	r.Zone = z.origin
	r.Authoritative = true
	for hops := 0; ; hops++ {
		next := zs.lookupName(r, z, name, qtype, client)
		if next == "" || hops >= maxCNAMEChain || zs.find(next) != z || cnameSeen(r.Answer, next) {
			// Out of zone, too long or a loop: the resolver takes it from here.
			return
		}
		name = next
	}
}

// lookupName answers one name of a (possibly CNAME-chained) lookup. It
// returns the lower-case CNAME target to follow, or "".
func (zs *Zones) lookupName(r *Result, z *Zone, name string, qtype uint16, client routing.Query) string {
	if z.hasCuts {
		// A DS query at the cut itself is answered by the parent (here).
		if cut := z.cut(name); cut != nil && !(qtype == dns.TypeDS && cut.name == name) {
			z.referral(r, cut)
			return ""
		}
	}
	n := z.nodes[name]
	wild := false
	if n == nil {
		// RFC 4592: the wildcard at the closest encloser, if any, answers.
		n = z.closestEncloser(name).wildcard
		if n == nil {
			r.Rcode = dns.RcodeNameError
			r.Ns = append(r.Ns, z.negSOA)
			return ""
		}
		wild = true
	}
	own := func(rr dns.RR) dns.RR {
		if !wild {
			return rr
		}
		rr = dns.Copy(rr)
		rr.Header().Name = name
		return rr
	}

	if cn := n.rrsets[dns.TypeCNAME]; len(cn) > 0 {
		r.Answer = append(r.Answer, own(cn[0]))
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			return ""
		}
		return strings.ToLower(cn[0].(*dns.CNAME).Target)
	}
	if n.service != "" && (qtype == dns.TypeA || qtype == dns.TypeAAAA) {
		if !zs.answerService(r, n.service, name, qtype, client) {
			r.Ns = append(r.Ns, z.negSOA)
		}
		return ""
	}
	if qtype == dns.TypeANY {
		// RFC 8482: one RRset is enough.
		if n.service != "" && (zs.answerService(r, n.service, name, dns.TypeA, client) ||
			zs.answerService(r, n.service, name, dns.TypeAAAA, client)) {
			return ""
		}
		if len(n.types) > 0 {
			qtype = n.types[0] // answered below as that type
		}
	}
	if set := n.rrsets[qtype]; len(set) > 0 {
		for _, rr := range set {
			r.Answer = append(r.Answer, own(rr))
		}
		z.additional(r, set)
		return ""
	}
	// NODATA: the name exists (perhaps as an empty non-terminal or a
	// service name asked for another type), the type does not.
	r.Ns = append(r.Ns, z.negSOA)
	return ""
}

// answerService appends the routed addresses of a GSLB service and reports
// whether there were any for qtype.
func (zs *Zones) answerService(r *Result, serviceID, owner string, qtype uint16, client routing.Query) bool {
	if zs.router == nil {
		return false
	}
	client.QType = qtype
	d := zs.router.Decide(serviceID, client)
	if !r.Routed || d.Scope > r.Scope {
		r.Scope = d.Scope
	}
	r.Routed = true
	addrs := d.Addrs(qtype)
	for _, a := range addrs {
		r.Answer = append(r.Answer, addrRR(owner, d.TTL, a))
	}
	return len(addrs) > 0
}

// addrRR returns an A or AAAA record for a.
func addrRR(owner string, ttl uint32, a netip.Addr) dns.RR {
	if a.Is4() {
		b := a.As4()
		return &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: b[:]}
	}
	b := a.As16()
	return &dns.AAAA{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: b[:]}
}

// cut returns the topmost delegation point at or above name (below the
// apex), or nil.
func (z *Zone) cut(name string) *node {
	var cut *node
	for p := name; p != z.origin && p != ""; p = parent(p) {
		if n := z.nodes[p]; n != nil && len(n.rrsets[dns.TypeNS]) > 0 {
			cut = n
		}
	}
	return cut
}

// closestEncloser returns the deepest existing ancestor of name.
func (z *Zone) closestEncloser(name string) *node {
	for p := parent(name); p != "" && p != z.origin; p = parent(p) {
		if n := z.nodes[p]; n != nil {
			return n
		}
	}
	return z.apex
}

// referral answers with the delegation at cut: its NS RRset in the
// authority section, glue in the additional section, AA off unless an
// authoritative CNAME came first.
func (z *Zone) referral(r *Result, cut *node) {
	if len(r.Answer) == 0 {
		r.Authoritative = false
	}
	set := cut.rrsets[dns.TypeNS]
	r.Ns = append(r.Ns, set...)
	for _, rr := range set {
		z.addAddresses(r, rr.(*dns.NS).Ns, true)
	}
}

// additional adds A and AAAA records of the in-zone targets of MX, SRV
// and NS records to the additional section.
func (z *Zone) additional(r *Result, set []dns.RR) {
	for _, rr := range set {
		switch v := rr.(type) {
		case *dns.MX:
			z.addAddresses(r, v.Mx, false)
		case *dns.SRV:
			z.addAddresses(r, v.Target, false)
		case *dns.NS:
			// Glue for the apex NS; below a cut it is needed (glue=true).
			z.addAddresses(r, v.Ns, true)
		}
	}
}

// addAddresses adds the static A and AAAA records of target, when it is in
// the zone. Occluded names (below a cut) are added only as glue.
func (z *Zone) addAddresses(r *Result, target string, glue bool) {
	target = strings.ToLower(target)
	if !dns.IsSubDomain(z.origin, target) {
		return
	}
	n := z.nodes[target]
	if n == nil {
		return
	}
	if !glue && z.hasCuts && z.cut(target) != nil {
		return
	}
	for _, t := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range n.rrsets[t] {
			if !containsRR(r.Extra, rr) && !containsRR(r.Answer, rr) {
				r.Extra = append(r.Extra, rr)
			}
		}
	}
}

func containsRR(set []dns.RR, rr dns.RR) bool {
	for _, x := range set {
		if x == rr {
			return true
		}
	}
	return false
}

// cnameSeen reports whether the answer already holds a CNAME owned by name.
func cnameSeen(answer []dns.RR, name string) bool {
	for _, rr := range answer {
		if h := rr.Header(); h.Rrtype == dns.TypeCNAME && strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}
