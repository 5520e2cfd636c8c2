package health

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// endpoint is the Checker's mutable record of one endpoint, guarded by
// Checker.mu. The probing goroutine only reads its immutable fields (key,
// check, target).
type endpoint struct {
	key    EndpointKey
	sig    string
	check  config.Check
	target netip.AddrPort
	ep     *config.Endpoint // current config entry (Region may change on reload)

	st     EndpointState // Drained is computed when publishing
	ready  bool          // had a first result, or started warm
	cancel context.CancelFunc
}

// signature identifies what a probe depends on; an endpoint whose
// signature is unchanged by a reload keeps its state and its goroutine.
func signature(p *config.Pool, ep *config.Endpoint) string {
	b, _ := json.Marshal(struct {
		Pool, Endpoint string
		Address        netip.Addr
		Port           uint16
		Check          config.Check
	}{p.Name, ep.Name, ep.Address.Addr, ep.Port, p.Check})
	return string(b)
}

// sortedPools returns cfg's pools in name order.
func sortedPools(cfg *config.Config) []*config.Pool {
	pools := make([]*config.Pool, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		if p != nil {
			pools = append(pools, p)
		}
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools
}

// newEndpointLocked builds the record of ep in its cold-start state.
func (c *Checker) newEndpointLocked(p *config.Pool, ep *config.Endpoint, now time.Time) *endpoint {
	e := &endpoint{
		key:    EndpointKey{p.Name, ep.Name},
		sig:    signature(p, ep),
		check:  p.Check,
		target: probeTarget(p.Check, ep),
		ep:     ep,
	}
	e.st = EndpointState{
		Pool: p.Name, Endpoint: ep.Name, Region: ep.Region, Address: ep.Address.Addr, Since: now,
	}
	switch known, ok := c.known[e.key]; {
	case p.Check.Type == "none":
		e.st.Healthy, e.ready, e.st.LastResult = true, true, ReasonNoCheck
	case p.Check.ColdStart == "assume_unhealthy":
		e.st.Healthy, e.st.LastResult = false, "assumed unhealthy (cold start)"
	case p.Check.ColdStart == "last_known" && ok && known.Address == ep.Address.Addr:
		e.st.Healthy, e.ready, e.st.LastResult = known.Healthy, true, "last known (state file)"
		if !known.Since.IsZero() {
			e.st.Since = known.Since
		}
	case p.Check.ColdStart == "last_known":
		e.st.Healthy, e.st.LastResult = true, "unknown at start, assumed healthy"
	default: // assume_healthy
		e.st.Healthy, e.st.LastResult = true, "assumed healthy (cold start)"
	}
	return e
}

// startLocked starts the probing goroutine of e when the Checker runs.
func (c *Checker) startLocked(e *endpoint) {
	if !c.running || e.cancel != nil || e.check.Type == "none" {
		return
	}
	ctx, cancel := context.WithCancel(c.runCtx)
	e.cancel = cancel
	c.wg.Add(1)
	go c.loop(ctx, e)
}

// stop cancels e's goroutine, if any. Called with Checker.mu held.
func (e *endpoint) stop() {
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
}

// loop probes e every interval (with jitter) until ctx is done.
func (c *Checker) loop(ctx context.Context, e *endpoint) {
	defer c.wg.Done()
	p := newProber(e.check)
	defer p.close()
	delay := firstDelay(e.check)
	for {
		t := c.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		start := c.clock.Now()
		res := runProbe(ctx, p, e.check.Timeout, e.target)
		if ctx.Err() != nil {
			return // stopped mid-probe: the result says nothing about the endpoint
		}
		c.metrics.checkDuration.WithLabelValues(e.check.Type).Observe(res.Duration.Seconds())
		result := "success"
		if !res.OK {
			result = "failure"
		}
		c.metrics.checks.WithLabelValues(e.key.Pool, result).Inc()
		select {
		case c.results <- outcome{e, res}:
		case <-ctx.Done():
			return
		}
		delay = max(nextDelay(e.check)-c.clock.Now().Sub(start), 0)
	}
}

// firstDelay spreads first probes over [0, jitter*interval).
func firstDelay(ch config.Check) time.Duration {
	return time.Duration(rand.Float64() * ch.Jitter * float64(ch.Interval))
}

// nextDelay is the interval randomised by ±jitter.
func nextDelay(ch config.Check) time.Duration {
	return time.Duration(float64(ch.Interval) * (1 + ch.Jitter*(2*rand.Float64()-1)))
}

// outcome is a probe result on its way from an endpoint's goroutine to
// applyLoop.
type outcome struct {
	e   *endpoint
	res Result
}

// applyLocked applies one probe result to e: counters, rise/fall
// thresholds, logs and persistence. It reports whether the change must be
// published soon (health, verdict or readiness changed); other changes
// only mark the state dirty.
func (c *Checker) applyLocked(e *endpoint, res Result) (important bool) {
	if c.eps[e.key] != e {
		return false // removed or replaced by a reload while probing
	}
	now := c.clock.Now()
	st := &e.st
	wasHealthy, wasReason, wasReady := st.Healthy, st.LastResult, e.ready
	st.LastCheck, st.LastResult, st.LastError, st.LastDuration = now, res.Reason, res.Detail, res.Duration
	if res.OK {
		st.Successes++
		st.Failures = 0
		if !st.Healthy && st.Successes >= e.check.Rise {
			st.Healthy = true
		}
	} else {
		st.Failures++
		st.Successes = 0
		if st.Healthy && st.Failures >= e.check.Fall {
			st.Healthy = false
		}
	}
	e.ready = true
	if st.Healthy != wasHealthy {
		st.Since = now
		c.healthTransitionLocked(e, wasHealthy, res, now)
	}
	if st.Healthy != wasHealthy || !wasReady {
		c.gen++
		c.kickPersist()
	}
	if c.onProbe != nil {
		c.onProbe(e.key, res)
	}
	c.dirty = true
	return st.Healthy != wasHealthy || st.LastResult != wasReason || !wasReady
}

// healthTransitionLocked records and logs a change of e's probe verdict.
func (c *Checker) healthTransitionLocked(e *endpoint, wasHealthy bool, res Result, now time.Time) {
	from, to := "up", "down"
	if !wasHealthy {
		from, to = "down", "up"
	}
	reason := res.Reason
	if e.st.Healthy {
		reason = "ok"
	}
	c.addTransitionLocked(Transition{At: now, Pool: e.key.Pool, Endpoint: e.key.Endpoint,
		Region: e.st.Region, From: from, To: to, Reason: reason})
	fields := []zap.Field{
		zap.String("pool", e.key.Pool), zap.String("endpoint", e.key.Endpoint),
		zap.String("region", e.st.Region), zap.Stringer("target", e.target),
		zap.String("reason", reason),
	}
	if e.st.Healthy {
		c.log.Info("endpoint up", append(fields, zap.Int("successes", e.st.Successes))...)
	} else {
		c.log.Warn("endpoint down", append(fields, zap.Int("failures", e.st.Failures),
			zap.String("error", res.Detail))...)
	}
}
