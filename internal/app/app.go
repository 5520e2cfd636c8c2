// Package app wires gslb's parts into one running process: the health
// checker, the geo locator, the routing engine, the DNS server, the proxy,
// the admin API and, for the embedded demo, the demo ingresses. It owns
// reload (a validated swap) and implements the admin Backend.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/gslb-dev/gslb/internal/admin"
	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/demo"
	"github.com/gslb-dev/gslb/internal/dnsserver"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/proxy"
	"github.com/gslb-dev/gslb/internal/routing"
)

// Options configure an App.
type Options struct {
	// ConfigPath is the file reloads read ("" for the embedded demo).
	ConfigPath string
	// Logger is the process logger (default: no logging).
	Logger *zap.Logger
	// Registry receives every metric (default: a fresh registry with the Go
	// and process collectors).
	Registry *prometheus.Registry
	// Version is reported in status and logs.
	Version string
	// Out receives the demo's "what to try" text (default os.Stderr).
	Out io.Writer
}

// runtime is one loaded config and what was built from it; a reload
// builds a new one beside the old and swaps it in.
type runtime struct {
	cfg      *config.Config
	engine   *routing.Engine
	locator  *geo.Resolver
	version  string
	loadedAt time.Time
}

// App is a running gslb.
type App struct {
	opts Options
	log  *zap.Logger
	reg  *prometheus.Registry

	rt atomic.Pointer[runtime]

	checker *health.Checker
	dns     *dnsserver.Server
	proxy   *proxy.Server
	admin   *admin.Server
	demo    *demo.Ingresses

	dnsBound atomic.Bool

	reloadMu   sync.Mutex
	lastReload atomic.Pointer[admin.ReloadResult]

	// runCtx is the context of Run (nil when not running), used to run a
	// reloaded geo locator; geoCancel stops the running locator, geoWG
	// waits for it. All three are guarded by reloadMu.
	runCtx    context.Context
	geoCancel context.CancelFunc
	geoWG     sync.WaitGroup

	reloadOK    prometheus.Gauge
	reloadTotal *prometheus.CounterVec
	reloadTime  prometheus.Gauge
}

// New builds every part for cfg. Nothing listens until Run.
func New(cfg *config.Config, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	a := &App{opts: opts, log: opts.Logger, reg: opts.Registry}
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gslb_config_reload_success",
		Help: "1 if the last config reload succeeded (or none was tried), 0 if it failed and the previous config is still serving.",
	})
	a.reloadTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gslb_config_reloads_total",
		Help: "Config reload attempts by result.",
	}, []string{"result"})
	a.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gslb_config_last_load_timestamp_seconds",
		Help: "Unix time the config in use was loaded.",
	})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gslb_build_info", Help: "Build information; always 1.",
	}, []string{"version"})
	info.WithLabelValues(opts.Version).Set(1)
	a.reg.MustRegister(a.reloadOK, a.reloadTotal, a.reloadTime, info)
	a.reloadOK.Set(1)

	var err error
	a.checker, err = health.NewChecker(cfg, health.Deps{Logger: a.log.Named("health"), Registry: a.reg})
	if err != nil {
		return nil, fmt.Errorf("start health checker: %w", err)
	}
	rt, err := a.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	a.rt.Store(rt)
	a.reloadTime.Set(float64(rt.loadedAt.Unix()))

	a.dns, err = dnsserver.NewServer(cfg, rt.engine, dnsserver.Deps{Logger: a.log.Named("dns"), Registry: a.reg})
	if err != nil {
		return nil, fmt.Errorf("start dns server: %w", err)
	}
	if cfg.Proxy != nil {
		a.proxy, err = proxy.New(cfg, rt.engine, proxy.Deps{Logger: a.log, Registry: a.reg, HealthFeed: a.checker, Health: a.checker})
		if err != nil {
			return nil, fmt.Errorf("start proxy: %w", err)
		}
	}
	if cfg.Admin.Listen != "off" {
		a.admin, err = admin.New(cfg.Admin, a, admin.Deps{Logger: a.log, Gatherer: a.reg, Registry: a.reg})
		if err != nil {
			return nil, fmt.Errorf("start admin api: %w", err)
		}
	}
	if cfg.Demo {
		a.demo = demo.NewIngresses(a.log.Named("demo"))
	}
	return a, nil
}

