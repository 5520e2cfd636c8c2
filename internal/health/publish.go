package health

import (
	"context"
	"maps"
	"time"

	"go.uber.org/zap"
)

// publishLocked builds and publishes a new Snapshot from the current state,
// records region transitions, updates gauges and wakes subscribers.
func (c *Checker) publishLocked(now time.Time) {
	c.version++
	snap := &Snapshot{
		Version:          c.version,
		Time:             now,
		Ready:            true,
		Endpoints:        make(map[EndpointKey]EndpointState, len(c.eps)),
		DrainedRegions:   maps.Clone(c.drainedRegions),
		DrainedEndpoints: maps.Clone(c.drainedEndpoints),
	}
	gauges := make(map[[3]string]bool, len(c.eps))
	for k, e := range c.eps {
		st := e.st
		_, regionDrained := c.drainedRegions[st.Region]
		_, endpointDrained := c.drainedEndpoints[k]
		st.Drained = regionDrained || endpointDrained
		snap.Endpoints[k] = st
		if !e.ready {
			snap.Ready = false
		}
		l := [3]string{k.Pool, st.Region, k.Endpoint}
		up := st.Up()
		gauges[l] = up
		if was, ok := c.endpointGauges[l]; !ok || was != up {
			c.metrics.endpointUp.WithLabelValues(l[:]...).Set(boolGauge(up))
		}
	}
	for l := range c.endpointGauges {
		if _, ok := gauges[l]; !ok {
			c.metrics.endpointUp.DeleteLabelValues(l[:]...)
		}
	}
	c.endpointGauges = gauges
	// Ready is sticky: endpoints added by a reload start per cold_start
	// without making a serving process unready again.
	if snap.Ready {
		c.readyOnce = true
	}
	snap.Ready = snap.Ready || c.readyOnce

	regions := make(map[[2]string]bool, len(c.regionUp))
	for _, p := range sortedPools(c.cfg) {
		for _, ep := range p.Endpoints {
			k := [2]string{p.Name, ep.Region}
			if _, done := regions[k]; done {
				continue
			}
			up := snap.RegionUp(p, ep.Region)
			regions[k] = up
			was, seen := c.regionUp[k]
			if !seen || was != up {
				c.metrics.regionUp.WithLabelValues(k[:]...).Set(boolGauge(up))
			}
			if seen && was != up {
				c.regionTransitionLocked(k[0], k[1], up, now)
			}
		}
	}
	for k := range c.regionUp {
		if _, ok := regions[k]; !ok {
			c.metrics.regionUp.DeleteLabelValues(k[:]...)
		}
	}
	c.regionUp = regions

	n := len(c.transitions)
	snap.Transitions = c.transitions[:n:n]
	c.snap.Store(snap)
	next := make(chan struct{})
	old := c.changed.Swap(&next)
	close(*old)
	c.dirty = false
}

// applyLoop applies probe results from the endpoints' goroutines until
// ctx is done. Only this goroutine takes Checker.mu for probe results, in
// batches, so thousands of endpoints never contend for it. Important
// changes publish at once but at most every publishGap; probe details
// alone publish every detailEvery.
func (c *Checker) applyLoop(ctx context.Context) {
	defer c.wg.Done()
	detail := time.NewTicker(c.detailEvery)
	defer detail.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	var (
		lastPublish time.Time // real time
		waiting     bool      // gap timer armed for a pending important change
	)
	publish := func() {
		if c.dirty {
			c.publishLocked(c.clock.Now())
		}
		lastPublish = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-c.results:
			c.mu.Lock()
			important := c.applyLocked(o.e, o.res)
			for i := 1; i < cap(c.results); i++ {
				select {
				case o := <-c.results:
					important = c.applyLocked(o.e, o.res) || important
					continue
				default:
				}
				break
			}
			if important && !waiting {
				if wait := c.publishGap - time.Since(lastPublish); wait > 0 {
					gap.Reset(wait)
					waiting = true
				} else {
					publish()
				}
			}
			c.mu.Unlock()
		case <-gap.C:
			if waiting {
				waiting = false
				c.mu.Lock()
				publish()
				c.mu.Unlock()
			}
		case <-detail.C:
			c.mu.Lock()
			publish()
			c.mu.Unlock()
		}
	}
}

// sleepCtx waits d of real time; it reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// regionTransitionLocked records and logs a region of a pool going up or
// down (by health or by drain).
func (c *Checker) regionTransitionLocked(pool, region string, up bool, now time.Time) {
	from, to, reason := "down", "up", "enough endpoints up"
	if !up {
		from, to, reason = "up", "down", "fewer than min_healthy endpoints up"
		if _, drained := c.drainedRegions[region]; drained {
			reason = "region drained"
		}
	}
	c.addTransitionLocked(Transition{At: now, Pool: pool, Region: region, From: from, To: to, Reason: reason})
	if up {
		c.log.Info("region up", zap.String("pool", pool), zap.String("region", region), zap.String("reason", reason))
	} else {
		c.log.Warn("region down", zap.String("pool", pool), zap.String("region", region), zap.String("reason", reason))
	}
}

// addTransitionLocked appends t, keeping the last MaxTransitions. Published
// snapshots share the slice's backing array but only up to their own
// length, which appends never overwrite.
func (c *Checker) addTransitionLocked(t Transition) {
	if len(c.transitions) >= MaxTransitions {
		kept := make([]Transition, MaxTransitions-1, 2*MaxTransitions)
		copy(kept, c.transitions[len(c.transitions)-(MaxTransitions-1):])
		c.transitions = kept
	}
	c.transitions = append(c.transitions, t)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
