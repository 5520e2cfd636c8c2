// Package config defines gslb's YAML configuration: its schema, defaults,
// validation with file:line errors, and the embedded demo configuration.
//
// A Config returned by Load or Parse is validated and immutable: callers must
// not modify it. Reloading builds a new Config.
package config

import (
	"net/netip"
	"time"
)

// Config is the whole gslb configuration.
type Config struct {
	// Source names where the config came from (a file path or "embedded demo").
	Source string `yaml:"-"`
	// Demo is true for the embedded demo config; cmd/gslb then starts the
	// in-process demo ingresses.
	Demo bool `yaml:"-"`

	DNS       DNSConfig           `yaml:"dns"`
	Admin     AdminConfig         `yaml:"admin"`
	Log       LogConfig           `yaml:"log"`
	StateFile string              `yaml:"state_file"`
	Geo       GeoConfig           `yaml:"geo"`
	Regions   map[string]*Region  `yaml:"regions"`
	Pools     map[string]*Pool    `yaml:"pools"`
	Zones     []*Zone             `yaml:"zones"`
	Services  map[string]*Service `yaml:"services"`
	Proxy     *ProxyConfig        `yaml:"proxy"`
}

// DNSConfig configures the DNS listeners and their limits.
type DNSConfig struct {
	// Listen lists host:port addresses; each is served over UDP and TCP.
	Listen []string `yaml:"listen"`
	// UDPSize is the EDNS UDP payload size gslb advertises and the cap on
	// UDP responses (DNS Flag Day 2020: 1232).
	UDPSize uint16 `yaml:"udp_size"`
	// ECS configures EDNS Client Subnet handling (RFC 7871).
	ECS ECSConfig `yaml:"ecs"`
	// MaxTCPConnections bounds concurrent TCP connections (all clients).
	MaxTCPConnections int `yaml:"max_tcp_connections"`
	// MaxTCPConnectionsPerIP bounds concurrent TCP connections from one IP.
	MaxTCPConnectionsPerIP int `yaml:"max_tcp_connections_per_ip"`
	// TCPIdleTimeout closes a TCP connection idle for this long (RFC 7766).
	TCPIdleTimeout time.Duration `yaml:"tcp_idle_timeout"`
	// TCPReadTimeout bounds reading one whole query over TCP.
	TCPReadTimeout time.Duration `yaml:"tcp_read_timeout"`
	// MaxQueriesPerTCPConnection closes a connection after this many queries (0 = unlimited).
	MaxQueriesPerTCPConnection int `yaml:"max_queries_per_tcp_connection"`
	// MaxUDPAmplification caps a UDP answer at this multiple of the query's
	// size; a larger answer is sent truncated (TC=1) so the client retries
	// over TCP, which a spoofed source cannot. 0 disables the cap.
	MaxUDPAmplification int `yaml:"max_udp_amplification"`
	// UDPSockets is the number of SO_REUSEPORT UDP sockets per listen address.
	UDPSockets int `yaml:"udp_sockets"`
	// UDPReader is how each UDP socket is read: UDPReaderThread (an OS
	// thread of its own that blocks in recvmmsg, Linux only) or
	// UDPReaderNetpoll (a goroutine woken by the Go runtime's poller).
	UDPReader string `yaml:"udp_reader"`
	// CacheSize is the number of packed answers kept (0 disables the cache).
	CacheSize int `yaml:"cache_size"`
	// RRL configures response rate limiting.
	RRL RRLConfig `yaml:"rrl"`
}

// The values of DNSConfig.UDPReader.
const (
	UDPReaderThread  = "thread"
	UDPReaderNetpoll = "netpoll"
)

// ECSConfig configures EDNS Client Subnet handling.
type ECSConfig struct {
	// Enabled turns ECS handling on (default true).
	Enabled *bool `yaml:"enabled"`
	// TrustedResolvers, when not empty, lists the networks whose ECS options
	// are honoured; ECS from others is ignored (the source address is used).
	TrustedResolvers []Prefix `yaml:"trusted_resolvers"`
	// MaxScopeV4 and MaxScopeV6 cap the SCOPE PREFIX-LENGTH returned.
	MaxScopeV4 int `yaml:"max_scope_v4"`
	MaxScopeV6 int `yaml:"max_scope_v6"`
}