// build makes the routing engine and geo locator for cfg, reusing prev's
// locator when the geo config did not change.
func (a *App) build(cfg *config.Config, prev *runtime) (*runtime, error) {
	var loc *geo.Resolver
	if prev != nil && reflect.DeepEqual(prev.cfg.Geo, cfg.Geo) && reflect.DeepEqual(prev.cfg.Regions, cfg.Regions) {
		loc = prev.locator
	} else {
		var err error
		loc, err = geo.New(cfg.Geo, cfg.Regions, geo.Deps{Logger: a.log.Named("geo"), Registry: a.reg})
		if err != nil {
			return nil, fmt.Errorf("start geo locator: %w", err)
		}
	}
	return &runtime{
		cfg:      cfg,
		engine:   routing.NewWithDeps(cfg, a.checker, loc, routing.Deps{Logger: a.log.Named("routing"), Registry: a.reg}),
		locator:  loc,
		version:  configVersion(cfg),
		loadedAt: time.Now(),
	}, nil
}

// configVersion is a short hash of the config's effective content (with
// defaults applied): the same for every load of the same config.
func configVersion(cfg *config.Config) string {
	data, err := json.Marshal(cfg) // follows pointers; map keys sorted
	if err != nil {
		data = []byte(err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12]
}

// Config returns the config in use.
func (a *App) Config() *config.Config { return a.rt.Load().cfg }

// Engine returns the routing engine in use.
func (a *App) Engine() *routing.Engine { return a.rt.Load().engine }

// Checker returns the health checker.
func (a *App) Checker() *health.Checker { return a.checker }

// DNSAddrs returns the bound DNS addresses (after DNS is ready).
func (a *App) DNSAddrs() []netip.AddrPort { return a.dns.Addrs() }

// DNS returns the DNS server.
func (a *App) DNS() *dnsserver.Server { return a.dns }

// Proxy returns the proxy (nil when not configured).
func (a *App) Proxy() *proxy.Server { return a.proxy }

// Admin returns the admin server (nil when disabled).
func (a *App) Admin() *admin.Server { return a.admin }

// Demo returns the demo ingresses (nil unless running the demo config).
func (a *App) Demo() *demo.Ingresses { return a.demo }

// Run serves until ctx is done, then shuts every part down. It returns the
// first error of any part (for example a listener that cannot bind).
func (a *App) Run(ctx context.Context) error {
	cfg := a.Config()
	if a.demo != nil {
		if err := a.demo.Start(); err != nil {
			return err
		}
		defer a.demo.Stop()
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.checker.Run(ctx) })
	// Under reloadMu, so that a concurrent reload neither starts a second
	// locator nor has its own replaced.
	a.reloadMu.Lock()
	a.runCtx = ctx
	a.startLocator(a.rt.Load().locator)
	a.reloadMu.Unlock()
	g.Go(func() error { return a.dns.Run(ctx) })
	if a.proxy != nil {
		g.Go(func() error { return a.proxy.Run(ctx) })
	}
	if a.admin != nil {
		g.Go(func() error { return a.admin.Run(ctx) })
	}
	g.Go(func() error {
		select {
		case <-a.dns.Ready():
		case <-ctx.Done():
			return nil
		}
		a.dnsBound.Store(true)
		addrs := make([]string, 0, len(a.dns.Addrs()))
		for _, ap := range a.dns.Addrs() {
			addrs = append(addrs, ap.String())
		}
		a.log.Info("gslb serving", zap.String("version", a.opts.Version), zap.String("config", cfg.Source),
			zap.Strings("dns", addrs), zap.String("admin", cfg.Admin.Listen))
		if cfg.Demo {
			a.printDemoHelp()
		}
		return nil
	})
	err := g.Wait()
	a.reloadMu.Lock()
	a.runCtx = nil
	a.geoCancel()
	a.reloadMu.Unlock()
	a.geoWG.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (a *App) printDemoHelp() {
	cfg := a.Config()
	dnsAddr := a.dns.Addrs()[0]
	at := fmt.Sprintf("@%s -p %d", dnsAddr.Addr(), dnsAddr.Port())
	var b strings.Builder
	fmt.Fprintf(&b, "\ngslb demo is running: zone %s, regions east (%s) and west (%s).\n", cfg.Zones[0].Name, demo.EastAddr, demo.WestAddr)
	fmt.Fprintf(&b, "Admin API and status page: http://%s/  (admin token: %q)\n", cfg.Admin.Listen, cfg.Admin.Token)
	if cfg.Proxy != nil {
		fmt.Fprintf(&b, "Proxy (local_region %s): http://%s/\n", cfg.Proxy.LocalRegion, cfg.Proxy.Listen[0])
	}
	b.WriteString("Try:\n")
	for _, q := range []string{
		"ecommerce.example.com SOA",
		"www.ecommerce.example.com A",
		"www.ecommerce.example.com A +subnet=198.51.100.0/24",
		"www.ecommerce.example.com A +subnet=203.0.113.0/24",
		"api.ecommerce.example.com A",
		"nope.ecommerce.example.com A",
		"www.ecommerce.example.com MX",
		"example.org A",
	} {
		fmt.Fprintf(&b, "  dig %s %s +norec\n", at, q)
	}
	fmt.Fprintf(&b, "  curl -s 'http://%s/api/v1/explain?name=www.ecommerce.example.com&type=A&client=203.0.113.7'\n", cfg.Admin.Listen)
	fmt.Fprintf(&b, "  curl -s -X POST -H 'Authorization: Bearer %s' http://%s/api/v1/regions/east/drain\n", cfg.Admin.Token, cfg.Admin.Listen)
	if cfg.Proxy != nil {
		fmt.Fprintf(&b, "  curl -s -H 'Host: www.ecommerce.example.com' http://%s/\n", cfg.Proxy.Listen[0])
	}
	b.WriteString("\n")
	_, _ = io.WriteString(a.opts.Out, b.String())
}

// Reload is ReloadFrom("api"); it implements admin.Backend.
func (a *App) Reload() error { return a.ReloadFrom("api") }

// ReloadFrom loads the config file beside the running config and swaps it
// in when valid; when invalid, the running config keeps serving and the
// error is returned, logged and counted. trigger says who asked.
func (a *App) ReloadFrom(trigger string) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	err := a.reload()
	res := admin.ReloadResult{At: time.Now(), Trigger: trigger, Err: err}
	a.lastReload.Store(&res)
	if err != nil {
		a.reloadOK.Set(0)
		a.reloadTotal.WithLabelValues("failure").Inc()
		a.log.Error("config reload failed; the previous config keeps serving", zap.String("trigger", trigger), zap.Error(err))
		return err
	}
	a.reloadOK.Set(1)
	a.reloadTotal.WithLabelValues("success").Inc()
	rt := a.rt.Load()
	a.reloadTime.Set(float64(rt.loadedAt.Unix()))
	a.log.Info("config reloaded", zap.String("trigger", trigger), zap.String("config", rt.cfg.Source), zap.String("version", rt.version))
	return nil
}

