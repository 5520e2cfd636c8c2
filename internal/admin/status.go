package admin

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// Endpoint and region states shown by the status API and page.
const (
	StateUp       = "up"
	StateDown     = "down"
	StateDrained  = "drained"
	StateEjected  = "ejected"
	StateDegraded = "degraded" // regions only: some pool of the region is down
	StateUnknown  = "unknown"  // no health snapshot yet
)

// StatusDocument is the JSON body of GET /api/v1/status. Field names are
// snake_case and stable; lists are sorted by name.
type StatusDocument struct {
	GeneratedAt  time.Time        `json:"generated_at"`
	Ready        bool             `json:"ready"`
	ReadyReason  string           `json:"ready_reason,omitempty"`
	Config       ConfigInfo       `json:"config"`
	LastReload   *ReloadInfo      `json:"last_reload,omitempty"`
	Health       HealthInfo       `json:"health"`
	Regions      []RegionStatus   `json:"regions"`
	Pools        []PoolStatus     `json:"pools"`
	Services     []ServiceStatus  `json:"services"`
	Transitions  []TransitionInfo `json:"transitions"`
	AdminActions []Action         `json:"admin_actions"`
}

// ConfigInfo describes the config in use.
type ConfigInfo struct {
	Source   string    `json:"source"`
	Version  string    `json:"version"`
	LoadedAt time.Time `json:"loaded_at"`
	Demo     bool      `json:"demo"`
}

// ReloadInfo is the outcome of the last reload attempt.
type ReloadInfo struct {
	At      time.Time     `json:"at"`
	Trigger string        `json:"trigger,omitempty"`
	OK      bool          `json:"ok"`
	Error   string        `json:"error,omitempty"`
	Errors  []ConfigError `json:"errors,omitempty"`
}

// ConfigError is one problem of an invalid config.
type ConfigError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// HealthInfo describes the health snapshot the status was built from.
type HealthInfo struct {
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Ready   bool      `json:"ready"`
}

// RegionStatus is one region and its health across pools.
type RegionStatus struct {
	Name        string             `json:"name"`
	Description string             `json:"description,omitempty"`
	Latitude    float64            `json:"latitude"`
	Longitude   float64            `json:"longitude"`
	State       string             `json:"state"`
	Drain       *health.Override   `json:"drain,omitempty"`
	Pools       []RegionPoolStatus `json:"pools"`
}

// RegionPoolStatus is a region's health for one pool.
type RegionPoolStatus struct {
	Pool       string `json:"pool"`
	Up         bool   `json:"up"`
	UpCount    int    `json:"up_endpoints"`
	Total      int    `json:"total_endpoints"`
	MinHealthy int    `json:"min_healthy"`
}

// PoolStatus is one pool and its endpoints.
type PoolStatus struct {
	Name       string           `json:"name"`
	MinHealthy int              `json:"min_healthy"`
	CheckType  string           `json:"check_type"`
	Interval   string           `json:"check_interval"`
	Endpoints  []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is one endpoint's configuration and health.
type EndpointStatus struct {
	Name           string           `json:"name"`
	Region         string           `json:"region"`
	Address        string           `json:"address"`
	Port           uint16           `json:"port"`
	Weight         int              `json:"weight"`
	State          string           `json:"state"`
	Healthy        bool             `json:"healthy"`
	Drained        bool             `json:"drained"`
	Ejected        bool             `json:"ejected"`
	Since          *time.Time       `json:"since,omitempty"`
	LastCheck      *time.Time       `json:"last_check,omitempty"`
	LastResult     string           `json:"last_result,omitempty"`
	LastError      string           `json:"last_error,omitempty"`
	LastDurationMs float64          `json:"last_duration_ms"`
	Successes      int              `json:"consecutive_successes"`
	Failures       int              `json:"consecutive_failures"`
	Drain          *health.Override `json:"drain,omitempty"`
}

// ServiceStatus is one service and the region it prefers right now.
type ServiceStatus struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Zone            string           `json:"zone"`
	Pool            string           `json:"pool"`
	Policy          string           `json:"policy"`
	Regions         []string         `json:"regions,omitempty"`
	TTL             uint32           `json:"ttl"`
	PreferredRegion string           `json:"preferred_region"`
	Reason          string           `json:"reason,omitempty"`
	AllDown         bool             `json:"all_down"`
	Degraded        bool             `json:"degraded"`
	Targets         []routing.Target `json:"targets"`
}

// TransitionInfo is one recent health transition.
type TransitionInfo = health.Transition

// MaxStatusTransitions bounds the transitions shown, newest first.
const MaxStatusTransitions = 50

