package routing

import (
	"sort"

	"github.com/gslb-dev/gslb/internal/health"
)

// healthView is what a service needs from one health snapshot, computed
// once per snapshot (snapshots are immutable and published on change) so
// that decisions do no map lookups.
type healthView struct {
	snap     *health.Snapshot
	regions  []regionView
	degraded bool
	// single[fam] is the index of the only region eligible for fam when
	// exactly one is and every client's order reaches it; else -1.
	single [numFams]int
}

// regionView is one region's health in a snapshot.
type regionView struct {
	up      bool // health.Snapshot.RegionUp: min_healthy up and not drained
	drained bool
	upCount int
	total   int
	// targets are the up endpoints per family, ordered by weight (highest
	// first, then pool order). Endpoints of weight 0 are standbys: listed
	// only when no endpoint of positive weight is up.
	targets [numFams][]Target
	weights [numFams][]float64
	seeds   [numFams][]uint64
}

// eligible reports whether the region can answer for the family.
func (rv *regionView) eligible(fam int) bool { return rv.up && len(rv.targets[fam]) > 0 }

// viewFor returns the service's view of snap, computing it on first use.
func (cs *compiledService) viewFor(snap *health.Snapshot) *healthView {
	if v := cs.view.Load(); v != nil && v.snap == snap {
		return v
	}
	v := cs.buildView(snap)
	cs.view.Store(v)
	return v
}

func (cs *compiledService) buildView(snap *health.Snapshot) *healthView {
	v := &healthView{snap: snap, regions: make([]regionView, len(cs.regions))}
	for ri := range cs.regions {
		rv := &v.regions[ri]
		name := cs.regions[ri].name
		_, rv.drained = snap.DrainedRegions[name]
		rv.up = snap.RegionUp(cs.pool, name)
		rv.total = len(cs.endpoints[ri])
		type cand struct {
			ep     epRef
			weight int
		}
		var up []cand
		for _, e := range cs.endpoints[ri] {
			if snap.Up(cs.pool.Name, e.ep.Name) && !rv.drained {
				up = append(up, cand{e, e.ep.Weight})
			} else {
				v.degraded = true
			}
		}
		rv.upCount = len(up)
		sort.SliceStable(up, func(i, j int) bool { return up[i].weight > up[j].weight })
		for _, fam := range []int{famV4, famV6} {
			var primary, standby []cand
			for _, c := range up {
				if c.ep.fam != fam {
					continue
				}
				if c.weight > 0 {
					primary = append(primary, c)
				} else {
					standby = append(standby, c)
				}
			}
			if len(primary) == 0 {
				primary = standby
			}
			for _, c := range primary {
				w := float64(max(c.weight, 1))
				rv.targets[fam] = append(rv.targets[fam], c.ep.target)
				rv.weights[fam] = append(rv.weights[fam], w)
				rv.seeds[fam] = append(rv.seeds[fam], c.ep.seed)
				rv.targets[famAny] = append(rv.targets[famAny], c.ep.target)
				rv.weights[famAny] = append(rv.weights[famAny], w)
				rv.seeds[famAny] = append(rv.seeds[famAny], c.ep.seed)
			}
		}
	}
	for fam := range numFams {
		v.single[fam] = -1
		n, last := 0, -1
		for ri := range v.regions {
			if v.regions[ri].eligible(fam) {
				n, last = n+1, ri
			}
		}
		if n == 1 && cs.regions[last].inService {
			v.single[fam] = last
		}
	}
	return v
}
