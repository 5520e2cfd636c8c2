package routing

import (
	"sort"

	"github.com/gslb-dev/gslb/internal/geo"
)

// Upstreams orders the service's up endpoints for the proxy: those of
// localRegion first while it is up, then the other service regions by
// distance from localRegion (configured order on ties), each region's up
// endpoints of both families in weight order. max_records does not apply.
// When no region is up it fails open: every configured endpoint, AllDown
// set, whatever the service's when_all_down (the proxy needs somewhere to
// send the request). Upstreams is not counted in the decision metrics.
func (e *Engine) Upstreams(serviceID, localRegion string) Decision {
	cs := e.services[serviceID]
	if cs == nil {
		return Decision{Service: serviceID, Reason: ReasonUnknownService}
	}
	snap := e.snapshot()
	v := cs.viewFor(snap)
	d := Decision{Service: cs.svc.ID, Policy: cs.svc.Policy, TTL: cs.ttl, Degraded: v.degraded, SnapshotVersion: snap.Version}
	if v.degraded {
		d.TTL = cs.degradedTTL
	}
	order := cs.upstreamOrder(e, localRegion)
	n := 0
	for _, ri := range order.regions {
		if rv := &v.regions[ri]; rv.eligible(famAny) {
			n += len(rv.targets[famAny])
		}
	}
	if n == 0 {
		d.AllDown = true
		d.Reason = ReasonFailOpen
		d.TTL = cs.degradedTTL
		d.Targets = make([]Target, len(cs.all[famAny]))
		copy(d.Targets, cs.all[famAny])
		return d
	}
	d.Targets = make([]Target, 0, n)
	for _, ri := range order.regions {
		rv := &v.regions[ri]
		if !rv.eligible(famAny) {
			continue
		}
		if d.Region == "" {
			d.Region = cs.regions[ri].name
			d.Reason = ReasonNearest
			if ri == order.local {
				d.Reason = ReasonLocal
			}
		}
		d.Targets = append(d.Targets, rv.targets[famAny]...)
	}
	return d
}

// upstreamOrder is the order in which Upstreams tries a service's regions
// for one local region.
type upstreamOrder struct {
	localRegion string
	local       int // index of localRegion, or -1 when not a service region
	regions     []int
}

// upstreamOrder returns the service's regions for localRegion: the local
// region first, then the others by distance from it (configured order on
// ties). It is computed once per engine and local region, not per request.
func (cs *compiledService) upstreamOrder(e *Engine, localRegion string) *upstreamOrder {
	if o := cs.upOrder.Load(); o != nil && o.localRegion == localRegion {
		return o
	}
	o := &upstreamOrder{localRegion: localRegion, local: -1, regions: make([]int, 0, cs.nService)}
	local, hasLocal := cs.index[localRegion]
	var lat, lon float64
	if r := e.cfg.Regions[localRegion]; r != nil {
		lat, lon = r.Latitude, r.Longitude
	}
	cands := make([]distCand, 0, cs.nService)
	for ri := 0; ri < cs.nService; ri++ {
		if hasLocal && ri == local {
			continue
		}
		r := &cs.regions[ri]
		cands = append(cands, distCand{ri: ri, km: geo.DistanceKm(lat, lon, r.lat, r.lon)})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].km < cands[j].km })
	if hasLocal {
		o.local = local
		o.regions = append(o.regions, local)
	}
	for _, c := range cands {
		o.regions = append(o.regions, c.ri)
	}
	cs.upOrder.Store(o)
	return o
}