// ECSEnabled reports whether ECS handling is on.
func (e ECSConfig) ECSEnabled() bool { return e.Enabled == nil || *e.Enabled }

// RRLConfig configures response rate limiting (Knot/NSD/BIND style).
type RRLConfig struct {
	// Enabled turns RRL on (default true).
	Enabled *bool `yaml:"enabled"`
	// ResponsesPerSecond per client network for ordinary answers.
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// ErrorsPerSecond per client network for NXDOMAIN, REFUSED, FORMERR and other errors.
	ErrorsPerSecond int `yaml:"errors_per_second"`
	// Slip: every Nth rate-limited response is sent truncated (TC=1); 0 drops all.
	Slip int `yaml:"slip"`
	// IPv4PrefixLength and IPv6PrefixLength group clients into networks.
	IPv4PrefixLength int `yaml:"ipv4_prefix_length"`
	IPv6PrefixLength int `yaml:"ipv6_prefix_length"`
	// Exempt lists networks never rate limited.
	Exempt []Prefix `yaml:"exempt"`
	// TableSize bounds the number of tracked client networks.
	TableSize int `yaml:"table_size"`
}

// RRLEnabled reports whether RRL is on.
func (r RRLConfig) RRLEnabled() bool { return r.Enabled == nil || *r.Enabled }

// AdminConfig configures the admin HTTP listener.
type AdminConfig struct {
	// Listen is the host:port of the admin listener ("off" disables it).
	Listen string `yaml:"listen"`
	// TokenFile names a file holding the bearer token for mutating calls.
	TokenFile string `yaml:"token_file"`
	// Token is an inline token; only the embedded demo should use it.
	Token string `yaml:"token"`
	// MaxBodyBytes bounds admin request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// LogConfig configures structured logging.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or console.
	Format string `yaml:"format"`
}

// GeoConfig configures client location.
type GeoConfig struct {
	// Database is the path of a MaxMind DB format file ("" for none).
	Database string `yaml:"database"`
	// Schema of the database: "geoip2" (GeoIP2/GeoLite2 City or Country) or
	// "dbip" (the flat DB-IP / ip-location-db schema).
	Schema string `yaml:"schema"`
	// ReloadInterval is how often the database file is checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// CIDRMaps locate networks explicitly; they take precedence over the database.
	CIDRMaps []CIDRMap `yaml:"cidr_maps"`
}

// CIDRMap locates a network explicitly: either at a region (its
// coordinates) or at a country/subdivision/coordinates.
type CIDRMap struct {
	CIDR        Prefix   `yaml:"cidr"`
	Region      string   `yaml:"region"`
	Country     string   `yaml:"country"`
	Continent   string   `yaml:"continent"`
	Subdivision string   `yaml:"subdivision"`
	Latitude    *float64 `yaml:"latitude"`
	Longitude   *float64 `yaml:"longitude"`
}

// Region is a deployment region (a cluster).
type Region struct {
	// Name is the key in the regions map.
	Name string `yaml:"-"`
	// Latitude and Longitude place the region for geo-nearest routing.
	Latitude  float64 `yaml:"latitude"`
	Longitude float64 `yaml:"longitude"`
	// Bias grows (positive) or shrinks (negative) the region's area, -99..99,
	// like Route53 geoproximity bias.
	Bias int `yaml:"bias"`
	// Description is free text shown on the status page.
	Description string `yaml:"description"`
}

// Pool is a set of endpoints across regions with one health check.
type Pool struct {
	// Name is the key in the pools map.
	Name string `yaml:"-"`
	// MinHealthy endpoints of a region make the region healthy for the pool.
	MinHealthy int `yaml:"min_healthy"`
	// Check is the active health check of every endpoint in the pool.
	Check Check `yaml:"check"`
	// Endpoints are the pool's members.
	Endpoints []*Endpoint `yaml:"endpoints"`
}

// Endpoint is one regional ingress address.
type Endpoint struct {
	// Name identifies the endpoint within its pool (default "<region>-<index>").
	Name string `yaml:"name"`
	// Region names a configured region.
	Region string `yaml:"region"`
	// Address is the IP answered in DNS (A or AAAA) and used by probes and the proxy.
	Address IP `yaml:"address"`
	// Port is the port probed and proxied to (default 80, 443 for https checks).
	Port uint16 `yaml:"port"`
	// Weight for weighted selection within a region (default 1).
	Weight int `yaml:"weight"`
}