// buildStatus turns the Backend's view into the status document.
func buildStatus(st Status, ready bool, reason string, actions []Action, now time.Time) StatusDocument {
	doc := StatusDocument{
		GeneratedAt:  now.UTC(),
		Ready:        ready,
		ReadyReason:  reason,
		Config:       ConfigInfo{Version: st.ConfigVersion, LoadedAt: st.LoadedAt.UTC()},
		Regions:      []RegionStatus{},
		Pools:        []PoolStatus{},
		Services:     []ServiceStatus{},
		Transitions:  []TransitionInfo{},
		AdminActions: actions,
	}
	if doc.AdminActions == nil {
		doc.AdminActions = []Action{}
	}
	if !st.LastReload.At.IsZero() {
		doc.LastReload = reloadInfo(st.LastReload)
	}
	snap := st.Health
	if snap != nil {
		doc.Health = HealthInfo{Version: snap.Version, Time: snap.Time.UTC(), Ready: snap.Ready}
		n := len(snap.Transitions)
		for i := n - 1; i >= 0 && n-i <= MaxStatusTransitions; i-- {
			doc.Transitions = append(doc.Transitions, snap.Transitions[i])
		}
	}
	cfg := st.Config
	if cfg == nil {
		return doc
	}
	doc.Config.Source = cfg.Source
	doc.Config.Demo = cfg.Demo

	for _, name := range slices.Sorted(maps.Keys(cfg.Pools)) {
		doc.Pools = append(doc.Pools, poolStatus(cfg.Pools[name], snap))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Regions)) {
		doc.Regions = append(doc.Regions, regionStatus(cfg, cfg.Regions[name], name, snap))
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		svc := cfg.Services[id]
		ss := ServiceStatus{
			ID: id, Name: svc.Name, Zone: svc.Zone, Pool: svc.Pool, Policy: svc.Policy,
			Regions: svc.Regions, TTL: svc.TTL, Targets: []routing.Target{},
		}
		if d, ok := st.Preferred[id]; ok {
			ss.PreferredRegion = d.Region
			ss.Reason = d.Reason
			ss.AllDown = d.AllDown
			ss.Degraded = d.Degraded
			if d.Targets != nil {
				ss.Targets = d.Targets
			}
			if ss.PreferredRegion == "" {
				ss.PreferredRegion = spannedRegions(d.Targets)
			}
		}
		doc.Services = append(doc.Services, ss)
	}
	return doc
}

// spannedRegions names the regions of targets of a decision that spans
// regions, as "east+west".
func spannedRegions(ts []routing.Target) string {
	var rs []string
	for _, t := range ts {
		if !slices.Contains(rs, t.Region) {
			rs = append(rs, t.Region)
		}
	}
	sort.Strings(rs)
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "+"
		}
		out += r
	}
	return out
}

func reloadInfo(r ReloadResult) *ReloadInfo {
	ri := &ReloadInfo{At: r.At.UTC(), Trigger: r.Trigger, OK: r.Err == nil}
	if r.Err != nil {
		ri.Error = r.Err.Error()
		ri.Errors = configErrors(r.Err)
	}
	return ri
}

// configErrors lists the problems of a *config.Errors inside err.
func configErrors(err error) []ConfigError {
	var ce *config.Errors
	if !errors.As(err, &ce) {
		return nil
	}
	out := make([]ConfigError, 0, len(ce.List))
	for _, e := range ce.List {
		file := e.File
		if file == "" {
			file = ce.File
		}
		out = append(out, ConfigError{File: file, Line: e.Line, Path: e.Path, Message: e.Msg})
	}
	return out
}

func poolStatus(p *config.Pool, snap *health.Snapshot) PoolStatus {
	ps := PoolStatus{
		Name: p.Name, MinHealthy: p.MinHealthy, CheckType: p.Check.Type,
		Interval: p.Check.Interval.String(), Endpoints: []EndpointStatus{},
	}
	for _, e := range p.Endpoints {
		es := EndpointStatus{
			Name: e.Name, Region: e.Region, Address: e.Address.Addr.String(), Port: e.Port, Weight: e.Weight,
			State: StateUnknown,
		}
		if snap != nil {
			if st, ok := snap.Endpoint(p.Name, e.Name); ok {
				es.State = endpointState(st)
				es.Healthy, es.Drained, es.Ejected = st.Healthy, st.Drained, st.Ejected
				es.Since = timePtr(st.Since)
				es.LastCheck = timePtr(st.LastCheck)
				es.LastResult, es.LastError = st.LastResult, st.LastError
				es.LastDurationMs = float64(st.LastDuration.Microseconds()) / 1000
				es.Successes, es.Failures = st.Successes, st.Failures
			}
			if o, ok := snap.DrainedEndpoints[health.EndpointKey{Pool: p.Name, Endpoint: e.Name}]; ok {
				es.Drain = &o
				es.Drained = true
				es.State = StateDrained
			} else if o, ok := snap.DrainedRegions[e.Region]; ok {
				es.Drain = &o
				es.Drained = true
				es.State = StateDrained
			}
		}
		ps.Endpoints = append(ps.Endpoints, es)
	}
	return ps
}

// endpointState names an endpoint's state; drains win over ejection,
// ejection over probe health.
func endpointState(st health.EndpointState) string {
	switch {
	case st.Drained:
		return StateDrained
	case st.Ejected:
		return StateEjected
	case st.Healthy:
		return StateUp
	default:
		return StateDown
	}
}

func regionStatus(cfg *config.Config, r *config.Region, name string, snap *health.Snapshot) RegionStatus {
	rs := RegionStatus{
		Name: name, Description: r.Description, Latitude: r.Latitude, Longitude: r.Longitude,
		State: StateUnknown, Pools: []RegionPoolStatus{},
	}
	if snap == nil {
		return rs
	}
	if o, ok := snap.DrainedRegions[name]; ok {
		rs.Drain = &o
	}
	up, total := 0, 0
	for _, pn := range slices.Sorted(maps.Keys(cfg.Pools)) {
		p := cfg.Pools[pn]
		rp := RegionPoolStatus{Pool: pn, MinHealthy: p.MinHealthy}
		for _, e := range p.Endpoints {
			if e.Region != name {
				continue
			}
			rp.Total++
			if snap.Up(pn, e.Name) {
				rp.UpCount++
			}
		}
		if rp.Total == 0 {
			continue
		}
		rp.Up = snap.RegionUp(p, name)
		total++
		if rp.Up {
			up++
		}
		rs.Pools = append(rs.Pools, rp)
	}
	switch {
	case rs.Drain != nil:
		rs.State = StateDrained
	case total == 0:
		rs.State = StateUnknown
	case up == total:
		rs.State = StateUp
	case up == 0:
		rs.State = StateDown
	default:
		rs.State = StateDegraded
	}
	return rs
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
