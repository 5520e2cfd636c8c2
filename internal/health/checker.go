package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// Named defaults and bounds of the Checker.
const (
	// DefaultDetailInterval bounds how often probe details alone (last
	// check time, duration, counters) republish the snapshot. Changes of
	// health, readiness, drains, ejections and the probe verdict publish at
	// once.
	DefaultDetailInterval = time.Second
	// DefaultMinPublishInterval bounds how often probe results publish
	// snapshots: building one copies every endpoint's state, so with
	// thousands of endpoints results are coalesced. Operator actions,
	// ejections and reloads publish at once.
	DefaultMinPublishInterval = 20 * time.Millisecond
	// MinPersistInterval bounds how often health changes are written to
	// the state file (operator actions are written at once).
	MinPersistInterval = 100 * time.Millisecond
	// resultsBuffer is the capacity of the probe results queue.
	resultsBuffer = 256
	// MaxTransitions is the number of recent transitions kept in snapshots.
	MaxTransitions = 100
)

// Deps are the Checker's injected dependencies. Every field is optional.
type Deps struct {
	// Logger receives one event per transition and per operator action
	// (default: no logging).
	Logger *zap.Logger
	// Registry receives the health metrics (default: a fresh registry).
	Registry prometheus.Registerer
	// Clock schedules probes (default: RealClock).
	Clock Clock
	// DetailInterval overrides DefaultDetailInterval when positive.
	DetailInterval time.Duration
	// MinPublishInterval overrides DefaultMinPublishInterval when positive.
	MinPublishInterval time.Duration
}

// Checker probes every endpoint of every pool, applies rise/fall
// thresholds, drains and passive ejections, persists overrides and last
// known health to the state file, and publishes immutable Snapshots.
// Checker implements Source. All methods are safe for concurrent use.
type Checker struct {
	log         *zap.Logger
	clock       Clock
	metrics     *metrics
	detailEvery time.Duration
	publishGap  time.Duration
	stateFile   string

	snap    atomic.Pointer[Snapshot]
	changed atomic.Pointer[chan struct{}]

	mu               sync.Mutex
	cfg              *config.Config
	eps              map[EndpointKey]*endpoint
	drainedRegions   map[string]Override
	drainedEndpoints map[EndpointKey]Override
	known            map[EndpointKey]knownEndpoint
	transitions      []Transition
	regionUp         map[[2]string]bool
	endpointGauges   map[[3]string]bool
	version          uint64
	dirty            bool
	readyOnce        bool   // every endpoint had a result once
	gen              uint64 // bumped on every change worth persisting
	running          bool
	runCtx           context.Context
	wg               sync.WaitGroup
	onProbe          func(EndpointKey, Result) // test hook, called under mu

	results chan outcome // probe results to applyLoop

	persistMu    sync.Mutex
	persistedGen uint64
	persistKick  chan struct{}
}

// NewChecker builds a Checker for cfg, loading overrides and last known
// health from cfg.StateFile. A corrupt state file is an error naming the
// file. Probing starts with Run.
func NewChecker(cfg *config.Config, deps Deps) (*Checker, error) {
	if cfg == nil {
		return nil, errors.New("new health checker: nil config")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Clock == nil {
		deps.Clock = RealClock{}
	}
	if deps.DetailInterval <= 0 {
		deps.DetailInterval = DefaultDetailInterval
	}
	if deps.MinPublishInterval <= 0 {
		deps.MinPublishInterval = DefaultMinPublishInterval
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, fmt.Errorf("new health checker: %w", err)
	}
	c := &Checker{
		log:              deps.Logger,
		clock:            deps.Clock,
		metrics:          newMetrics(deps.Registry),
		detailEvery:      deps.DetailInterval,
		publishGap:       deps.MinPublishInterval,
		stateFile:        cfg.StateFile,
		cfg:              cfg,
		eps:              map[EndpointKey]*endpoint{},
		drainedRegions:   st.DrainedRegions,
		drainedEndpoints: map[EndpointKey]Override{},
		known:            map[EndpointKey]knownEndpoint{},
		regionUp:         map[[2]string]bool{},
		endpointGauges:   map[[3]string]bool{},
		results:          make(chan outcome, resultsBuffer),
		persistKick:      make(chan struct{}, 1),
	}
	for _, d := range st.DrainedEndpoints {
		c.drainedEndpoints[EndpointKey{d.Pool, d.Endpoint}] = d.Override
	}
	for _, k := range st.Endpoints {
		c.known[EndpointKey{k.Pool, k.Endpoint}] = k
	}
	ch := make(chan struct{})
	c.changed.Store(&ch)
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range sortedPools(cfg) {
		for _, ep := range p.Endpoints {
			e := c.newEndpointLocked(p, ep, now)
			c.eps[e.key] = e
		}
	}
	for r, o := range c.drainedRegions {
		c.log.Info("region drained (from state file)", zap.String("region", r),
			zap.String("by", o.By), zap.String("reason", o.Reason), zap.Time("at", o.At))
	}
	for k, o := range c.drainedEndpoints {
		c.log.Info("endpoint drained (from state file)", zap.String("pool", k.Pool),
			zap.String("endpoint", k.Endpoint), zap.String("by", o.By), zap.String("reason", o.Reason))
	}
	c.publishLocked(now)
	return c, nil
}

// Snapshot returns the latest published snapshot. It never blocks and
// never returns nil. The snapshot must not be modified.
func (c *Checker) Snapshot() *Snapshot { return c.snap.Load() }

// Changes returns a channel that is closed when the next snapshot is
// published. Call it again after it fires to wait for the following one.
func (c *Checker) Changes() <-chan struct{} { return *c.changed.Load() }

// Wait returns the first snapshot whose Version is greater than after,
// waiting for it until ctx is done.
func (c *Checker) Wait(ctx context.Context, after uint64) (*Snapshot, error) {
	for {
		ch := c.Changes()
		if s := c.snap.Load(); s.Version > after {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Config returns the config the Checker currently runs.
func (c *Checker) Config() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Run probes every endpoint until ctx is done. When it returns, every
// goroutine the Checker started has stopped and the latest health has been
// written to the state file. It returns nil after ctx is done, or an error
// when the Checker is already running.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("health checker already running")
	}
	c.running = true
	c.runCtx = ctx
	for _, e := range c.eps {
		c.startLocked(e)
	}
	c.wg.Add(2)
	go c.persistLoop(ctx)
	go c.applyLoop(ctx)
	c.mu.Unlock()

	<-ctx.Done()

	c.mu.Lock()
	for _, e := range c.eps {
		e.stop()
	}
	c.running = false
	c.runCtx = nil
	if c.dirty {
		c.publishLocked(c.clock.Now())
	}
	c.mu.Unlock()
	c.wg.Wait()
	if err := c.persistAsync(); err != nil {
		c.log.Warn("write health state file", zap.String("file", c.stateFile), zap.Error(err))
	}
	return nil
}
