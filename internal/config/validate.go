package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Named defaults. Every limit gslb enforces has one.
const (
	DefaultDNSListen                  = ":53"
	DefaultUDPSize                    = 1232
	DefaultMaxTCPConnections          = 1000
	DefaultMaxTCPConnectionsPerIP     = 64
	DefaultTCPIdleTimeout             = 10 * time.Second
	DefaultTCPReadTimeout             = 5 * time.Second
	DefaultMaxQueriesPerTCPConnection = 1000
	DefaultCacheSize                  = 65536
	DefaultMaxUDPAmplification        = 10
	DefaultMaxScopeV4                 = 24
	DefaultMaxScopeV6                 = 56

	DefaultRRLResponsesPerSecond = 1000
	DefaultRRLErrorsPerSecond    = 200
	DefaultRRLSlip               = 2
	DefaultRRLIPv4Prefix         = 24
	DefaultRRLIPv6Prefix         = 56
	DefaultRRLTableSize          = 100000

	DefaultAdminListen       = "127.0.0.1:9090"
	DefaultAdminMaxBodyBytes = 1 << 20

	DefaultLogLevel  = "info"
	DefaultLogFormat = "json"

	DefaultGeoSchema         = "geoip2"
	DefaultGeoReloadInterval = time.Minute

	DefaultCheckType      = "http"
	DefaultCheckInterval  = 2 * time.Second
	DefaultCheckTimeout   = time.Second
	DefaultCheckJitter    = 0.1
	DefaultCheckRise      = 2
	DefaultCheckFall      = 3
	DefaultColdStart      = "last_known"
	DefaultCheckMethod    = "GET"
	DefaultCheckPath      = "/"
	DefaultCheckBodyLimit = 5120
	DefaultMinHealthy     = 1

	DefaultZoneTTL    = 300
	DefaultSOARefresh = 3600
	DefaultSOARetry   = 600
	DefaultSOAExpire  = 604800
	DefaultSOAMinimum = 60

	DefaultServicePolicy = "geo"
	DefaultServiceTTL    = 30
	DefaultWhenAllDown   = "fail_open"

	DefaultProxyLoadBalancing       = "round_robin"
	DefaultProxyRetryAttempts       = 2
	DefaultProxyRetryBudget         = 5 * time.Second
	DefaultProxyRetryMaxBodyBytes   = 64 << 10
	DefaultOutlierConsecutiveErrors = 5
	DefaultOutlierInterval          = 30 * time.Second
	DefaultOutlierBaseEjectionTime  = 30 * time.Second
	DefaultOutlierMaxEjectionTime   = 300 * time.Second
	DefaultOutlierMaxEjectionPct    = 50
	DefaultProxyRateLimitRPS        = 100
	DefaultProxyRateLimitBurst      = 200
	DefaultProxyRateLimitMaxClients = 100000
	DefaultProxyMaxHeaderBytes      = 64 << 10
	DefaultProxyMaxBodyBytes        = 10 << 20
	DefaultProxyMaxConcurrent       = 1024
	DefaultProxyMaxPending          = 4096
	DefaultProxyReadHeaderTimeout   = 10 * time.Second
	DefaultProxyReadTimeout         = 60 * time.Second
	DefaultProxyWriteTimeout        = 60 * time.Second
	DefaultProxyIdleTimeout         = 120 * time.Second
	DefaultProxyUpstreamTimeout     = 30 * time.Second
	DefaultProxyDialTimeout         = 2 * time.Second
)

// Policies, cold-start modes and other enumerations.
var (
	Policies      = []string{"geo", "failover", "weighted", "all"}
	WhenAllDowns  = []string{"fail_open", "fallback", "fail_closed"}
	CheckTypes    = []string{"http", "https", "tcp", "dns", "none"}
	ColdStarts    = []string{"assume_healthy", "assume_unhealthy", "last_known"}
	GeoSchemas    = []string{"geoip2", "dbip"}
	LogLevels     = []string{"debug", "info", "warn", "error"}
	LogFormats    = []string{"json", "console"}
	LoadBalancers = []string{"round_robin", "least_in_flight"}
)

type validator struct {
	cfg     *Config
	idx     *nodeIndex
	errs    *Errors
	baseDir string
}

func (v *validator) fail(p []pathElem, format string, args ...any) {
	v.errs.add(v.idx.line(p), renderPath(p), fmt.Sprintf(format, args...))
}

