// Package routing decides which endpoints answer for a service: the one
// decision engine shared by the DNS server, the proxy and the admin API.
// Decisions are pure functions of (config, health snapshot, client location).
package routing

import (
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
)

// Query is what a decision is asked for.
type Query struct {
	// Client is the address the answer is for: the ECS address when present,
	// else the query's source address. It may be invalid (unknown client).
	Client netip.Addr
	// SourcePrefix is the ECS source prefix length, or Client.BitLen() when
	// the address is the query's own source.
	SourcePrefix int
	// QType is dns.TypeA or dns.TypeAAAA; 0 asks for both families.
	QType uint16
}

// Target is one endpoint chosen by a decision.
type Target struct {
	Pool     string     `json:"pool"`
	Endpoint string     `json:"endpoint"`
	Region   string     `json:"region"`
	Addr     netip.Addr `json:"address"`
	Port     uint16     `json:"port"`
}

// Decision is the outcome of routing one query for one service.
type Decision struct {
	Service string `json:"service"`
	// Region is the region chosen ("" when the answer spans regions).
	Region string `json:"region"`
	// Targets are the endpoints answered, in order.
	Targets []Target `json:"targets"`
	// Fallback holds configured fallback addresses answered instead of
	// targets (when_all_down: fallback).
	Fallback []netip.Addr `json:"fallback,omitempty"`
	// TTL of the answer (shortened while degraded).
	TTL uint32 `json:"ttl"`
	// Scope is the ECS SCOPE PREFIX-LENGTH: the widest prefix for which the
	// answer is the same (0 when it does not depend on the client).
	Scope int `json:"scope"`
	// Reason names the rule that won: "geo_map", "cidr_map", "nearest",
	// "failover", "weighted", "all", "fail_open", "fallback", "fail_closed".
	Reason string `json:"reason"`
	// AllDown is true when no region had a healthy endpoint.
	AllDown bool `json:"all_down"`
	// Degraded is true when some endpoint of the pool is down.
	Degraded bool `json:"degraded"`
	// Location is where the client was placed.
	Location geo.Location `json:"location"`
	// Trace explains the decision step by step, for humans.
	Trace []string `json:"trace"`
	// SnapshotVersion is the health snapshot the decision was made from.
	SnapshotVersion uint64 `json:"snapshot_version"`
}

// Addrs returns the addresses to answer for qtype (A or AAAA).
func (d *Decision) Addrs(qtype uint16) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		if (qtype == dns.TypeA && a.Is4()) || (qtype == dns.TypeAAAA && a.Is6()) || qtype == 0 {
			out = append(out, a)
		}
	}
	if len(d.Fallback) > 0 {
		for _, a := range d.Fallback {
			add(a)
		}
		return out
	}
	for _, t := range d.Targets {
		add(t.Addr)
	}
	return out
}

// Engine makes decisions for one config. A reload builds a new Engine.
type Engine struct {
	cfg    *config.Config
	health health.Source
	geo    geo.Locator
}

// New returns an Engine for cfg reading health from h and locating
// clients with loc (geo.Nowhere{} when none).
func New(cfg *config.Config, h health.Source, loc geo.Locator) *Engine {
	if loc == nil {
		loc = geo.Nowhere{}
	}
	return &Engine{cfg: cfg, health: h, geo: loc}
}

// Config returns the engine's config.
func (e *Engine) Config() *config.Config { return e.cfg }

// Health returns the engine's health source.
func (e *Engine) Health() health.Source { return e.health }

// Decide routes a query for the service with the given ID. An unknown
// service yields a Decision with no targets and Reason "unknown_service".
func (e *Engine) Decide(serviceID string, q Query) Decision {
	svc := e.cfg.Services[serviceID]
	if svc == nil {
		return Decision{Service: serviceID, Reason: "unknown_service"}
	}
	snap := e.health.Snapshot()
	pool := e.cfg.Pools[svc.Pool]
	d := Decision{Service: serviceID, TTL: svc.TTL, Reason: "all", SnapshotVersion: snap.Version}
	var all []Target
	for _, ep := range pool.Endpoints {
		t := Target{Pool: pool.Name, Endpoint: ep.Name, Region: ep.Region, Addr: ep.Address.Addr, Port: ep.Port}
		all = append(all, t)
		if snap.Up(pool.Name, ep.Name) {
			d.Targets = append(d.Targets, t)
		} else {
			d.Degraded = true
		}
	}
	if len(d.Targets) == 0 {
		d.AllDown = true
		d.Reason = "fail_open"
		d.Targets = all
	}
	return d
}

// Upstreams orders the service's up endpoints for the proxy: those of
// localRegion first while it is up, then the other regions.
func (e *Engine) Upstreams(serviceID, localRegion string) Decision {
	d := e.Decide(serviceID, Query{})
	var local, other []Target
	for _, t := range d.Targets {
		if t.Region == localRegion {
			local = append(local, t)
		} else {
			other = append(other, t)
		}
	}
	d.Targets = append(local, other...)
	return d
}
