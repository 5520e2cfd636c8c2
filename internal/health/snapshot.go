// Package health probes every pool's endpoints (HTTP, HTTPS, TCP, DNS),
// applies rise/fall thresholds and manual drains, and publishes immutable,
// versioned Snapshots that the DNS server, proxy and admin API read
// without locks.
package health

import (
	"net/netip"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// EndpointKey identifies an endpoint within a pool.
type EndpointKey struct {
	Pool     string
	Endpoint string
}

// EndpointState is the health of one endpoint at the time of a Snapshot.
type EndpointState struct {
	Pool     string
	Endpoint string
	Region   string
	Address  netip.Addr
	// Healthy is the probe verdict after rise/fall thresholds.
	Healthy bool
	// Drained is true when the endpoint or its region is drained by an operator.
	Drained bool
	// Ejected is true while the proxy's passive outlier detection has the
	// endpoint ejected and feeds that into the shared health view.
	Ejected bool
	// Since is when Healthy last changed (or when checking started).
	Since time.Time
	// LastCheck is the time of the last completed probe (zero before the first).
	LastCheck time.Time
	// LastResult is a short verdict of the last probe: "ok", "status 503",
	// "timeout", "connection refused", "body mismatch", ...
	LastResult string
	// LastError is the full error text of the last failed probe.
	LastError string
	// LastDuration is how long the last probe took.
	LastDuration time.Duration
	// Successes and Failures count consecutive probe results.
	Successes int
	Failures  int
}

// Up reports whether the endpoint may receive traffic: healthy, not
// drained and not ejected.
func (e EndpointState) Up() bool { return e.Healthy && !e.Drained && !e.Ejected }

// Override is an operator's manual action (a drain).
type Override struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Snapshot is an immutable view of every endpoint's health. Never modify a
// Snapshot obtained from a Source.
type Snapshot struct {
	// Version increases with every published change.
	Version uint64
	// Time is when the snapshot was published.
	Time time.Time
	// Ready is true once every endpoint has had its first probe result (or
	// was started warm from the state file).
	Ready bool
	// Endpoints holds every configured endpoint's state.
	Endpoints map[EndpointKey]EndpointState
	// DrainedRegions and DrainedEndpoints hold manual overrides.
	DrainedRegions   map[string]Override
	DrainedEndpoints map[EndpointKey]Override
	// Transitions lists recent state changes, oldest first (bounded).
	Transitions []Transition
}

// Transition is one change of an endpoint's or region's state.
type Transition struct {
	At       time.Time `json:"at"`
	Pool     string    `json:"pool,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	Region   string    `json:"region"`
	// From and To are "up", "down", "drained" or "ejected".
	From string `json:"from"`
	To   string `json:"to"`
	// Reason says why: "status 503", "timeout", "drained by admin", ...
	Reason string `json:"reason"`
}

// Endpoint returns the state of one endpoint; ok is false when unknown.
func (s *Snapshot) Endpoint(pool, endpoint string) (EndpointState, bool) {
	st, ok := s.Endpoints[EndpointKey{pool, endpoint}]
	return st, ok
}

// Up reports whether an endpoint may receive traffic. Unknown endpoints
// are down.
func (s *Snapshot) Up(pool, endpoint string) bool {
	st, ok := s.Endpoint(pool, endpoint)
	return ok && st.Up()
}

// RegionUp reports whether at least p.MinHealthy of the pool's endpoints in
// region are up, and the region is not drained.
func (s *Snapshot) RegionUp(p *config.Pool, region string) bool {
	if _, drained := s.DrainedRegions[region]; drained {
		return false
	}
	n := 0
	for _, e := range p.Endpoints {
		if e.Region == region && s.Up(p.Name, e.Name) {
			n++
		}
	}
	return n >= p.MinHealthy
}

// Source publishes snapshots. Snapshot never blocks and never returns nil.
type Source interface {
	Snapshot() *Snapshot
}

// StaticSource returns a Source whose single snapshot has every endpoint
// of cfg healthy. It serves tests and configs without health checks.
func StaticSource(cfg *config.Config) Source {
	return staticSource{snap: AllHealthy(cfg, time.Now())}
}

type staticSource struct{ snap *Snapshot }

func (s staticSource) Snapshot() *Snapshot { return s.snap }

// AllHealthy builds a snapshot of cfg with every endpoint healthy.
func AllHealthy(cfg *config.Config, now time.Time) *Snapshot {
	snap := &Snapshot{
		Version:          1,
		Time:             now,
		Ready:            true,
		Endpoints:        map[EndpointKey]EndpointState{},
		DrainedRegions:   map[string]Override{},
		DrainedEndpoints: map[EndpointKey]Override{},
	}
	for _, p := range cfg.Pools {
		for _, e := range p.Endpoints {
			snap.Endpoints[EndpointKey{p.Name, e.Name}] = EndpointState{
				Pool: p.Name, Endpoint: e.Name, Region: e.Region, Address: e.Address.Addr,
				Healthy: true, Since: now, LastResult: "assumed healthy",
			}
		}
	}
	return snap
}