func path(p ...pathElem) []pathElem { return p }

// defaultIfAbsent sets *p to def unless the field at path is written in
// the YAML: for fields where zero is a meaningful choice (0 disables).
func defaultIfAbsent[T any](v *validator, path []pathElem, p *T, def T) {
	if !v.idx.has(path) {
		*p = def
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func (v *validator) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || v.baseDir == "" {
		return p
	}
	return filepath.Join(v.baseDir, p)
}

func (v *validator) defaults() {
	c := v.cfg
	d := &c.DNS
	if len(d.Listen) == 0 {
		d.Listen = []string{DefaultDNSListen}
	}
	setDefault(&d.UDPSize, DefaultUDPSize)
	setDefault(&d.UDPReader, UDPReaderThread)
	setDefault(&d.MaxTCPConnections, DefaultMaxTCPConnections)
	setDefault(&d.MaxTCPConnectionsPerIP, DefaultMaxTCPConnectionsPerIP)
	setDefault(&d.TCPIdleTimeout, DefaultTCPIdleTimeout)
	setDefault(&d.TCPReadTimeout, DefaultTCPReadTimeout)
	defaultIfAbsent(v, path("dns", "max_queries_per_tcp_connection"), &d.MaxQueriesPerTCPConnection, DefaultMaxQueriesPerTCPConnection)
	defaultIfAbsent(v, path("dns", "cache_size"), &d.CacheSize, DefaultCacheSize)
	defaultIfAbsent(v, path("dns", "max_udp_amplification"), &d.MaxUDPAmplification, DefaultMaxUDPAmplification)
	setDefault(&d.ECS.MaxScopeV4, DefaultMaxScopeV4)
	setDefault(&d.ECS.MaxScopeV6, DefaultMaxScopeV6)
	r := &d.RRL
	setDefault(&r.ResponsesPerSecond, DefaultRRLResponsesPerSecond)
	setDefault(&r.ErrorsPerSecond, DefaultRRLErrorsPerSecond)
	defaultIfAbsent(v, path("dns", "rrl", "slip"), &r.Slip, DefaultRRLSlip)
	setDefault(&r.IPv4PrefixLength, DefaultRRLIPv4Prefix)
	setDefault(&r.IPv6PrefixLength, DefaultRRLIPv6Prefix)
	setDefault(&r.TableSize, DefaultRRLTableSize)

	setDefault(&c.Admin.Listen, DefaultAdminListen)
	setDefault(&c.Admin.MaxBodyBytes, DefaultAdminMaxBodyBytes)
	c.Admin.TokenFile = v.resolvePath(c.Admin.TokenFile)
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
	c.StateFile = v.resolvePath(c.StateFile)

	setDefault(&c.Geo.Schema, DefaultGeoSchema)
	setDefault(&c.Geo.ReloadInterval, DefaultGeoReloadInterval)
	c.Geo.Database = v.resolvePath(c.Geo.Database)

	for name, r := range c.Regions {
		if r == nil {
			r = &Region{}
			c.Regions[name] = r
		}
		r.Name = name
	}
	for name, p := range c.Pools {
		if p == nil {
			p = &Pool{}
			c.Pools[name] = p
		}
		p.Name = name
		setDefault(&p.MinHealthy, DefaultMinHealthy)
		ch := &p.Check
		setDefault(&ch.Type, DefaultCheckType)
		setDefault(&ch.Interval, DefaultCheckInterval)
		setDefault(&ch.Timeout, DefaultCheckTimeout)
		if ch.Timeout > ch.Interval && ch.Interval > 0 && !v.idx.has(path("pools", name, "check", "timeout")) {
			ch.Timeout = ch.Interval
		}
		defaultIfAbsent(v, path("pools", name, "check", "jitter"), &ch.Jitter, DefaultCheckJitter)
		setDefault(&ch.Rise, DefaultCheckRise)
		setDefault(&ch.Fall, DefaultCheckFall)
		setDefault(&ch.ColdStart, DefaultColdStart)
		setDefault(&ch.Method, DefaultCheckMethod)
		setDefault(&ch.Path, DefaultCheckPath)
		setDefault(&ch.BodyLimit, DefaultCheckBodyLimit)
		if len(ch.ExpectStatus) == 0 {
			ch.ExpectStatus = []string{"2xx"}
		}
		setDefault(&ch.ExpectRcode, "NOERROR")
		setDefault(&ch.QueryType, "SOA")
		ch.CAFile = v.resolvePath(ch.CAFile)
		perRegion := map[string]int{}
		for i, e := range p.Endpoints {
			if e == nil {
				continue
			}
			perRegion[e.Region]++
			if e.Name == "" {
				e.Name = fmt.Sprintf("%s-%d", e.Region, perRegion[e.Region])
			}
			if e.Port == 0 {
				e.Port = 80
				if ch.Type == "https" {
					e.Port = 443
				}
			}
			defaultIfAbsent(v, path("pools", name, "endpoints", i, "weight"), &e.Weight, 1)
		}
	}
	for _, z := range c.Zones {
		if z == nil {
			continue
		}
		z.Name = canonicalName(z.Name)
		setDefault(&z.TTL, DefaultZoneTTL)
		for i, ns := range z.NS {
			z.NS[i] = qualify(ns, z.Name)
		}
		s := &z.SOA
		if s.MName == "" && len(z.NS) > 0 {
			s.MName = z.NS[0]
		}
		s.MName = qualify(s.MName, z.Name)
		if s.RName == "" {
			s.RName = "hostmaster." + z.Name
		}
		s.RName = qualify(s.RName, z.Name)
		setDefault(&s.Serial, 1)
		setDefault(&s.Refresh, DefaultSOARefresh)
		setDefault(&s.Retry, DefaultSOARetry)
		setDefault(&s.Expire, DefaultSOAExpire)
		setDefault(&s.Minimum, DefaultSOAMinimum)
		setDefault(&s.TTL, z.TTL)
	}
	for id, s := range c.Services {
		if s == nil {
			s = &Service{}
			c.Services[id] = s
		}
		s.ID = id
		setDefault(&s.Policy, DefaultServicePolicy)
		setDefault(&s.TTL, DefaultServiceTTL)
		if s.DegradedTTL == 0 {
			s.DegradedTTL = max(s.TTL/2, 1)
		}
		setDefault(&s.WhenAllDown, DefaultWhenAllDown)
		if s.Name == "" && len(c.Zones) == 1 && c.Zones[0] != nil {
			s.Name = id + "." + c.Zones[0].Name
		}
		if s.Name != "" {
			s.Name = canonicalName(s.Name)
		}
		if len(s.Regions) == 0 {
			s.Regions = poolRegions(c.Pools[s.Pool])
		}
	}
	if p := c.Proxy; p != nil {
		setDefault(&p.LoadBalancing, DefaultProxyLoadBalancing)
		setDefault(&p.UpstreamScheme, "http")
		defaultIfAbsent(v, path("proxy", "fast_http1"), &p.FastHTTP1, true)
		defaultIfAbsent(v, path("proxy", "retries", "attempts"), &p.Retries.Attempts, DefaultProxyRetryAttempts)
		setDefault(&p.Retries.Budget, DefaultProxyRetryBudget)
		setDefault(&p.Retries.MaxBodyBytes, DefaultProxyRetryMaxBodyBytes)
		o := &p.Outlier
		setDefault(&o.ConsecutiveErrors, DefaultOutlierConsecutiveErrors)
		setDefault(&o.Interval, DefaultOutlierInterval)
		setDefault(&o.BaseEjectionTime, DefaultOutlierBaseEjectionTime)
		setDefault(&o.MaxEjectionTime, DefaultOutlierMaxEjectionTime)
		defaultIfAbsent(v, path("proxy", "outlier", "max_ejection_percent"), &o.MaxEjectionPercent, DefaultOutlierMaxEjectionPct)
		rl := &p.RateLimit
		setDefault(&rl.RequestsPerSecond, DefaultProxyRateLimitRPS)
		setDefault(&rl.Burst, DefaultProxyRateLimitBurst)
		setDefault(&rl.MaxClients, DefaultProxyRateLimitMaxClients)
		l := &p.Limits
		setDefault(&l.MaxHeaderBytes, DefaultProxyMaxHeaderBytes)
		setDefault(&l.MaxBodyBytes, DefaultProxyMaxBodyBytes)
		setDefault(&l.MaxConcurrentPerUpstream, DefaultProxyMaxConcurrent)
		setDefault(&l.MaxPending, DefaultProxyMaxPending)
		t := &p.Timeouts
		setDefault(&t.ReadHeader, DefaultProxyReadHeaderTimeout)
		setDefault(&t.Read, DefaultProxyReadTimeout)
		setDefault(&t.Write, DefaultProxyWriteTimeout)
		setDefault(&t.Idle, DefaultProxyIdleTimeout)
		setDefault(&t.Upstream, DefaultProxyUpstreamTimeout)
		setDefault(&t.Dial, DefaultProxyDialTimeout)
		setDefault(&p.AccessLogSample, 1)
		p.CertFile = v.resolvePath(p.CertFile)
		p.KeyFile = v.resolvePath(p.KeyFile)
		for i := range p.Routes {
			p.Routes[i].Host = strings.ToLower(strings.TrimSuffix(p.Routes[i].Host, "."))
		}
	}
}

// poolRegions lists the regions a pool has endpoints in, sorted by name.
func poolRegions(p *Pool) []string {
	if p == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range p.Endpoints {
		if e != nil && !seen[e.Region] {
			seen[e.Region] = true
			out = append(out, e.Region)
		}
	}
	sort.Strings(out)
	return out
}

func canonicalName(s string) string { return strings.ToLower(dns.Fqdn(s)) }

// qualify makes a possibly relative name absolute within zone ("@" is the apex).
func qualify(name, zone string) string {
	switch {
	case name == "" || name == "@":
		return zone
	case dns.IsFqdn(name):
		return strings.ToLower(name)
	default:
		return strings.ToLower(name + "." + zone)
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

func (v *validator) validate() {
	c := v.cfg
	v.validateDNS()
	if c.Admin.Listen != "off" {
		v.hostPort(path("admin", "listen"), c.Admin.Listen)
	}
	if c.Admin.TokenFile != "" {
		if _, err := os.Stat(c.Admin.TokenFile); err != nil {
			v.fail(path("admin", "token_file"), "cannot read token file: %v", err)
		}
	}
	if !slices.Contains(LogLevels, c.Log.Level) {
		v.fail(path("log", "level"), "unknown level %q (want one of %s)", c.Log.Level, strings.Join(LogLevels, ", "))
	}
	if !slices.Contains(LogFormats, c.Log.Format) {
		v.fail(path("log", "format"), "unknown format %q (want one of %s)", c.Log.Format, strings.Join(LogFormats, ", "))
	}
	if len(c.Regions) == 0 {
		v.fail(path("regions"), "at least one region is required")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Regions)) {
		r := c.Regions[name]
		p := path("regions", name)
		if !nameRE.MatchString(name) {
			v.fail(p, "invalid region name %q (lower-case letters, digits, - and _)", name)
		}
		if r.Latitude < -90 || r.Latitude > 90 {
			v.fail(append(p, "latitude"), "latitude %v out of range -90..90", r.Latitude)
		}
		if r.Longitude < -180 || r.Longitude > 180 {
			v.fail(append(p, "longitude"), "longitude %v out of range -180..180", r.Longitude)
		}
		if r.Bias < -99 || r.Bias > 99 {
			v.fail(append(p, "bias"), "bias %d out of range -99..99", r.Bias)
		}
	}
	v.validateGeo()
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		v.validatePool(name, c.Pools[name])
	}
	v.validateZones()
	for _, id := range slices.Sorted(maps.Keys(c.Services)) {
		v.validateService(id, c.Services[id])
	}
	v.validateProxy()
}

func (v *validator) hostPort(p []pathElem, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(p, "invalid listen address %q: want host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(p, "invalid port in %q", addr)
	}
	_ = host
}

func (v *validator) validateDNS() {
	d := &v.cfg.DNS
	for i, l := range d.Listen {
		v.hostPort(path("dns", "listen", i), l)
	}
	if d.UDPSize < 512 {
		v.fail(path("dns", "udp_size"), "udp_size %d below the DNS minimum of 512", d.UDPSize)
	}
	if d.MaxTCPConnections < 1 {
		v.fail(path("dns", "max_tcp_connections"), "must be at least 1")
	}
	if d.MaxTCPConnectionsPerIP < 1 {
		v.fail(path("dns", "max_tcp_connections_per_ip"), "must be at least 1")
	}
	if d.TCPIdleTimeout < 0 || d.TCPReadTimeout < 0 {
		v.fail(path("dns", "tcp_idle_timeout"), "timeouts must be positive")
	}
	if d.UDPSockets < 0 || d.UDPSockets > 256 {
		v.fail(path("dns", "udp_sockets"), "udp_sockets %d out of range 0..256 (0 = one per CPU)", d.UDPSockets)
	}
	if d.UDPReader != UDPReaderThread && d.UDPReader != UDPReaderNetpoll {
		v.fail(path("dns", "udp_reader"), "udp_reader %q: want %q or %q", d.UDPReader, UDPReaderThread, UDPReaderNetpoll)
	}
	if d.MaxUDPAmplification < 0 {
		v.fail(path("dns", "max_udp_amplification"), "must not be negative (0 disables the cap)")
	}
	if d.CacheSize < 0 {
		v.fail(path("dns", "cache_size"), "must not be negative")
	}
	if d.ECS.MaxScopeV4 < 0 || d.ECS.MaxScopeV4 > 32 {
		v.fail(path("dns", "ecs", "max_scope_v4"), "out of range 0..32")
	}
	if d.ECS.MaxScopeV6 < 0 || d.ECS.MaxScopeV6 > 128 {
		v.fail(path("dns", "ecs", "max_scope_v6"), "out of range 0..128")
	}
	r := &d.RRL
	if r.ResponsesPerSecond < 0 || r.ErrorsPerSecond < 0 || r.Slip < 0 || r.TableSize < 0 {
		v.fail(path("dns", "rrl"), "rates, slip and table_size must not be negative")
	}
	if r.IPv4PrefixLength < 1 || r.IPv4PrefixLength > 32 {
		v.fail(path("dns", "rrl", "ipv4_prefix_length"), "out of range 1..32")
	}
	if r.IPv6PrefixLength < 1 || r.IPv6PrefixLength > 128 {
		v.fail(path("dns", "rrl", "ipv6_prefix_length"), "out of range 1..128")
	}
}

func (v *validator) validateGeo() {
	g := &v.cfg.Geo
	if !slices.Contains(GeoSchemas, g.Schema) {
		v.fail(path("geo", "schema"), "unknown schema %q (want one of %s)", g.Schema, strings.Join(GeoSchemas, ", "))
	}
	if g.Database != "" {
		if _, err := os.Stat(g.Database); err != nil {
			v.fail(path("geo", "database"), "cannot read GeoIP database: %v", err)
		}
	}
	if g.ReloadInterval < 0 {
		v.fail(path("geo", "reload_interval"), "must not be negative")
	}
	for i, m := range g.CIDRMaps {
		p := path("geo", "cidr_maps", i)
		if !m.CIDR.IsValid() {
			v.fail(append(p, "cidr"), "cidr is required")
		}
		if m.Region != "" {
			if _, ok := v.cfg.Regions[m.Region]; !ok {
				v.fail(append(p, "region"), "unknown region %q", m.Region)
			}
		} else if m.Country == "" && m.Continent == "" && (m.Latitude == nil || m.Longitude == nil) {
			v.fail(p, "needs a region, a country/continent, or latitude and longitude")
		}
		if (m.Latitude == nil) != (m.Longitude == nil) {
			v.fail(p, "latitude and longitude go together")
		}
	}
}

var statusRE = regexp.MustCompile(`^([1-5]xx|[1-5][0-9][0-9])$`)

func (v *validator) validatePool(name string, pl *Pool) {
	p := path("pools", name)
	if !nameRE.MatchString(name) {
		v.fail(p, "invalid pool name %q", name)
	}
	if len(pl.Endpoints) == 0 {
		v.fail(append(p, "endpoints"), "a pool needs at least one endpoint")
	}
	if pl.MinHealthy < 1 {
		v.fail(append(p, "min_healthy"), "must be at least 1")
	}
	ch := &pl.Check
	cp := append(p, "check")
	if !slices.Contains(CheckTypes, ch.Type) {
		v.fail(append(cp, "type"), "unknown check type %q (want one of %s)", ch.Type, strings.Join(CheckTypes, ", "))
	}
	if ch.Interval <= 0 {
		v.fail(append(cp, "interval"), "must be positive")
	}
	if ch.Timeout <= 0 {
		v.fail(append(cp, "timeout"), "must be positive")
	} else if ch.Timeout > ch.Interval {
		v.fail(append(cp, "timeout"), "timeout %s longer than interval %s", ch.Timeout, ch.Interval)
	}
	if ch.Jitter < 0 || ch.Jitter > 0.5 {
		v.fail(append(cp, "jitter"), "jitter %v out of range 0..0.5", ch.Jitter)
	}
	if ch.Rise < 1 || ch.Rise > 10 {
		v.fail(append(cp, "rise"), "rise %d out of range 1..10", ch.Rise)
	}
	if ch.Fall < 1 || ch.Fall > 10 {
		v.fail(append(cp, "fall"), "fall %d out of range 1..10", ch.Fall)
	}
	if !slices.Contains(ColdStarts, ch.ColdStart) {
		v.fail(append(cp, "cold_start"), "unknown cold_start %q (want one of %s)", ch.ColdStart, strings.Join(ColdStarts, ", "))
	}
	for i, s := range ch.ExpectStatus {
		if !statusRE.MatchString(s) {
			v.fail(append(cp, "expect_status", i), "invalid status %q (want e.g. 200 or 2xx)", s)
		}
	}
	if ch.ExpectBodyRegexp != "" {
		if _, err := regexp.Compile(ch.ExpectBodyRegexp); err != nil {
			v.fail(append(cp, "expect_body_regexp"), "invalid regular expression: %v", err)
		}
	}
	if ch.BodyLimit < 1 || ch.BodyLimit > 1<<20 {
		v.fail(append(cp, "body_limit"), "body_limit %d out of range 1..1048576", ch.BodyLimit)
	}
	if ch.Path != "" && !strings.HasPrefix(ch.Path, "/") {
		v.fail(append(cp, "path"), "path %q must start with /", ch.Path)
	}
	if ch.CAFile != "" {
		if _, err := os.Stat(ch.CAFile); err != nil {
			v.fail(append(cp, "ca_file"), "cannot read CA file: %v", err)
		}
	}
	if ch.Type == "dns" {
		if ch.Query == "" {
			v.fail(append(cp, "query"), "a dns check needs a query name")
		}
		if _, ok := dns.StringToType[strings.ToUpper(ch.QueryType)]; !ok {
			v.fail(append(cp, "query_type"), "unknown query type %q", ch.QueryType)
		}
		if _, ok := dns.StringToRcode[strings.ToUpper(ch.ExpectRcode)]; !ok {
			v.fail(append(cp, "expect_rcode"), "unknown rcode %q", ch.ExpectRcode)
		}
	}
	names := map[string]bool{}
	for i, e := range pl.Endpoints {
		ep := append(p, "endpoints", i)
		if e == nil {
			v.fail(ep, "empty endpoint")
			continue
		}
		if e.Region == "" {
			v.fail(append(ep, "region"), "region is required")
		} else if _, ok := v.cfg.Regions[e.Region]; !ok {
			v.fail(append(ep, "region"), "unknown region %q", e.Region)
		}
		if !e.Address.IsValid() && !v.idx.has(append(ep, "address")) {
			v.fail(append(ep, "address"), "address is required")
		}
		if names[e.Name] {
			v.fail(append(ep, "name"), "duplicate endpoint name %q", e.Name)
		}
		names[e.Name] = true
		if e.Weight < 0 {
			v.fail(append(ep, "weight"), "weight must not be negative")
		}
	}
}

// ZoneFor returns the configured zone that contains name (the longest
// match), or nil.
func (c *Config) ZoneFor(name string) *Zone {
	var best *Zone
	for _, z := range c.Zones {
		if z != nil && dns.IsSubDomain(z.Name, name) && (best == nil || len(z.Name) > len(best.Name)) {
			best = z
		}
	}
	return best
}

func (v *validator) validateZones() {
	c := v.cfg
	if len(c.Zones) == 0 {
		v.fail(path("zones"), "at least one zone is required")
	}
	seen := map[string]bool{}
	for i, z := range c.Zones {
		p := path("zones", i)
		if z == nil {
			v.fail(p, "empty zone")
			continue
		}
		if _, ok := dns.IsDomainName(z.Name); !ok || z.Name == "." {
			v.fail(append(p, "name"), "invalid zone name %q", z.Name)
		}
		if seen[z.Name] {
			v.fail(append(p, "name"), "duplicate zone %q", z.Name)
		}
		seen[z.Name] = true
		if len(z.NS) == 0 {
			v.fail(append(p, "ns"), "a zone needs at least one name server")
		}
		for j, ns := range z.NS {
			if _, ok := dns.IsDomainName(ns); !ok {
				v.fail(append(p, "ns", j), "invalid name server %q", ns)
			}
		}
		z.RecordLines = make([]int, len(z.Records))
		// Names holding a CNAME and names holding other data (RFC 1034
		// §3.6.2: a CNAME is alone at its name); the apex holds SOA and NS.
		cnameAt := map[string]int{}
		otherAt := map[string]int{z.Name: -1}
		for j, rec := range z.Records {
			rp := append(p, "records", j)
			z.RecordLines[j] = v.idx.line(rp)
			rr, err := ParseRecord(rec, z)
			if err != nil {
				v.fail(rp, "%v", err)
				continue
			}
			owner := rr.Header().Name
			if rr.Header().Rrtype == dns.TypeCNAME {
				if k, dup := cnameAt[owner]; dup {
					v.fail(rp, "%s already has a CNAME (records[%d]); a name has at most one", owner, k)
				} else if k, ok := otherAt[owner]; ok {
					v.fail(rp, "%s has other data (%s); a CNAME must be alone at its name", owner, otherName(k))
				}
				cnameAt[owner] = j
			} else {
				if k, ok := cnameAt[owner]; ok {
					v.fail(rp, "%s has a CNAME (records[%d]); no other data may be at that name", owner, k)
				}
				if _, ok := otherAt[owner]; !ok {
					otherAt[owner] = j
				}
			}
			if !dns.IsSubDomain(z.Name, rr.Header().Name) {
				v.fail(rp, "%s is outside zone %s", rr.Header().Name, z.Name)
			}
			if rr.Header().Rrtype == dns.TypeSOA {
				v.fail(rp, "set the SOA with zones[].soa, not as a record")
			}
		}
	}
}

func otherName(k int) string {
	if k < 0 {
		return "the zone's SOA and NS"
	}
	return fmt.Sprintf("records[%d]", k)
}

// ParseRecord parses one record in presentation format relative to zone,
// with the zone's default TTL.
func ParseRecord(text string, z *Zone) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), z.Name, "")
	zp.SetDefaultTTL(z.TTL)
	zp.SetIncludeAllowed(false)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("invalid record %q: %s", text, strings.TrimPrefix(err.Error(), "dns: "))
	}
	if !ok || rr == nil {
		return nil, fmt.Errorf("invalid record %q: empty", text)
	}
	if _, more := zp.Next(); more {
		return nil, fmt.Errorf("invalid record %q: one record per entry", text)
	}
	rr.Header().Name = strings.ToLower(rr.Header().Name)
	return rr, nil
}

