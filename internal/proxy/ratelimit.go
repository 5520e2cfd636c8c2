package proxy

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/gslb-dev/gslb/internal/config"
)

// clientLimiter is a per-client token bucket, keyed by client IP, with the
// limiters kept in a bounded LRU so that a flood of distinct addresses costs
// bounded memory (an evicted client starts again with a full bucket).
type clientLimiter struct {
	cfg   config.ProxyRateLimit
	cache *lru.Cache[netip.Addr, *rate.Limiter]
}

// newClientLimiter returns nil when rate limiting is disabled
// (RequestsPerSecond < 0).
func newClientLimiter(cfg config.ProxyRateLimit) (*clientLimiter, error) {
	if cfg.RequestsPerSecond < 0 {
		return nil, nil
	}
	size := cfg.MaxClients
	if size <= 0 {
		size = config.DefaultProxyRateLimitMaxClients
	}
	c, err := lru.New[netip.Addr, *rate.Limiter](size)
	if err != nil {
		return nil, err
	}
	return &clientLimiter{cfg: cfg, cache: c}, nil
}

// allow takes one token for client. When none is available it returns
// false and how long until one is.
func (l *clientLimiter) allow(client netip.Addr, now time.Time) (bool, time.Duration) {
	lim, ok := l.cache.Get(client)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.cfg.RequestsPerSecond), max(l.cfg.Burst, 1))
		if existing, found, _ := l.cache.PeekOrAdd(client, lim); found {
			lim = existing // added by a concurrent request meanwhile
		}
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return true, 0
	}
	r.CancelAt(now)
	return false, d
}

// retryAfter formats a wait as whole seconds for Retry-After (at least 1).
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// trustedNets is the set of networks whose X-Forwarded-For is believed.
type trustedNets []netip.Prefix

func (t trustedNets) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr parses a request's RemoteAddr; the zero Addr when it cannot.
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientIP is the address a request is rate limited by: RemoteAddr, or,
// when RemoteAddr is a trusted proxy, the right-most X-Forwarded-For hop
// that is not itself trusted (walking right to left). An unparsable hop
// stops the walk at the last trusted address.
func (t trustedNets) clientIP(r *http.Request) netip.Addr {
	cur := remoteAddr(r)
	if len(t) == 0 || !cur.IsValid() || !t.contains(cur) {
		return cur
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			var hop string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				hop, v = v, ""
			}
			hop = strings.TrimSpace(hop)
			if hop != "" {
				a, err := netip.ParseAddr(hop)
				if err != nil {
					return cur
				}
				cur = a.Unmap()
				if !t.contains(cur) {
					return cur
				}
			}
			if v == "" {
				break
			}
		}
	}
	return cur
}
