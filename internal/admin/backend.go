package admin

import (
	"errors"
	"net/netip"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// ErrNotFound is wrapped by Backend errors about an unknown region, pool,
// endpoint or service; the API answers them with 404.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by Backend errors about a request that cannot be
// served as asked (for example an explain name outside every zone); the
// API answers them with 400.
var ErrInvalid = errors.New("invalid request")

// Backend is what the admin API asks and tells the running gslb. The
// application implements it over its current runtime (config, health
// checker, routing engine). Every method is safe for concurrent use and
// returns quickly.
type Backend interface {
	// Ready reports whether gslb serves: config loaded, DNS listeners bound
	// and the first round of health results in. reason says what is missing.
	Ready() (ok bool, reason string)
	// Status returns the current runtime for the status API and page.
	Status() Status
	// Config returns the running config (the Config of Status, without
	// building the rest of it).
	Config() *config.Config
	// Explain replays the routing decision for a query name and type (A,
	// AAAA, or 0 for both) as asked by client (invalid: unknown client).
	// Unknown names wrap ErrNotFound.
	Explain(name string, qtype uint16, client netip.Addr) (routing.Decision, error)
	// DrainRegion drains a region of every pool. An unknown region wraps ErrNotFound.
	DrainRegion(region string, o health.Override) error
	// UndrainRegion removes a region's drain; by is who asked.
	UndrainRegion(region, by string) error
	// DrainEndpoint drains one endpoint of a pool. Unknown pools or
	// endpoints wrap ErrNotFound.
	DrainEndpoint(pool, endpoint string, o health.Override) error
	// UndrainEndpoint removes an endpoint's drain; by is who asked.
	UndrainEndpoint(pool, endpoint, by string) error
	// Reload loads and validates the config beside the running one and
	// swaps it in when valid. An invalid config returns the *config.Errors
	// from config.Load (or an error wrapping it) and keeps the old one.
	Reload() error
}

// Status is the running gslb as the Backend sees it; the admin package
// turns it into the status JSON and page.
type Status struct {
	// Config is the config in use (nil before the first load).
	Config *config.Config
	// ConfigVersion identifies the config in use (a hash or a counter).
	ConfigVersion string
	// LoadedAt is when the config in use was loaded.
	LoadedAt time.Time
	// LastReload is the outcome of the last reload attempt (zero if none).
	LastReload ReloadResult
	// Health is the current health snapshot (nil before health starts).
	Health *health.Snapshot
	// Preferred holds, per service ID, the decision for a client about
	// which nothing is known: which region the service prefers right now.
	Preferred map[string]routing.Decision
}

// ReloadResult is the outcome of one reload attempt.
type ReloadResult struct {
	// At is when the reload was attempted (zero: never).
	At time.Time
	// Trigger says what asked for it: "api", "sighup", "file", ...
	Trigger string
	// Err is nil when the new config was swapped in.
	Err error
}
