package health

import (
	"fmt"

	"go.uber.org/zap"
)

// DrainRegion drains region in every pool: its endpoints receive no
// traffic until UndrainRegion. The drain is written to the state file
// before it takes effect; on a write error nothing changes and the error
// is returned. o.At defaults to now.
func (c *Checker) DrainRegion(region string, o Override) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cfg.Regions[region]; !ok {
		return fmt.Errorf("drain region %q: unknown region", region)
	}
	now := c.clock.Now()
	if o.At.IsZero() {
		o.At = now
	}
	prev, was := c.drainedRegions[region]
	from := c.regionStateLocked(region)
	c.drainedRegions[region] = o
	if err := c.persistLocked(); err != nil {
		if was {
			c.drainedRegions[region] = prev
		} else {
			delete(c.drainedRegions, region)
		}
		return fmt.Errorf("drain region %q: %w", region, err)
	}
	if !was {
		c.addTransitionLocked(Transition{At: now, Region: region, From: from, To: "drained",
			Reason: overrideReason("drained", o)})
	}
	c.log.Info("region drained", zap.String("region", region), zap.String("by", o.By), zap.String("reason", o.Reason))
	c.publishLocked(now)
	return nil
}

// UndrainRegion removes the drain of region. Undraining a region that is
// not drained is a no-op; an unknown region that is not drained is an error.
func (c *Checker) UndrainRegion(region, by string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, was := c.drainedRegions[region]
	if !was {
		if _, ok := c.cfg.Regions[region]; !ok {
			return fmt.Errorf("undrain region %q: unknown region", region)
		}
		return nil
	}
	delete(c.drainedRegions, region)
	if err := c.persistLocked(); err != nil {
		c.drainedRegions[region] = prev
		return fmt.Errorf("undrain region %q: %w", region, err)
	}
	now := c.clock.Now()
	c.addTransitionLocked(Transition{At: now, Region: region, From: "drained", To: c.regionStateLocked(region),
		Reason: "undrained by " + by})
	c.log.Info("region undrained", zap.String("region", region), zap.String("by", by),
		zap.String("drained_by", prev.By), zap.Time("drained_at", prev.At))
	c.publishLocked(now)
	return nil
}

// DrainEndpoint drains one endpoint of a pool. Like DrainRegion, it is
// persisted before it takes effect.
func (c *Checker) DrainEndpoint(pool, endpoint string, o Override) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := EndpointKey{pool, endpoint}
	e, ok := c.eps[k]
	if !ok {
		return fmt.Errorf("drain endpoint %s/%s: unknown endpoint", pool, endpoint)
	}
	now := c.clock.Now()
	if o.At.IsZero() {
		o.At = now
	}
	from := c.endpointStateLocked(e)
	prev, was := c.drainedEndpoints[k]
	c.drainedEndpoints[k] = o
	if err := c.persistLocked(); err != nil {
		if was {
			c.drainedEndpoints[k] = prev
		} else {
			delete(c.drainedEndpoints, k)
		}
		return fmt.Errorf("drain endpoint %s/%s: %w", pool, endpoint, err)
	}
	if !was {
		c.addTransitionLocked(Transition{At: now, Pool: pool, Endpoint: endpoint, Region: e.st.Region,
			From: from, To: "drained", Reason: overrideReason("drained", o)})
	}
	c.log.Info("endpoint drained", zap.String("pool", pool), zap.String("endpoint", endpoint),
		zap.String("by", o.By), zap.String("reason", o.Reason))
	c.publishLocked(now)
	return nil
}

// UndrainEndpoint removes the drain of one endpoint. Undraining an
// endpoint that is not drained is a no-op; an unknown one is an error
// unless a drain of it survives from an earlier config.
func (c *Checker) UndrainEndpoint(pool, endpoint, by string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := EndpointKey{pool, endpoint}
	e := c.eps[k]
	prev, was := c.drainedEndpoints[k]
	if !was {
		if e == nil {
			return fmt.Errorf("undrain endpoint %s/%s: unknown endpoint", pool, endpoint)
		}
		return nil
	}
	delete(c.drainedEndpoints, k)
	if err := c.persistLocked(); err != nil {
		c.drainedEndpoints[k] = prev
		return fmt.Errorf("undrain endpoint %s/%s: %w", pool, endpoint, err)
	}
	now := c.clock.Now()
	if e != nil {
		c.addTransitionLocked(Transition{At: now, Pool: pool, Endpoint: endpoint, Region: e.st.Region,
			From: "drained", To: c.endpointStateLocked(e), Reason: "undrained by " + by})
	}
	c.log.Info("endpoint undrained", zap.String("pool", pool), zap.String("endpoint", endpoint),
		zap.String("by", by), zap.String("drained_by", prev.By), zap.Time("drained_at", prev.At))
	c.publishLocked(now)
	return nil
}

// SetEjected records the proxy's passive outlier detection verdict for
// an endpoint and publishes it when it changes. Unknown endpoints are
// ignored (the proxy may run a newer or older config during a reload).
func (c *Checker) SetEjected(pool, endpoint string, ejected bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.eps[EndpointKey{pool, endpoint}]
	if !ok || e.st.Ejected == ejected {
		return
	}
	now := c.clock.Now()
	from := c.endpointStateLocked(e)
	e.st.Ejected = ejected
	to := c.endpointStateLocked(e)
	if reason == "" {
		reason = map[bool]string{true: "ejected by proxy", false: "restored by proxy"}[ejected]
	}
	c.addTransitionLocked(Transition{At: now, Pool: pool, Endpoint: endpoint, Region: e.st.Region,
		From: from, To: to, Reason: reason})
	c.log.Info("endpoint passive health changed", zap.String("pool", pool), zap.String("endpoint", endpoint),
		zap.Bool("ejected", ejected), zap.String("reason", reason))
	c.publishLocked(now)
}

// endpointStateLocked names e's state for transitions: drained, ejected,
// up or down.
func (c *Checker) endpointStateLocked(e *endpoint) string {
	_, rd := c.drainedRegions[e.st.Region]
	_, ed := c.drainedEndpoints[e.key]
	switch {
	case rd || ed:
		return "drained"
	case e.st.Ejected:
		return "ejected"
	case e.st.Healthy:
		return "up"
	}
	return "down"
}

// regionStateLocked names a region's state: drained, up when it is up in
// at least one pool, else down.
func (c *Checker) regionStateLocked(region string) string {
	if _, d := c.drainedRegions[region]; d {
		return "drained"
	}
	for k, up := range c.regionUp {
		if k[1] == region && up {
			return "up"
		}
	}
	return "down"
}

func overrideReason(verb string, o Override) string {
	s := verb + " by " + o.By
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	return s
}

var _ Source = (*Checker)(nil)
