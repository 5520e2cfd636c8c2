package proxy

import (
	"fmt"
	"slices"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/routing"
)

// Router orders a service's upstream endpoints for the proxy: up endpoints
// of localRegion first while it is up, then the next regions; every
// configured endpoint when all are down (fail open). routing.Engine
// implements it.
type Router interface {
	Upstreams(serviceID, localRegion string) routing.Decision
}

// runtime is everything one config generation needs to serve requests. It
// is immutable once built; Swap replaces it atomically while requests in
// flight finish on the one they started with.
type runtime struct {
	px      *config.ProxyConfig
	router  Router
	routes  *routeTable
	reg     *registry
	limiter *clientLimiter // nil when rate limiting is disabled
	trusted trustedNets
	tr      *transports
	outlier *outlier
	least   bool // least_in_flight instead of round_robin
}

// newRuntime builds a runtime for cfg, carrying over upstream state, rate
// limiters and transports from old where they still apply.
func (s *Server) newRuntime(cfg *config.Config, router Router, old *runtime) (*runtime, error) {
	px := cfg.Proxy
	if px == nil {
		return nil, fmt.Errorf("proxy: config has no proxy section")
	}
	if router == nil {
		return nil, fmt.Errorf("proxy: nil router")
	}
	rt := &runtime{
		px:     px,
		router: router,
		routes: newRouteTable(px.Routes),
		least:  px.LoadBalancing == "least_in_flight",
	}
	var oldReg *registry
	if old != nil {
		oldReg = old.reg
	}
	rt.reg = newRegistry(cfg, px.UpstreamScheme, oldReg)
	for _, p := range px.TrustedProxies {
		rt.trusted = append(rt.trusted, p.Prefix)
	}
	if old != nil && old.px.RateLimit == px.RateLimit {
		rt.limiter = old.limiter
	} else {
		l, err := newClientLimiter(px.RateLimit)
		if err != nil {
			return nil, fmt.Errorf("proxy: build rate limiter: %w", err)
		}
		rt.limiter = l
	}
	if old != nil && old.tr.compatible(px) {
		rt.tr = old.tr
	} else {
		rt.tr = newTransports(px)
	}
	var feed HealthFeed
	if px.FeedHealth {
		feed = s.deps.HealthFeed
	}
	rt.outlier = &outlier{cfg: px.Outlier, now: s.now, feed: feed, health: s.deps.Health, log: s.log, m: s.m}
	return rt, nil
}

// maxPerUpstream is the concurrency limit per upstream (0 = unlimited).
func (rt *runtime) maxPerUpstream() int64 { return int64(rt.px.Limits.MaxConcurrentPerUpstream) }

// pickResult says why pick returned no upstream.
type pickResult int

const (
	picked   pickResult = iota
	noneLeft            // every target was tried already (or there are none)
	allBusy             // every remaining target is at MaxConcurrentPerUpstream
)

// maxCandidates bounds the stack buffers used by pick; larger pools still
// work, with a heap allocation.
const maxCandidates = 16

// pick chooses the next upstream for a request among the router's targets
// and takes an in-flight slot on it. It skips upstreams already tried,
// skips ejected upstreams unless all remaining ones are ejected, prefers
// regions that have not failed this request (in the router's order), and
// within a region applies the load-balancing policy, skipping upstreams at
// their concurrency limit. more reports whether an untried target other
// than the one picked remains (a retry would have somewhere to go).
func (rt *runtime) pick(targets []routing.Target, tried []*upstream, failedRegions []string, now time.Time) (up *upstream, why pickResult, more bool) {
	var cbuf, hbuf [maxCandidates]*upstream
	cands := cbuf[:0]
	for i := range targets {
		u := rt.reg.lookup(&targets[i], rt.px.UpstreamScheme)
		if !containsUpstream(tried, u) && !containsUpstream(cands, u) {
			cands = append(cands, u)
		}
	}
	if len(cands) == 0 {
		return nil, noneLeft, false
	}
	healthy := hbuf[:0]
	for _, u := range cands {
		if u.ejectedUntil.Load() != 0 {
			rt.outlier.recoverIfDue(u, now)
			if u.ejected(now) {
				continue
			}
		}
		healthy = append(healthy, u)
	}
	if len(healthy) == 0 {
		healthy = cands // all ejected: use them anyway
	}
	limit := rt.maxPerUpstream()
	for pass := 0; pass < 2; pass++ {
		wantFailed := pass == 1
		for i, u := range healthy {
			region := u.region
			if containsString(failedRegions, region) != wantFailed || regionSeenBefore(healthy[:i], region) {
				continue
			}
			if got := rt.pickInRegion(healthy[i:], region, limit); got != nil {
				return got, picked, len(cands) > 1
			}
		}
	}
	return nil, allBusy, false
}

// pickInRegion applies the load-balancing policy among the members of
// region in list and acquires a slot on the winner.
func (rt *runtime) pickInRegion(list []*upstream, region string, limit int64) *upstream {
	var gbuf [maxCandidates]*upstream
	group := gbuf[:0]
	for _, u := range list {
		if u.region == region {
			group = append(group, u)
		}
	}
	n := uint64(len(group))
	start := group[0].pool.Load().counter(region).Add(1) - 1
	if rt.least {
		// The least loaded, ties broken by rotation; fall back to the
		// rotation if the winner fills up under us.
		var best *upstream
		bestLoad := int64(-1)
		for j := uint64(0); j < n; j++ {
			u := group[(start+j)%n]
			if load := u.inFlight.Load(); (limit <= 0 || load < limit) && (best == nil || load < bestLoad) {
				best, bestLoad = u, load
			}
		}
		if best != nil && best.tryAcquire(limit) {
			return best
		}
	}
	for j := uint64(0); j < n; j++ {
		if u := group[(start+j)%n]; u.tryAcquire(limit) {
			return u
		}
	}
	return nil
}

func containsUpstream(list []*upstream, u *upstream) bool {
	for _, x := range list {
		if x == u || (x.endpoint == u.endpoint && x.poolName == u.poolName) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func regionSeenBefore(list []*upstream, region string) bool {
	for _, u := range list {
		if u.region == region {
			return true
		}
	}
	return false
}

// logRestartOnly logs when a reload changes what only a restart applies.
func (s *Server) logRestartOnly(old, px *config.ProxyConfig) {
	if !slices.Equal(old.Listen, px.Listen) || !slices.Equal(old.ListenTLS, px.ListenTLS) ||
		old.Timeouts.ReadHeader != px.Timeouts.ReadHeader || old.Timeouts.Read != px.Timeouts.Read ||
		old.Timeouts.Write != px.Timeouts.Write || old.Timeouts.Idle != px.Timeouts.Idle ||
		old.Limits.MaxHeaderBytes != px.Limits.MaxHeaderBytes || old.FastHTTP1 != px.FastHTTP1 {
		s.log.Warn("proxy listen addresses, server timeouts, max_header_bytes and fast_http1 changed; they take effect at restart")
	}
}
