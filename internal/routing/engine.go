// Package routing decides which endpoints answer for a service: the one
// decision engine shared by the DNS server, the proxy and the admin API.
// Decisions are pure functions of (config, health snapshot, client location).
//
// Each policy orders the service's regions; the first eligible region
// answers. A region is eligible when health.Snapshot.RegionUp holds for it
// (min_healthy endpoints up, region not drained) and it has an up endpoint
// of the queried family (A and AAAA are decided alike, each over its own
// endpoints).
//
//   - geo: the first matching geo_map rule (cidr, continent, country,
//     country+subdivision) gives its regions first; then the service's
//     regions: the region a CIDR map placed the client in, then the rest
//     nearest first by great-circle distance × (1 − bias/100) (Route53's
//     geoproximity formula), or in configured order when the client has no
//     coordinates (Reason "default").
//   - failover: the service's regions in configured order.
//   - weighted: regions with a positive weight ordered by weighted
//     rendezvous hash of the client network (the client address masked to
//     dns.ecs.max_scope_v4/v6, 24/56 by default), then unweighted service
//     regions. The split is deterministic per client network, not random
//     per query: a resolver caches one stable answer, the ECS scope is
//     exactly the hashed prefix, every gslb instance answers alike, and
//     when a region goes down only its networks move. Traffic splits by
//     weight across client networks, so a few very large resolvers skew it.
//   - all: the up endpoints of every eligible service region.
//
// Within a region the up endpoints answer in weight order (highest first,
// then pool order); endpoints of weight 0 are standbys used only when no
// endpoint of positive weight is up. When max_records is smaller than that
// list, max_records endpoints are chosen by weighted rendezvous hash of the
// client network (which then bounds the scope).
//
// When no region is eligible the service's when_all_down applies:
// fail_open answers every configured endpoint of the family, fallback the
// configured fallback addresses, fail_closed nothing (NODATA, never
// NXDOMAIN). A service with no endpoint of the queried family at all
// answers NODATA with Reason "nodata" and is not "all down". The TTL is
// Service.TTL, or Service.DegradedTTL while any endpoint of the service's
// regions is down or drained, and when all are down.
//
// Decide runs per DNS query: it reads a per-snapshot health view computed
// once per service, allocates only the answer, and formats nothing.
// Explain replays the same decision with a trace and candidate table.
package routing

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
)

// Query is what a decision is asked for.
type Query struct {
	// Client is the address the answer is for: the ECS address when present,
	// else the query's source address. It may be invalid (unknown client);
	// the unspecified address (0.0.0.0, ::, as sent with an ECS source
	// prefix of 0) is taken as unknown too.
	Client netip.Addr `json:"client"`
	// SourcePrefix is the ECS source prefix length, or Client.BitLen() when
	// the address is the query's own source. Client is masked to it; 0 or a
	// value beyond the address length means the whole address.
	SourcePrefix int `json:"source_prefix"`
	// QType is dns.TypeA or dns.TypeAAAA; 0 asks for both families.
	QType uint16 `json:"qtype"`
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
	// Policy is the service's policy (geo, failover, weighted, all).
	Policy string `json:"policy,omitempty"`
	// Query is the query decided, as given.
	Query Query `json:"query"`
	// Region is the region chosen ("" when the answer spans regions).
	Region string `json:"region"`
	// Targets are the endpoints answered, in order. Each Decision has its
	// own slice.
	Targets []Target `json:"targets"`
	// Fallback holds configured fallback addresses answered instead of
	// targets (when_all_down: fallback).
	Fallback []netip.Addr `json:"fallback,omitempty"`
	// TTL of the answer (shortened while degraded).
	TTL uint32 `json:"ttl"`
	// Scope is the ECS SCOPE PREFIX-LENGTH: the widest prefix for which the
	// answer is the same (0 when it does not depend on the client). See
	// the package documentation of scopes in scope.go. The DNS server caps
	// it (dns.ecs.max_scope_v4/v6).
	Scope int `json:"scope"`
	// Reason names the rule that won: "geo_map", "cidr_map", "nearest",
	// "default", "failover", "weighted", "all", "fail_open", "fallback",
	// "fail_closed", "nodata", "local" or "unknown_service" (the Reason*
	// constants).
	Reason string `json:"reason"`
	// AllDown is true when no region had a healthy endpoint.
	AllDown bool `json:"all_down"`
	// Degraded is true when some endpoint of the pool is down.
	Degraded bool `json:"degraded"`
	// Location is where the client was placed.
	Location geo.Location `json:"location"`
	// Candidates are the regions considered, with distances and health, in
	// the order tried. Only Explain fills them.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Trace explains the decision step by step, for humans. Only Explain
	// fills it.
	Trace []string `json:"trace"`
	// SnapshotVersion is the health snapshot the decision was made from.
	SnapshotVersion uint64 `json:"snapshot_version"`
}