func (v *validator) validateService(id string, s *Service) {
	c := v.cfg
	p := path("services", id)
	if !nameRE.MatchString(id) {
		v.fail(p, "invalid service id %q", id)
	}
	if s.Name == "" {
		v.fail(append(p, "name"), "name is required when more than one zone is configured")
	} else if z := c.ZoneFor(s.Name); z == nil {
		v.fail(append(p, "name"), "%s is in no configured zone", s.Name)
	} else {
		s.Zone = z.Name
	}
	if s.Pool == "" {
		v.fail(append(p, "pool"), "pool is required")
	} else if _, ok := c.Pools[s.Pool]; !ok {
		v.fail(append(p, "pool"), "unknown pool %q", s.Pool)
	}
	if !slices.Contains(Policies, s.Policy) {
		v.fail(append(p, "policy"), "unknown policy %q (want one of %s)", s.Policy, strings.Join(Policies, ", "))
	}
	for i, r := range s.Regions {
		if _, ok := c.Regions[r]; !ok {
			v.fail(append(p, "regions", i), "unknown region %q", r)
		}
	}
	if s.Policy == "weighted" {
		total := 0
		for r, w := range s.Weights {
			if _, ok := c.Regions[r]; !ok {
				v.fail(append(p, "weights", r), "unknown region %q", r)
			}
			if w < 0 {
				v.fail(append(p, "weights", r), "weight must not be negative")
			}
			total += w
		}
		if total <= 0 {
			v.fail(append(p, "weights"), "the weighted policy needs weights summing to more than 0")
		}
	}
	for i, g := range s.GeoMap {
		gp := append(p, "geo_map", i)
		selectors := 0
		if g.CIDR != nil {
			selectors++
		}
		if g.Continent != "" {
			selectors++
		}
		if g.Country != "" {
			selectors++
		}
		if g.Subdivision != "" && g.Country == "" {
			v.fail(gp, "subdivision needs a country")
		}
		if selectors != 1 {
			v.fail(gp, "a rule needs exactly one of cidr, continent or country")
		}
		if len(g.Regions) == 0 {
			v.fail(append(gp, "regions"), "a rule needs at least one region")
		}
		for j, r := range g.Regions {
			if _, ok := c.Regions[r]; !ok {
				v.fail(append(gp, "regions", j), "unknown region %q", r)
			}
		}
	}
	if !slices.Contains(WhenAllDowns, s.WhenAllDown) {
		v.fail(append(p, "when_all_down"), "unknown value %q (want one of %s)", s.WhenAllDown, strings.Join(WhenAllDowns, ", "))
	}
	if s.WhenAllDown == "fallback" && len(s.Fallback) == 0 {
		v.fail(append(p, "fallback"), "when_all_down: fallback needs fallback addresses")
	}
	if s.MaxRecords < 0 {
		v.fail(append(p, "max_records"), "must not be negative")
	}
	if s.TTL > 86400 {
		v.fail(append(p, "ttl"), "ttl %d above one day", s.TTL)
	}
	// A service name must not also hold a CNAME.
	if z := c.ZoneFor(s.Name); z != nil {
		for j, rec := range z.Records {
			rr, err := ParseRecord(rec, z)
			if err == nil && rr.Header().Name == s.Name && (rr.Header().Rrtype == dns.TypeCNAME || rr.Header().Rrtype == dns.TypeA || rr.Header().Rrtype == dns.TypeAAAA) {
				v.fail(append(p, "name"), "%s also has a static %s record (zones[].records[%d])", s.Name, dns.TypeToString[rr.Header().Rrtype], j)
			}
		}
	}
	for other, o := range c.Services {
		if other < id && o.Name == s.Name && s.Name != "" {
			v.fail(append(p, "name"), "name %s already used by service %q", s.Name, other)
		}
	}
}

