package health

import (
	"errors"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// Update swaps in a new config. Endpoints whose pool, name, address, port
// and check settings are unchanged keep their state and their probing
// goroutine (no flap on reload); removed endpoints stop; new or changed
// ones start per their cold_start setting. Drains are kept, including
// those of endpoints or regions no longer configured, so re-adding them
// does not undrain them. A changed state_file takes effect at restart.
func (c *Checker) Update(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("update health checker: nil config")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg.StateFile != c.stateFile {
		c.log.Warn("state_file changed; the new path is used after a restart",
			zap.String("current", c.stateFile), zap.String("new", cfg.StateFile))
	}
	now := c.clock.Now()
	next := make(map[EndpointKey]*endpoint, len(c.eps))
	var kept, started int
	for _, p := range sortedPools(cfg) {
		for _, ep := range p.Endpoints {
			k := EndpointKey{p.Name, ep.Name}
			if old := c.eps[k]; old != nil && old.sig == signature(p, ep) {
				old.ep = ep
				old.st.Region = ep.Region
				next[k] = old
				kept++
				continue
			}
			next[k] = c.newEndpointLocked(p, ep, now)
			started++
		}
	}
	stopped := 0
	for k, old := range c.eps {
		if next[k] != old {
			if old.ready {
				c.known[k] = knownEndpoint{Pool: k.Pool, Endpoint: k.Endpoint, Address: old.st.Address,
					Healthy: old.st.Healthy, Since: old.st.Since}
			}
			old.stop()
			stopped++
		}
	}
	c.eps = next
	c.cfg = cfg
	for _, e := range c.eps {
		c.startLocked(e)
	}
	c.log.Info("health config updated", zap.Int("kept", kept), zap.Int("started", started), zap.Int("stopped", stopped))
	c.gen++
	c.kickPersist()
	c.publishLocked(now)
	return nil
}
