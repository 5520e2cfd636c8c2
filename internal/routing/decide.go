package routing

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
)

// snapshot returns the current health snapshot, never nil.
func (e *Engine) snapshot() *health.Snapshot {
	if s := e.health.Snapshot(); s != nil {
		return s
	}
	return &health.Snapshot{}
}

// hashBits is the prefix length of the client network hashed for the
// weighted policy and endpoint choice.
func (e *Engine) hashBits(client netip.Addr) int {
	if client.Is4() {
		return e.hashV4
	}
	return e.hashV6
}

// decide makes one decision; tr is nil on the per-query path (Decide),
// which also counts it in the metrics.
func (e *Engine) decide(cs *compiledService, q Query, tr *tracer) Decision {
	snap := e.snapshot()
	v := cs.viewFor(snap)
	fam := familyOf(q.QType)
	client := normalizeClient(q)
	d := Decision{
		Service:         cs.svc.ID,
		Policy:          cs.svc.Policy,
		Query:           q,
		TTL:             cs.ttl,
		Degraded:        v.degraded,
		SnapshotVersion: snap.Version,
	}
	if v.degraded {
		d.TTL = cs.degradedTTL
	}
	if tr != nil {
		e.traceStart(cs, q, client, v, tr)
	}
	if len(cs.all[fam]) == 0 {
		d.Reason = ReasonNoData
		if tr != nil {
			tr.add("the pool has no endpoint of the queried address family: empty answer (NODATA)")
		}
		e.record(cs, tr, fam, -1, ReasonNoData, false)
		return d
	}

	var buf [maxStackRegions]int
	var order []int
	var plan geoPlan
	reason := ReasonFailover
	hashBits := 0
	var key uint64
	if client.IsValid() {
		hashBits = e.hashBits(client)
		key = clientKey(client, hashBits)
	}
	switch cs.svc.Policy {
	case PolicyAll:
		return e.decideAll(cs, v, fam, client, key, hashBits, d, tr)
	case PolicyWeighted:
		reason = ReasonWeighted
		order = cs.weightedOrder(key, buf[:0])
		if tr != nil {
			tr.add("weighted: client network %s hashed over weights → order %s", netipPrefixString(client, hashBits), cs.names(order))
		}
	case PolicyFailover:
		order = cs.serviceOrder(buf[:0])
		if tr != nil {
			tr.add("failover order %s", cs.names(order))
		}
	default: // geo
		if client.IsValid() {
			d.Location = e.geo.Locate(client)
		}
		if tr != nil {
			traceLocation(d.Location, client, tr)
		}
		order, plan = cs.geoOrder(client, d.Location, buf[:0], tr)
	}
	if tr != nil {
		d.Candidates = e.candidates(cs, v, fam, order, d.Location)
		if cs.svc.Policy != PolicyGeo && client.IsValid() {
			d.Location = e.geo.Locate(client) // for display only
		}
	}

	for pos, ri := range order {
		rv := &v.regions[ri]
		if !rv.eligible(fam) {
			if tr != nil {
				tr.add("region %s: %s, skipped", cs.regions[ri].name, regionState(rv, fam))
			}
			continue
		}
		scope := 0
		switch cs.svc.Policy {
		case PolicyWeighted:
			scope = hashBits
		case PolicyGeo, "":
			scope = plan.ruleScope
			reason = ReasonGeoMap
			if pos >= plan.ruleLen {
				reason = plan.restReason
			}
			if plan.ruleUsedLoc || pos >= plan.ruleLen {
				scope = max(scope, locationBits(d.Location, client))
			}
		}
		if v.single[fam] == ri && scope > 0 {
			if tr != nil {
				tr.add("region %s is the only eligible region: the answer does not depend on the client", cs.regions[ri].name)
			}
			scope = 0
		}
		targets, hashed := cs.pick(rv.targets[fam], rv.weights[fam], rv.seeds[fam], key)
		if hashed {
			scope = max(scope, hashBits)
		}
		d.Region = cs.regions[ri].name
		d.Targets = targets
		d.Reason = reason
		d.Scope = scope
		if tr != nil {
			e.traceAnswer(cs, &d, hashed, tr)
		}
		e.record(cs, tr, fam, ri, reason, false)
		return d
	}
	return e.allDown(cs, d, fam, tr)
}

