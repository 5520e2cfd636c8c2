package geo

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
)

// Deps are the Resolver's injected dependencies. Zero values are replaced
// by a no-op logger, a fresh registry and time.Now. The caller names the
// logger (e.g. log.Named("geo")).
type Deps struct {
	Logger   *zap.Logger
	Registry prometheus.Registerer
	// Now returns the current time (tests may fake it).
	Now func() time.Time
}

// Resolver is the Locator built from config: explicit CIDR maps first
// (longest prefix wins), then the GeoIP database, which Run reloads when
// its file changes. Lookups read the current database through an atomic
// pointer and never block.
type Resolver struct {
	cfg     config.GeoConfig
	cidr    cidrTable
	db      atomic.Pointer[database]
	log     *zap.Logger
	now     func() time.Time
	metrics *metrics

	reloadMu  sync.Mutex // serialises reloads (never taken by lookups)
	lastTried fileStamp  // the last file version tried, good or bad
}

var _ Locator = (*Resolver)(nil)

// New builds a Resolver for cfg. regions places CIDR maps that name a
// region. A configured database that is missing or corrupt is an error.
func New(cfg config.GeoConfig, regions map[string]*config.Region, deps Deps) (*Resolver, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	schema := cfg.Schema
	if schema == "" {
		schema = SchemaGeoIP2
	}
	if schema != SchemaGeoIP2 && schema != SchemaDBIP {
		return nil, fmt.Errorf("geo: unknown database schema %q (want %s or %s)", schema, SchemaGeoIP2, SchemaDBIP)
	}
	cfg.Schema = schema
	r := &Resolver{
		cfg:     cfg,
		cidr:    newCIDRTable(cfg.CIDRMaps, regions),
		log:     deps.Logger,
		now:     deps.Now,
		metrics: newMetrics(deps.Registry),
	}
	if cfg.Database != "" {
		db, err := openDatabase(cfg.Database, schema, r.now())
		if err != nil {
			r.metrics.reloadErr.Inc()
			return nil, fmt.Errorf("open geoip db %q: %w", cfg.Database, err)
		}
		r.metrics.reloadOK.Inc()
		r.db.Store(db)
		r.lastTried = db.stamp
		r.log.Info("geoip database loaded", zap.String("path", db.path), zap.String("schema", schema),
			zap.String("type", db.reader.Metadata.DatabaseType), zap.Time("built", db.reader.Metadata.BuildTime()))
	}
	return r, nil
}

// Locate implements Locator. IPv4-mapped IPv6 addresses are located as
// IPv4. Location.Network is the widest prefix around addr for which the
// answer is the same: the CIDR map entry or database network, narrowed
// where a more specific CIDR map entry lies inside it.
func (r *Resolver) Locate(addr netip.Addr) Location {
	if r == nil || !addr.IsValid() {
		return Location{}
	}
	addr = addr.Unmap().WithZone("")
	entry, need := r.cidr.lookup(addr)
	if entry != nil {
		r.metrics.lookupCIDR.Inc()
		loc := entry.loc
		loc.Network = netip.PrefixFrom(addr, need).Masked()
		return loc
	}
	db := r.db.Load()
	if db == nil {
		r.metrics.lookupNone.Inc()
		return Location{Network: netip.PrefixFrom(addr, need).Masked()}
	}
	loc, bits, err := db.locate(addr)
	switch {
	case err != nil:
		r.metrics.lookupErr.Inc()
	case loc.Found():
		r.metrics.lookupGeoIP.Inc()
	default:
		r.metrics.lookupNone.Inc()
	}
	loc.Network = netip.PrefixFrom(addr, max(need, bits)).Masked()
	return loc
}

// DatabaseInfo describes the loaded GeoIP database.
type DatabaseInfo struct {
	Path      string    `json:"path"`
	Schema    string    `json:"schema"`
	Type      string    `json:"type"`
	BuildTime time.Time `json:"build_time"`
	LoadedAt  time.Time `json:"loaded_at"`
	ModTime   time.Time `json:"mod_time"`
	Size      int64     `json:"size"`
}

// Database describes the database in use; ok is false when none is.
func (r *Resolver) Database() (info DatabaseInfo, ok bool) {
	db := r.db.Load()
	if db == nil {
		return DatabaseInfo{}, false
	}
	return DatabaseInfo{
		Path: db.path, Schema: db.schema, Type: db.reader.Metadata.DatabaseType,
		BuildTime: db.reader.Metadata.BuildTime(), LoadedAt: db.loadedAt,
		ModTime: db.stamp.modTime, Size: db.stamp.size,
	}, true
}

// Run checks the database file every ReloadInterval and reloads it when it
// changed (inode, modification time or size), until ctx is done. It
// returns nil then. Without a database or interval it just waits.
func (r *Resolver) Run(ctx context.Context) error {
	if r.cfg.Database == "" || r.cfg.ReloadInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(r.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = r.ReloadIfChanged()
		}
	}
}

// ReloadIfChanged reloads the database when its file differs from the
// version last tried. A version that failed to load is not retried until
// the file changes again, so a bad file is logged and counted once. On
// error the previous database stays in use. reloaded reports a swap.
func (r *Resolver) ReloadIfChanged() (reloaded bool, err error) {
	if r.cfg.Database == "" {
		return false, nil
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	info, err := os.Stat(r.cfg.Database)
	if err != nil {
		if r.lastTried.info == nil {
			return false, nil // already reported missing
		}
		r.lastTried = fileStamp{}
		return false, r.failed(fmt.Errorf("reload geoip db %q: %w", r.cfg.Database, err))
	}
	if stampOf(info).same(r.lastTried) {
		return false, nil
	}
	return r.reloadLocked()
}

// Reload loads the database file now, whether or not it changed. On error
// the previous database stays in use.
func (r *Resolver) Reload() error {
	if r.cfg.Database == "" {
		return nil
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	_, err := r.reloadLocked()
	return err
}

func (r *Resolver) reloadLocked() (bool, error) {
	db, err := openDatabase(r.cfg.Database, r.cfg.Schema, r.now())
	if err != nil {
		if info, serr := os.Stat(r.cfg.Database); serr == nil {
			r.lastTried = stampOf(info)
		}
		return false, r.failed(fmt.Errorf("reload geoip db %q: %w", r.cfg.Database, err))
	}
	r.lastTried = db.stamp
	r.db.Store(db)
	r.metrics.reloadOK.Inc()
	r.log.Info("geoip database reloaded", zap.String("path", db.path),
		zap.String("type", db.reader.Metadata.DatabaseType), zap.Time("built", db.reader.Metadata.BuildTime()))
	return true, nil
}

func (r *Resolver) failed(err error) error {
	r.metrics.reloadErr.Inc()
	r.log.Warn("geoip database reload failed; keeping the previous one", zap.Error(err))
	return err
}