// AddrPort returns the endpoint's address and port.
func (e *Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.Address.Addr, e.Port) }

// Check is an active health check.
type Check struct {
	// Type is http, https, tcp, dns or none.
	Type string `yaml:"type"`
	// Interval between probes of one endpoint.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter spreads probes by up to this fraction of the interval (0..0.5).
	Jitter float64 `yaml:"jitter"`
	// Rise consecutive successes make an endpoint healthy.
	Rise int `yaml:"rise"`
	// Fall consecutive failures make an endpoint unhealthy.
	Fall int `yaml:"fall"`
	// ColdStart is assume_healthy, assume_unhealthy or last_known.
	ColdStart string `yaml:"cold_start"`
	// Port overrides the endpoint port for probes.
	Port uint16 `yaml:"port"`

	// HTTP(S) settings.
	Method             string            `yaml:"method"`
	Path               string            `yaml:"path"`
	Host               string            `yaml:"host"`
	SNI                string            `yaml:"sni"`
	ExpectStatus       []string          `yaml:"expect_status"`
	ExpectBody         string            `yaml:"expect_body"`
	ExpectBodyRegexp   string            `yaml:"expect_body_regexp"`
	BodyLimit          int64             `yaml:"body_limit"`
	CAFile             string            `yaml:"ca_file"`
	InsecureSkipVerify bool              `yaml:"insecure_skip_verify"`
	Headers            map[string]string `yaml:"headers"`

	// DNS settings: the query sent and the rcode expected.
	Query       string `yaml:"query"`
	QueryType   string `yaml:"query_type"`
	ExpectRcode string `yaml:"expect_rcode"`
}

// Zone is an authoritative zone with its static records.
type Zone struct {
	// Name is the zone apex, fully qualified, lower case (normalised by Load).
	Name string `yaml:"name"`
	// TTL is the default TTL of records without one.
	TTL uint32 `yaml:"ttl"`
	// SOA of the zone.
	SOA SOA `yaml:"soa"`
	// NS lists the zone's name servers (FQDN or relative to the zone).
	NS []string `yaml:"ns"`
	// Records are resource records in RFC 1035 presentation format, relative
	// to the zone ("www 300 IN A 192.0.2.1", "@ MX 10 mail").
	Records []string `yaml:"records"`
	// RecordLines holds the YAML line of each record (parallel to Records).
	RecordLines []int `yaml:"-"`
}

// SOA is a zone's start of authority.
type SOA struct {
	MName   string `yaml:"mname"`
	RName   string `yaml:"rname"`
	Serial  uint32 `yaml:"serial"`
	Refresh uint32 `yaml:"refresh"`
	Retry   uint32 `yaml:"retry"`
	Expire  uint32 `yaml:"expire"`
	Minimum uint32 `yaml:"minimum"`
	TTL     uint32 `yaml:"ttl"`
}

// Service is a GSLB name answered from a pool of regional endpoints.
type Service struct {
	// ID is the key in the services map.
	ID string `yaml:"-"`
	// Name is the owner name, fully qualified (normalised by Load; default
	// "<id>.<zone>" when exactly one zone is configured).
	Name string `yaml:"name"`
	// Zone is the apex of the zone holding Name (filled by Load).
	Zone string `yaml:"-"`
	// Pool names the pool answering this service.
	Pool string `yaml:"pool"`
	// Policy is geo, failover, weighted or all.
	Policy string `yaml:"policy"`
	// Regions orders regions (failover order; candidate set for geo).
	Regions []string `yaml:"regions"`
	// Weights per region for the weighted policy.
	Weights map[string]int `yaml:"weights"`
	// GeoMap holds explicit geo rules, first match wins.
	GeoMap []GeoRule `yaml:"geo_map"`
	// TTL of answers.
	TTL uint32 `yaml:"ttl"`
	// DegradedTTL is used while the pool is degraded (0: TTL/2, at least 1).
	DegradedTTL uint32 `yaml:"degraded_ttl"`
	// MaxRecords bounds the records returned per answer (0: all of the region).
	MaxRecords int `yaml:"max_records"`
	// WhenAllDown is fail_open, fallback or fail_closed.
	WhenAllDown string `yaml:"when_all_down"`
	// Fallback addresses answered when all are down and WhenAllDown is fallback.
	Fallback []IP `yaml:"fallback"`
}