func (v *validator) validateProxy() {
	c := v.cfg
	px := c.Proxy
	if px == nil {
		return
	}
	p := path("proxy")
	if len(px.Listen) == 0 && len(px.ListenTLS) == 0 {
		v.fail(append(p, "listen"), "the proxy needs at least one listen address")
	}
	for i, l := range px.Listen {
		v.hostPort(append(p, "listen", i), l)
	}
	for i, l := range px.ListenTLS {
		v.hostPort(append(p, "listen_tls", i), l)
	}
	if len(px.ListenTLS) > 0 && (px.CertFile == "" || px.KeyFile == "") {
		v.fail(append(p, "cert_file"), "listen_tls needs cert_file and key_file")
	}
	if px.LocalRegion == "" {
		v.fail(append(p, "local_region"), "local_region is required")
	} else if _, ok := c.Regions[px.LocalRegion]; !ok {
		v.fail(append(p, "local_region"), "unknown region %q", px.LocalRegion)
	}
	if len(px.Routes) == 0 {
		v.fail(append(p, "routes"), "the proxy needs at least one route")
	}
	for i, r := range px.Routes {
		rp := append(p, "routes", i)
		if r.Host == "" {
			v.fail(append(rp, "host"), "host is required")
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			v.fail(append(rp, "path_prefix"), "must start with /")
		}
		if _, ok := c.Services[r.Service]; !ok {
			v.fail(append(rp, "service"), "unknown service %q", r.Service)
		}
	}
	if !slices.Contains(LoadBalancers, px.LoadBalancing) {
		v.fail(append(p, "load_balancing"), "unknown value %q (want one of %s)", px.LoadBalancing, strings.Join(LoadBalancers, ", "))
	}
	if px.UpstreamScheme != "http" && px.UpstreamScheme != "https" {
		v.fail(append(p, "upstream_scheme"), "want http or https")
	}
	if px.Outlier.MaxEjectionPercent < 0 || px.Outlier.MaxEjectionPercent > 100 {
		v.fail(append(p, "outlier", "max_ejection_percent"), "out of range 0..100")
	}
	if px.Retries.Attempts < 0 || px.Retries.Attempts > 10 {
		v.fail(append(p, "retries", "attempts"), "out of range 0..10")
	}
}