// decideAll answers every up endpoint of every service region.
func (e *Engine) decideAll(cs *compiledService, v *healthView, fam int, client netip.Addr, key uint64, hashBits int, d Decision, tr *tracer) Decision {
	if tr != nil {
		d.Candidates = e.candidates(cs, v, fam, cs.serviceOrder(make([]int, 0, cs.nService)), geo.Location{})
		if client.IsValid() {
			d.Location = e.geo.Locate(client) // for display only
		}
	}
	n, regions, only := 0, 0, -1
	for ri := 0; ri < cs.nService; ri++ {
		rv := &v.regions[ri]
		if rv.eligible(fam) {
			n += len(rv.targets[fam])
			regions++
			only = ri
		} else if tr != nil {
			tr.add("region %s: %s, skipped", cs.regions[ri].name, regionState(rv, fam))
		}
	}
	if n == 0 {
		return e.allDown(cs, d, fam, tr)
	}
	targets := make([]Target, 0, n)
	var weights []float64
	var seeds []uint64
	if m := cs.svc.MaxRecords; m > 0 && n > m {
		weights, seeds = make([]float64, 0, n), make([]uint64, 0, n)
	}
	for ri := 0; ri < cs.nService; ri++ {
		rv := &v.regions[ri]
		if rv.eligible(fam) {
			targets = append(targets, rv.targets[fam]...)
			if weights != nil {
				weights = append(weights, rv.weights[fam]...)
				seeds = append(seeds, rv.seeds[fam]...)
			}
		}
	}
	ri := -1
	if regions == 1 {
		ri = only
		d.Region = cs.regions[only].name
	}
	d.Reason = ReasonAll
	d.Targets = targets
	if weights != nil {
		var hashed bool
		d.Targets, hashed = cs.pick(targets, weights, seeds, key)
		if hashed {
			d.Scope = hashBits
		}
	}
	if tr != nil {
		e.traceAnswer(cs, &d, weights != nil, tr)
	}
	e.record(cs, tr, fam, ri, ReasonAll, false)
	return d
}

// pick returns a copy of targets, or, when there are more than
// max_records, the max_records chosen by weighted rendezvous hash of the
// client network (hashed is then true and the answer depends on it).
func (cs *compiledService) pick(targets []Target, weights []float64, seeds []uint64, key uint64) (out []Target, hashed bool) {
	m := cs.svc.MaxRecords
	if m <= 0 || len(targets) <= m {
		out = make([]Target, len(targets))
		copy(out, targets)
		return out, false
	}
	var sbuf [32]float64
	scores := sbuf[:0]
	for i := range targets {
		scores = append(scores, hrwScore(key, seeds[i], weights[i]))
	}
	out = make([]Target, 0, m)
	for len(out) < m {
		best := -1
		for i, s := range scores {
			if s >= 0 && (best < 0 || s > scores[best]) {
				best = i
			}
		}
		out = append(out, targets[best])
		scores[best] = -1
	}
	return out, true
}

// allDown applies the service's when_all_down choice.
func (e *Engine) allDown(cs *compiledService, d Decision, fam int, tr *tracer) Decision {
	d.AllDown = true
	d.Degraded = true
	d.TTL = cs.degradedTTL
	d.Scope = 0
	d.Region = ""
	switch cs.svc.WhenAllDown {
	case ReasonFallback:
		d.Reason = ReasonFallback
		d.Fallback = make([]netip.Addr, 0, len(cs.svc.Fallback))
		for _, a := range cs.svc.Fallback {
			d.Fallback = append(d.Fallback, a.Addr.Unmap())
		}
	case ReasonFailClosed:
		d.Reason = ReasonFailClosed
	default:
		d.Reason = ReasonFailOpen
		all := cs.all[fam]
		if m := cs.svc.MaxRecords; m > 0 && len(all) > m {
			all = all[:m]
		}
		d.Targets = make([]Target, len(all))
		copy(d.Targets, all)
	}
	if tr != nil {
		e.traceAllDown(cs, &d, tr)
	}
	e.record(cs, tr, fam, -1, d.Reason, true)
	return d
}

// record counts a decision (not for Explain) and logs all-down
// transitions once per service and address family.
func (e *Engine) record(cs *compiledService, tr *tracer, fam, ri int, reason string, allDown bool) {
	if tr != nil {
		return
	}
	cs.metrics.decision(ri, reason)
	if allDown {
		cs.metrics.allDownOutcome(reason)
		if cs.allDown[fam].CompareAndSwap(false, true) {
			e.log.Warn("no healthy region for service", zap.String("service", cs.svc.ID),
				zap.String("family", famName(fam)), zap.String("outcome", reason))
		}
		return
	}
	if reason != ReasonNoData && cs.allDown[fam].Load() && cs.allDown[fam].CompareAndSwap(true, false) {
		e.log.Info("service has a healthy region again", zap.String("service", cs.svc.ID),
			zap.String("family", famName(fam)))
	}
}

// famName names an address family for logs and traces.
func famName(fam int) string {
	switch fam {
	case famV4:
		return "ipv4"
	case famV6:
		return "ipv6"
	}
	return "any"
}
