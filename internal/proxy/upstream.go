package proxy

import (
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/routing"
)

// upstream is one endpoint the proxy forwards to. Its counters are atomics
// read on every request; ejection bookkeeping is guarded by mu.
// An upstream survives a Swap when its pool, name, address and port are
// unchanged, so outlier state and in-flight counts carry over.
type upstream struct {
	pool     atomic.Pointer[poolState] // re-homed on Swap
	poolName string
	endpoint string
	region   string
	target   *url.URL

	inFlight     atomic.Int64
	fails        atomic.Int32 // consecutive 5xx or gateway errors
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 while not ejected
	ejectedAt    atomic.Int64 // unix nanoseconds of the current ejection's start

	mu        sync.Mutex
	ejections int // the ejection-time multiplier

	lastEjectEnd time.Time // when the last ejection ended

	// conns are the idle keep-alive connections of the fast path.
	conns connPool
}

// tryAcquire takes an in-flight slot unless limit slots are taken.
func (u *upstream) tryAcquire(limit int64) bool {
	for {
		n := u.inFlight.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if u.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (u *upstream) release() { u.inFlight.Add(-1) }

// ejected reports whether the upstream is ejected at now.
func (u *upstream) ejected(now time.Time) bool {
	until := u.ejectedUntil.Load()
	return until != 0 && now.UnixNano() < until
}

// poolState groups a pool's upstreams: the unit for the max-ejection
// percentage and round-robin counters. mu serialises ejection decisions.
type poolState struct {
	mu    sync.Mutex
	hosts []*upstream

	// rr holds one round-robin counter per region (read-only map).
	rr map[string]*atomic.Uint64
}

func (p *poolState) counter(region string) *atomic.Uint64 {
	if c := p.rr[region]; c != nil {
		return c
	}
	return p.rr[""]
}

type upstreamKey struct{ pool, endpoint string }

// registry holds every upstream of one config generation.
type registry struct {
	byKey map[upstreamKey]*upstream
	pools map[string]*poolState
}

// newRegistry builds upstreams for cfg's pools, reusing those of old whose
// pool, endpoint name, address and port are unchanged.
func newRegistry(cfg *config.Config, scheme string, old *registry) *registry {
	r := &registry{byKey: map[upstreamKey]*upstream{}, pools: map[string]*poolState{}}
	for name, p := range cfg.Pools {
		ps := &poolState{rr: map[string]*atomic.Uint64{"": new(atomic.Uint64)}}
		for _, ep := range p.Endpoints {
			if ps.rr[ep.Region] == nil {
				ps.rr[ep.Region] = new(atomic.Uint64)
			}
			target := &url.URL{Scheme: scheme, Host: ep.AddrPort().String()}
			key := upstreamKey{name, ep.Name}
			var u *upstream
			if old != nil {
				if prev := old.byKey[key]; prev != nil && prev.target.String() == target.String() && prev.region == ep.Region {
					u = prev
				}
			}
			if u == nil {
				u = &upstream{poolName: name, endpoint: ep.Name, region: ep.Region, target: target}
				u.pool.Store(ps)
			}
			r.byKey[key] = u
			ps.hosts = append(ps.hosts, u)
		}
		r.pools[name] = ps
	}
	return r
}

// adopt re-homes upstreams carried over from an older registry under r's
// pool objects. It is part of swapping r in: until then the old runtime
// keeps using them with its own pools.
func (r *registry) adopt() {
	for _, ps := range r.pools {
		for _, u := range ps.hosts {
			u.pool.Store(ps)
		}
	}
}

// lookup returns the upstream of a routing target. A target unknown to the
// registry (a router built from another config) gets a transient upstream
// without outlier state.
func (r *registry) lookup(t *routing.Target, scheme string) *upstream {
	if u := r.byKey[upstreamKey{t.Pool, t.Endpoint}]; u != nil {
		return u
	}
	ps := &poolState{rr: map[string]*atomic.Uint64{"": new(atomic.Uint64)}}
	u := &upstream{poolName: t.Pool, endpoint: t.Endpoint, region: t.Region,
		target: &url.URL{Scheme: scheme, Host: netip.AddrPortFrom(t.Addr, t.Port).String()}}
	u.pool.Store(ps)
	ps.hosts = []*upstream{u}
	return u
}

// retire closes the fast-path connections of every upstream, idle now or
// returned later (the server stopped).
func (r *registry) retire() {
	for _, u := range r.byKey {
		u.conns.retire()
	}
}

// pruneIdle closes fast-path connections idle since before cutoff.
func (r *registry) pruneIdle(cutoff time.Time) {
	for _, u := range r.byKey {
		u.conns.prune(cutoff)
	}
}
