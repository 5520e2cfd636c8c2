package routing

import (
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
	local, hasLocal := cs.index[localRegion]
	var lat, lon float64
	if r := e.cfg.Regions[localRegion]; r != nil {
		lat, lon = r.Latitude, r.Longitude
	}
	var cbuf [maxStackRegions]distCand
	cands := cbuf[:0]
	for ri := 0; ri < cs.nService; ri++ {
		if hasLocal && ri == local {
			continue
		}
		r := &cs.regions[ri]
		cands = append(cands, distCand{ri: ri, km: geo.DistanceKm(lat, lon, r.lat, r.lon)})
	}
	for i := 1; i < len(cands); i++ {
		for j := i; j > 0 && cands[j].km < cands[j-1].km; j-- {
			cands[j], cands[j-1] = cands[j-1], cands[j]
		}
	}
	var obuf [maxStackRegions]int
	order := obuf[:0]
	if hasLocal {
		order = append(order, local)
	}
	for _, c := range cands {
		order = append(order, c.ri)
	}
	n := 0
	for _, ri := range order {
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
	for _, ri := range order {
		rv := &v.regions[ri]
		if !rv.eligible(famAny) {
			continue
		}
		if d.Region == "" {
			d.Region = cs.regions[ri].name
			d.Reason = ReasonNearest
			if hasLocal && ri == local {
				d.Reason = ReasonLocal
			}
		}
		d.Targets = append(d.Targets, rv.targets[famAny]...)
	}
	return d
}
