package routing

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/gslb-dev/gslb/internal/config"
)

// Address families indexing per-family lists: famAny answers both.
const (
	famAny = iota
	famV4
	famV6
	numFams
)

// familyOf maps a query type to a family index.
func familyOf(qtype uint16) int {
	switch qtype {
	case typeA:
		return famV4
	case typeAAAA:
		return famV6
	}
	return famAny
}

// DNS types, spelled out so the hot path needs no map lookups.
const (
	typeA    = 1
	typeAAAA = 28
)

// regionRef is one region of a service's universe.
type regionRef struct {
	name      string
	lat, lon  float64
	bias      int
	seed      uint64 // hash seed for weighted rendezvous hashing
	weight    float64
	inService bool // listed in Service.Regions: every client's order reaches it
}

// epRef is one pool endpoint within the service's universe.
type epRef struct {
	ep     *config.Endpoint
	target Target
	fam    int // famV4 or famV6
	seed   uint64
}

// compiledRule is one GeoMap rule with regions resolved to indexes.
type compiledRule struct {
	index       int
	cidr        netip.Prefix
	continent   string
	country     string
	subdivision string
	regions     []int
}

// compiledService holds everything about a service that does not change
// between queries, and the health view of the latest snapshot.
type compiledService struct {
	svc         *config.Service
	pool        *config.Pool
	ttl         uint32
	degradedTTL uint32
	// regions is the universe: Service.Regions in order, then the other
	// regions named by geo rules and weights, sorted by name.
	regions  []regionRef
	index    map[string]int
	nService int // regions[:nService] are Service.Regions
	rules    []compiledRule
	// weighted are the indexes of regions with a positive weight.
	weighted []int
	// tail are Service.Regions without a weight, tried after the weighted ones.
	tail []int
	// endpoints per region index, in pool order.
	endpoints [][]epRef
	// all lists every configured endpoint of the universe per family, in
	// pool order: the fail-open answer.
	all [numFams][]Target

	view atomic.Pointer[healthView]
	// upOrder is the region order Upstreams last computed; it depends only
	// on the local region, which a proxy does not change per request.
	upOrder atomic.Pointer[upstreamOrder]
	allDown [numFams]atomic.Bool
	metrics *serviceMetrics
}

func compileService(cfg *config.Config, svc *config.Service) *compiledService {
	cs := &compiledService{
		svc:         svc,
		pool:        cfg.Pools[svc.Pool],
		ttl:         svc.TTL,
		degradedTTL: svc.DegradedTTL,
		index:       map[string]int{},
	}
	if cs.pool == nil {
		cs.pool = &config.Pool{Name: svc.Pool}
	}
	add := func(name string, inService bool) int {
		if i, ok := cs.index[name]; ok {
			return i
		}
		r := regionRef{name: name, inService: inService, seed: hashString(name)}
		if cr := cfg.Regions[name]; cr != nil {
			r.lat, r.lon, r.bias = cr.Latitude, cr.Longitude, cr.Bias
		}
		cs.index[name] = len(cs.regions)
		cs.regions = append(cs.regions, r)
		return len(cs.regions) - 1
	}
	for _, name := range svc.Regions { // the pool's regions unless configured (config defaults)
		add(name, true)
	}
	cs.nService = len(cs.regions)
	var extra []string
	for _, g := range svc.GeoMap {
		extra = append(extra, g.Regions...)
	}
	for name := range svc.Weights {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	for _, name := range extra {
		add(name, svc.Policy == PolicyWeighted) // every client reaches weighted regions
	}
	for i, g := range svc.GeoMap {
		r := compiledRule{
			index:       i,
			continent:   strings.ToUpper(g.Continent),
			country:     strings.ToUpper(g.Country),
			subdivision: strings.ToUpper(g.Subdivision),
		}
		if g.CIDR != nil {
			r.cidr = unmapPrefix(g.CIDR.Prefix)
		}
		for _, name := range g.Regions {
			if idx := cs.index[name]; !slices.Contains(r.regions, idx) {
				r.regions = append(r.regions, idx)
			}
		}
		cs.rules = append(cs.rules, r)
	}
	for i := range cs.regions {
		if w := svc.Weights[cs.regions[i].name]; w > 0 {
			cs.regions[i].weight = float64(w)
			cs.weighted = append(cs.weighted, i)
		} else if i < cs.nService {
			cs.tail = append(cs.tail, i)
		}
	}
	cs.endpoints = make([][]epRef, len(cs.regions))
	for _, ep := range cs.pool.Endpoints {
		if ep == nil {
			continue
		}
		ri, ok := cs.index[ep.Region]
		if !ok {
			continue
		}
		addr := ep.Address.Addr.Unmap()
		fam := famV6
		if addr.Is4() {
			fam = famV4
		}
		t := Target{Pool: cs.pool.Name, Endpoint: ep.Name, Region: ep.Region, Addr: addr, Port: ep.Port}
		cs.endpoints[ri] = append(cs.endpoints[ri], epRef{ep: ep, target: t, fam: fam, seed: hashString(ep.Name)})
		cs.all[famAny] = append(cs.all[famAny], t)
		cs.all[fam] = append(cs.all[fam], t)
	}
	return cs
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 form.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.IsValid() && p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}
