package app

import (
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/admin"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

var _ admin.Backend = (*App)(nil)

// Ready implements admin.Backend: config loaded, DNS bound, first round
// of health results in.
func (a *App) Ready() (bool, string) {
	if !a.dnsBound.Load() {
		return false, "dns listeners not bound yet"
	}
	if snap := a.checker.Snapshot(); !snap.Ready {
		return false, "waiting for the first round of health checks"
	}
	return true, ""
}

// Status implements admin.Backend.
func (a *App) Status() admin.Status {
	rt := a.rt.Load()
	st := admin.Status{
		Config:        rt.cfg,
		ConfigVersion: rt.version,
		LoadedAt:      rt.loadedAt,
		Health:        a.checker.Snapshot(),
		Preferred:     map[string]routing.Decision{},
	}
	if lr := a.lastReload.Load(); lr != nil {
		st.LastReload = *lr
	}
	for id := range rt.cfg.Services {
		st.Preferred[id] = rt.engine.Explain(id, routing.Query{})
	}
	return st
}

// Explain implements admin.Backend.
func (a *App) Explain(name string, qtype uint16, client netip.Addr) (routing.Decision, error) {
	rt := a.rt.Load()
	svc := rt.engine.ServiceForName(name)
	if svc == nil {
		return routing.Decision{}, fmt.Errorf("%s is not a GSLB service name: %w", dns.Fqdn(name), admin.ErrNotFound)
	}
	q := routing.Query{Client: client, QType: qtype}
	if client.IsValid() {
		q.SourcePrefix = client.BitLen()
	}
	return rt.engine.Explain(svc.ID, q), nil
}

// DrainRegion implements admin.Backend.
func (a *App) DrainRegion(region string, o health.Override) error {
	if _, ok := a.Config().Regions[region]; !ok {
		return fmt.Errorf("region %q: %w", region, admin.ErrNotFound)
	}
	return a.checker.DrainRegion(region, o)
}

// UndrainRegion implements admin.Backend.
func (a *App) UndrainRegion(region, by string) error {
	if _, ok := a.Config().Regions[region]; !ok {
		return fmt.Errorf("region %q: %w", region, admin.ErrNotFound)
	}
	return a.checker.UndrainRegion(region, by)
}

func (a *App) knownEndpoint(pool, endpoint string) error {
	p, ok := a.Config().Pools[pool]
	if !ok {
		return fmt.Errorf("pool %q: %w", pool, admin.ErrNotFound)
	}
	for _, e := range p.Endpoints {
		if e.Name == endpoint {
			return nil
		}
	}
	return fmt.Errorf("endpoint %q of pool %q: %w", endpoint, pool, admin.ErrNotFound)
}

// DrainEndpoint implements admin.Backend.
func (a *App) DrainEndpoint(pool, endpoint string, o health.Override) error {
	if err := a.knownEndpoint(pool, endpoint); err != nil {
		return err
	}
	return a.checker.DrainEndpoint(pool, endpoint, o)
}

// UndrainEndpoint implements admin.Backend.
func (a *App) UndrainEndpoint(pool, endpoint, by string) error {
	if err := a.knownEndpoint(pool, endpoint); err != nil {
		return err
	}
	return a.checker.UndrainEndpoint(pool, endpoint, by)
}