// GeoRule maps clients to an ordered list of regions.
type GeoRule struct {
	CIDR        *Prefix  `yaml:"cidr"`
	Continent   string   `yaml:"continent"`
	Country     string   `yaml:"country"`
	Subdivision string   `yaml:"subdivision"`
	Regions     []string `yaml:"regions"`
}

// ProxyConfig configures the optional L7 reverse proxy.
type ProxyConfig struct {
	// Listen addresses for plain HTTP (HTTP/1.1 and h2c).
	Listen []string `yaml:"listen"`
	// ListenTLS addresses for HTTPS (HTTP/1.1 and HTTP/2).
	ListenTLS []string `yaml:"listen_tls"`
	CertFile  string   `yaml:"cert_file"`
	KeyFile   string   `yaml:"key_file"`
	// LocalRegion is preferred while healthy.
	LocalRegion string `yaml:"local_region"`
	// Routes map Host (and optional path prefix) to a service.
	Routes []ProxyRoute `yaml:"routes"`
	// LoadBalancing across endpoints of a region: round_robin or least_in_flight.
	LoadBalancing string `yaml:"load_balancing"`
	// UpstreamScheme is http or https.
	UpstreamScheme string `yaml:"upstream_scheme"`
	// FeedHealth makes passive ejections visible to DNS answers.
	FeedHealth bool `yaml:"feed_health"`
	// FastHTTP1 lets gslb's own HTTP/1.1 front end serve the plainest
	// requests (bodiless GET and HEAD) on plain listeners, handing every
	// other connection to net/http; false: net/http serves them all.
	FastHTTP1 bool `yaml:"fast_http1"`

	Retries   ProxyRetries   `yaml:"retries"`
	Outlier   ProxyOutlier   `yaml:"outlier"`
	RateLimit ProxyRateLimit `yaml:"rate_limit"`
	Limits    ProxyLimits    `yaml:"limits"`
	Timeouts  ProxyTimeouts  `yaml:"timeouts"`
	// TrustedProxies are networks whose X-Forwarded-For is believed.
	TrustedProxies []Prefix `yaml:"trusted_proxies"`
	// AccessLog enables the access log; AccessLogSample logs 1 in N (1 = all).
	AccessLog       bool `yaml:"access_log"`
	AccessLogSample int  `yaml:"access_log_sample"`
}

// ProxyRoute maps a Host and optional path prefix to a service.
type ProxyRoute struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Service    string `yaml:"service"`
}

// ProxyRetries bounds retries.
type ProxyRetries struct {
	Attempts     int           `yaml:"attempts"`
	Budget       time.Duration `yaml:"budget"`
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
}

// ProxyOutlier configures passive outlier detection (Envoy/Istio style).
type ProxyOutlier struct {
	ConsecutiveErrors  int           `yaml:"consecutive_errors"`
	Interval           time.Duration `yaml:"interval"`
	BaseEjectionTime   time.Duration `yaml:"base_ejection_time"`
	MaxEjectionTime    time.Duration `yaml:"max_ejection_time"`
	MaxEjectionPercent int           `yaml:"max_ejection_percent"`
}

// ProxyRateLimit configures per-client rate limiting.
type ProxyRateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
	MaxClients        int     `yaml:"max_clients"`
}

// ProxyLimits bounds sizes and concurrency.
type ProxyLimits struct {
	MaxHeaderBytes           int   `yaml:"max_header_bytes"`
	MaxBodyBytes             int64 `yaml:"max_body_bytes"`
	MaxConcurrentPerUpstream int   `yaml:"max_concurrent_per_upstream"`
	MaxPending               int   `yaml:"max_pending"`
}

// ProxyTimeouts bounds time.
type ProxyTimeouts struct {
	ReadHeader time.Duration `yaml:"read_header"`
	Read       time.Duration `yaml:"read"`
	Write      time.Duration `yaml:"write"`
	Idle       time.Duration `yaml:"idle"`
	Upstream   time.Duration `yaml:"upstream"`
	Dial       time.Duration `yaml:"dial"`
}