func (a *App) reload() error {
	old := a.rt.Load()
	var cfg *config.Config
	var err error
	if a.opts.ConfigPath == "" {
		cfg, err = config.Demo()
	} else {
		cfg, err = config.Load(a.opts.ConfigPath)
	}
	if err != nil {
		return err
	}
	if err := restartOnly(old.cfg, cfg); err != nil {
		return err
	}
	rt, err := a.build(cfg, old)
	if err != nil {
		return err
	}
	// Everything that can fail (zone data, the proxy certificate, the admin
	// token file) is checked before any part changes, so a failed reload
	// leaves the old config serving everywhere, never half applied. The
	// health checker goes first: the new engine reads its snapshot.
	applyDNS, err := a.dns.PrepareSwap(cfg, rt.engine)
	if err != nil {
		return fmt.Errorf("apply dns config: %w", err)
	}
	applyProxy, applyAdmin := func() {}, func() {}
	if a.proxy != nil {
		if applyProxy, err = a.proxy.PrepareSwap(cfg, rt.engine); err != nil {
			return fmt.Errorf("apply proxy config: %w", err)
		}
	}
	if a.admin != nil {
		if applyAdmin, err = a.admin.PrepareConfig(cfg.Admin); err != nil {
			return fmt.Errorf("apply admin config: %w", err)
		}
	}
	if err := a.checker.Update(cfg); err != nil {
		return fmt.Errorf("apply health config: %w", err)
	}
	applyDNS()
	applyProxy()
	applyAdmin()
	if rt.locator != old.locator {
		a.startLocator(rt.locator)
	}
	a.rt.Store(rt)
	return nil
}

// startLocator runs loc in place of the running locator, if Run is
// running. Called with reloadMu held.
func (a *App) startLocator(loc *geo.Resolver) {
	if a.runCtx == nil {
		return
	}
	if a.geoCancel != nil {
		a.geoCancel()
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	a.geoCancel = cancel
	a.geoWG.Go(func() { _ = loc.Run(ctx) })
}

// restartOnly rejects reloads that change what only a restart can change.
func restartOnly(old, cur *config.Config) error {
	var why []string
	if !reflect.DeepEqual(old.DNS.Listen, cur.DNS.Listen) {
		why = append(why, "dns.listen")
	}
	if old.Admin.Listen != cur.Admin.Listen {
		why = append(why, "admin.listen")
	}
	if (old.Proxy == nil) != (cur.Proxy == nil) {
		why = append(why, "proxy (added or removed)")
	} else if old.Proxy != nil && (!reflect.DeepEqual(old.Proxy.Listen, cur.Proxy.Listen) || !reflect.DeepEqual(old.Proxy.ListenTLS, cur.Proxy.ListenTLS)) {
		why = append(why, "proxy.listen")
	}
	if len(why) > 0 {
		return fmt.Errorf("reload: %s changed; these need a restart (the running config keeps serving)", strings.Join(why, ", "))
	}
	return nil
}