// Candidate is one region as Explain saw it.
type Candidate struct {
	Region string `json:"region"`
	// DistanceKm is the great-circle distance from the client (geo policy
	// with a located client; else -1), BiasedKm the distance after the
	// region's bias.
	DistanceKm float64 `json:"distance_km"`
	BiasedKm   float64 `json:"biased_km"`
	Bias       int     `json:"bias,omitempty"`
	Weight     int     `json:"weight,omitempty"`
	// Up is health.Snapshot.RegionUp; Eligible adds that the region has an
	// up endpoint of the queried family.
	Up          bool `json:"up"`
	Eligible    bool `json:"eligible"`
	Drained     bool `json:"drained,omitempty"`
	UpEndpoints int  `json:"up_endpoints"`
	Endpoints   int  `json:"endpoints"`
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

// Deps are the Engine's injected dependencies; zero values are replaced by
// a no-op logger and a fresh registry. The caller names the logger (e.g.
// log.Named("routing")).
type Deps struct {
	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Engine makes decisions for one config. A reload builds a new Engine.
type Engine struct {
	cfg      *config.Config
	health   health.Source
	geo      geo.Locator
	log      *zap.Logger
	services map[string]*compiledService
	byName   map[string]*config.Service
	hashV4   int
	hashV6   int
}

// New returns an Engine for cfg reading health from h and locating
// clients with loc (geo.Nowhere{} when none). It is NewWithDeps with no
// dependencies.
func New(cfg *config.Config, h health.Source, loc geo.Locator) *Engine {
	return NewWithDeps(cfg, h, loc, Deps{})
}

// NewWithDeps returns an Engine for cfg reading health from h (every
// endpoint healthy when nil) and locating clients with loc (geo.Nowhere{}
// when nil), counting decisions in deps.Registry.
func NewWithDeps(cfg *config.Config, h health.Source, loc geo.Locator, deps Deps) *Engine {
	if loc == nil {
		loc = geo.Nowhere{}
	}
	if h == nil {
		h = health.StaticSource(cfg)
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	m := newEngineMetrics(deps.Registry)
	e := &Engine{
		cfg:      cfg,
		health:   h,
		geo:      loc,
		log:      deps.Logger,
		services: map[string]*compiledService{},
		byName:   map[string]*config.Service{},
		hashV4:   cfg.DNS.ECS.MaxScopeV4,
		hashV6:   cfg.DNS.ECS.MaxScopeV6,
	}
	for id, svc := range cfg.Services {
		if svc == nil {
			continue
		}
		cs := compileService(cfg, svc)
		cs.metrics = newServiceMetrics(m, id, cs.regions)
		e.services[id] = cs
		if svc.Name != "" {
			e.byName[canonicalName(svc.Name)] = svc
		}
	}
	return e
}

// Config returns the engine's config.
func (e *Engine) Config() *config.Config { return e.cfg }

// Health returns the engine's health source.
func (e *Engine) Health() health.Source { return e.health }

// SnapshotVersion returns the version of the health snapshot decisions
// are made from now (Decision.SnapshotVersion of a decision made now).
func (e *Engine) SnapshotVersion() uint64 { return e.snapshot().Version }

// Locator returns the engine's locator.
func (e *Engine) Locator() geo.Locator { return e.geo }

// ServiceForName returns the service whose owner name is fqdn (compared
// case-insensitively, trailing dot optional), or nil.
func (e *Engine) ServiceForName(fqdn string) *config.Service {
	return e.byName[canonicalName(fqdn)]
}

func canonicalName(s string) string {
	s = strings.ToLower(s)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// Decide routes a query for the service with the given ID. An unknown
// service yields a Decision with no targets and Reason "unknown_service".
// Decide is the per-query hot path: it counts the decision in the metrics
// but builds no trace (see Explain).
func (e *Engine) Decide(serviceID string, q Query) Decision {
	cs := e.services[serviceID]
	if cs == nil {
		return Decision{Service: serviceID, Query: q, Reason: ReasonUnknownService}
	}
	return e.decide(cs, q, nil)
}

// Explain makes the same decision as Decide would from the same snapshot,
// with a human-readable Trace and the Candidates considered. It does not
// count in metrics. For policies that do not use the client's location it
// still locates the client, for display only.
func (e *Engine) Explain(serviceID string, q Query) Decision {
	tr := &tracer{}
	cs := e.services[serviceID]
	if cs == nil {
		tr.add("no service %q is configured", serviceID)
		return Decision{Service: serviceID, Query: q, Reason: ReasonUnknownService, Trace: tr.lines}
	}
	d := e.decide(cs, q, tr)
	d.Trace = tr.lines
	return d
}
