package proxy

import (
	"net"
	"sort"
	"strings"

	"github.com/gslb-dev/gslb/internal/config"
)

// route is one configured Host (+ optional path prefix) → service mapping.
type route struct {
	host    string
	prefix  string
	service string
	// label names the route in metrics: host plus prefix, bounded by config.
	label string
}

// routeTable matches requests to routes: exact host (case-insensitive, port
// and trailing dot ignored), then the longest matching path prefix.
type routeTable struct {
	byHost map[string][]*route // each slice sorted by prefix length, longest first
}

func newRouteTable(rs []config.ProxyRoute) *routeTable {
	t := &routeTable{byHost: make(map[string][]*route, len(rs))}
	for _, r := range rs {
		h := normalizeHost(r.Host)
		rt := &route{host: h, prefix: r.PathPrefix, service: r.Service, label: h + r.PathPrefix}
		t.byHost[h] = append(t.byHost[h], rt)
	}
	for _, list := range t.byHost {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].prefix) > len(list[j].prefix) })
	}
	return t
}

// match returns the route for a request's Host header and URL path, or nil.
func (t *routeTable) match(host, path string) *route {
	list := t.byHost[normalizeHost(host)]
	for _, r := range list {
		if prefixMatch(r.prefix, path) {
			return r
		}
	}
	return nil
}

// prefixMatch reports whether path lies under prefix on a segment boundary:
// "/api" matches "/api" and "/api/x" but not "/apix"; "/api/" matches
// "/api/x". The empty prefix matches every path.
func prefixMatch(prefix, path string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// hostOfHostPort is net.SplitHostPort's host, if it succeeds. Without a
// colon there is no port, and SplitHostPort is not called to fail
// (allocating its error) on the common Host of a name alone.
func hostOfHostPort(h string) (string, bool) {
	if strings.IndexByte(h, ':') < 0 {
		return "", false
	}
	host, _, err := net.SplitHostPort(h)
	return host, err == nil
}

// normalizeHost lower-cases a Host header and strips its port and any
// trailing dot. It never fails: garbage yields a host no route matches.
func normalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if host, ok := hostOfHostPort(h); ok {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	// Fast path: most Host headers are already lower case.
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
