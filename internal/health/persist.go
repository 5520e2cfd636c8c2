package health

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"
)

// buildStateLocked captures overrides and last known health for the state
// file, with the generation it reflects.
func (c *Checker) buildStateLocked() (*stateFile, uint64) {
	st := &stateFile{
		Version:        stateFileVersion,
		WrittenAt:      c.clock.Now().UTC(),
		DrainedRegions: make(map[string]Override, len(c.drainedRegions)),
	}
	for r, o := range c.drainedRegions {
		st.DrainedRegions[r] = o
	}
	for k, o := range c.drainedEndpoints {
		st.DrainedEndpoints = append(st.DrainedEndpoints, drainedEndpoint{Pool: k.Pool, Endpoint: k.Endpoint, Override: o})
	}
	for k, e := range c.eps {
		if e.check.Type == "none" {
			continue
		}
		if e.ready {
			known := knownEndpoint{Pool: k.Pool, Endpoint: k.Endpoint, Address: e.st.Address,
				Healthy: e.st.Healthy, Since: e.st.Since.UTC()}
			c.known[k] = known
			st.Endpoints = append(st.Endpoints, known)
		} else if known, ok := c.known[k]; ok && known.Address == e.st.Address {
			st.Endpoints = append(st.Endpoints, known) // not probed yet: keep what we knew
		}
	}
	sortState(st)
	return st, c.gen
}

// persistLocked writes the current state synchronously; operator actions
// use it so that their error reaches the operator.
func (c *Checker) persistLocked() error {
	c.gen++
	st, gen := c.buildStateLocked()
	return c.writeState(st, gen)
}

// persistAsync writes the current state if it changed since the last
// write. It takes Checker.mu only to capture the state.
func (c *Checker) persistAsync() error {
	if c.stateFile == "" {
		return nil
	}
	c.mu.Lock()
	st, gen := c.buildStateLocked()
	c.mu.Unlock()
	return c.writeState(st, gen)
}

// writeState writes st unless a state at least as new (gen) was written.
func (c *Checker) writeState(st *stateFile, gen uint64) error {
	if c.stateFile == "" {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	if gen <= c.persistedGen {
		return nil
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode health state: %w", err)
	}
	if err := writeFileAtomic(c.stateFile, append(data, '\n')); err != nil {
		return fmt.Errorf("write health state file %q: %w", c.stateFile, err)
	}
	c.persistedGen = gen
	return nil
}

// kickPersist asks persistLoop to write the state soon. Health changes
// are written asynchronously so probes never wait on fsync.
func (c *Checker) kickPersist() {
	select {
	case c.persistKick <- struct{}{}:
	default:
	}
}

// persistLoop writes health changes to the state file until ctx is done.
func (c *Checker) persistLoop(ctx context.Context) {
	defer c.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.persistKick:
			if err := c.persistAsync(); err != nil {
				c.log.Warn("write health state file", zap.String("file", c.stateFile), zap.Error(err))
			}
			if !sleepCtx(ctx, MinPersistInterval) {
				return
			}
		}
	}
}
