package routing

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/gslb-dev/gslb/internal/geo"
)

// maxStackRegions sizes the on-stack buffers of the hot path; services
// with more regions allocate.
const maxStackRegions = 16

// geoPlan is the region order the geo policy tries and what it depended on.
type geoPlan struct {
	// ruleLen leading entries of order come from the matched geo_map rule.
	ruleLen   int
	rule      int // index of the matched rule, -1 when none
	ruleScope int // bits the cidr rules tried depended on
	// ruleUsedLoc is true when a country/continent rule was evaluated.
	ruleUsedLoc bool
	// restReason names what ordered order[ruleLen:].
	restReason string
}

// matches reports whether a country/continent rule matches loc.
func (r *compiledRule) matches(loc geo.Location) bool {
	switch {
	case r.continent != "":
		return strings.EqualFold(loc.Continent, r.continent)
	case r.country != "":
		if !strings.EqualFold(loc.Country, r.country) {
			return false
		}
		return r.subdivision == "" || strings.EqualFold(loc.Subdivision, r.subdivision)
	}
	return false
}

// geoOrder orders regions for the geo policy: the first matching geo_map
// rule's regions, then the service's regions — the CIDR-map region first,
// the rest by biased distance from the client, or in configured order when
// the client has no coordinates.
// The order is returned apart from the plan so that escape analysis keeps
// buf on the caller's stack.
func (cs *compiledService) geoOrder(client netip.Addr, loc geo.Location, buf []int, tr *tracer) ([]int, geoPlan) {
	p := geoPlan{rule: -1}
	order := buf[:0]
	for i := range cs.rules {
		r := &cs.rules[i]
		if r.cidr.IsValid() {
			if !client.IsValid() || r.cidr.Addr().Is4() != client.Is4() {
				continue
			}
			cpl := geo.CommonPrefixLen(client, r.cidr.Addr())
			if cpl < r.cidr.Bits() {
				p.ruleScope = max(p.ruleScope, cpl+1)
				if tr != nil {
					tr.add("geo_map[%d] cidr %s: no match", r.index, r.cidr)
				}
				continue
			}
			p.ruleScope = max(p.ruleScope, r.cidr.Bits())
			p.rule = i
			break
		}
		p.ruleUsedLoc = true
		if r.matches(loc) {
			p.rule = i
			break
		}
		if tr != nil {
			tr.add("geo_map[%d] %s: no match", r.index, r.describe())
		}
	}
	if p.rule >= 0 {
		r := &cs.rules[p.rule]
		order = append(order, r.regions...)
		p.ruleLen = len(order)
		if tr != nil {
			tr.add("geo_map[%d] %s: match → %s", r.index, r.describe(), cs.names(r.regions))
		}
	}
	rest := len(order)
	if loc.Region != "" {
		if ri, ok := cs.index[loc.Region]; ok && ri < cs.nService && !slices.Contains(order, ri) {
			order = append(order, ri)
			p.restReason = ReasonCIDRMap
		}
	}
	var cbuf [maxStackRegions]distCand
	cands := cbuf[:0]
	for ri := 0; ri < cs.nService; ri++ {
		if slices.Contains(order, ri) {
			continue
		}
		c := distCand{ri: ri}
		if loc.HasCoordinates {
			r := &cs.regions[ri]
			c.km = geo.DistanceKm(loc.Latitude, loc.Longitude, r.lat, r.lon)
			c.biased = c.km * (1 - float64(r.bias)/100)
		}
		cands = append(cands, c)
	}
	if loc.HasCoordinates {
		// Insertion sort: stable, allocation-free, and n is small.
		for i := 1; i < len(cands); i++ {
			for j := i; j > 0 && cands[j].biased < cands[j-1].biased; j-- {
				cands[j], cands[j-1] = cands[j-1], cands[j]
			}
		}
	}
	for _, c := range cands {
		order = append(order, c.ri)
	}
	if p.restReason == "" {
		p.restReason = ReasonDefault
		if loc.HasCoordinates {
			p.restReason = ReasonNearest
		}
	}
	if tr != nil && len(order) > rest {
		tr.add("then %s: %s", p.restReason, cs.names(order[rest:]))
	}
	return order, p
}

// distCand is a region with its distance from the client.
type distCand struct {
	ri         int
	km, biased float64
}

// weightedOrder orders regions for the weighted policy: the regions with a
// positive weight by weighted rendezvous hash of the client network (so a
// network sticks to its region, each region gets a share of networks
// proportional to its weight, and when a region is down only its networks
// move, spread by weight), then the service's unweighted regions.
func (cs *compiledService) weightedOrder(key uint64, buf []int) []int {
	order := buf[:0]
	var sbuf [maxStackRegions]float64
	scores := sbuf[:0]
	for _, ri := range cs.weighted {
		r := &cs.regions[ri]
		s := hrwScore(key, r.seed, r.weight)
		// Insert keeping scores descending.
		j := len(order)
		order = append(order, ri)
		scores = append(scores, s)
		for ; j > 0 && scores[j-1] < s; j-- {
			order[j], order[j-1] = order[j-1], order[j]
			scores[j], scores[j-1] = scores[j-1], scores[j]
		}
	}
	return append(order, cs.tail...)
}

// serviceOrder is Service.Regions in order (the failover policy).
func (cs *compiledService) serviceOrder(buf []int) []int {
	order := buf[:0]
	for ri := 0; ri < cs.nService; ri++ {
		order = append(order, ri)
	}
	return order
}

// names lists region names for traces.
func (cs *compiledService) names(idx []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, ri := range idx {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(cs.regions[ri].name)
	}
	b.WriteByte(']')
	return b.String()
}

// describe renders a rule's selector for traces.
func (r *compiledRule) describe() string {
	switch {
	case r.cidr.IsValid():
		return "cidr " + r.cidr.String()
	case r.continent != "":
		return "continent " + r.continent
	case r.subdivision != "":
		return "country " + r.country + " subdivision " + r.subdivision
	default:
		return "country " + r.country
	}
}
