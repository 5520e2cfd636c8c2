package proxy

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

func TestRouteMatch(t *testing.T) {
	rt := newRouteTable([]config.ProxyRoute{
		{Host: "www.example.com", Service: "web"},
		{Host: "www.example.com", PathPrefix: "/api", Service: "api"},
		{Host: "www.example.com", PathPrefix: "/api/v2/", Service: "api2"},
		{Host: "shop.example.com", PathPrefix: "/cart", Service: "cart"},
	})
	for _, tc := range []struct{ host, path, want string }{
		{"www.example.com", "/", "web"},
		{"WWW.EXAMPLE.COM:8080", "/x", "web"},
		{"www.example.com.", "/x", "web"},
		{"www.example.com", "/api", "api"},
		{"www.example.com", "/api/users", "api"},
		{"www.example.com", "/apix", "web"},
		{"www.example.com", "/api/v2/x", "api2"},
		{"www.example.com", "/api/v2", "api"},
		{"shop.example.com", "/cart/1", "cart"},
		{"shop.example.com", "/", ""},
		{"other.example.com", "/", ""},
		{"", "/", ""},
		{"[::1]:80", "/", ""},
		{"www.example.com:bad:port", "/", ""},
	} {
		got := ""
		if r := rt.match(tc.host, tc.path); r != nil {
			got = r.service
		}
		if got != tc.want {
			t.Errorf("match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := trustedNets{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no xff", "192.0.2.1:5000", nil, "192.0.2.1"},
		{"untrusted peer ignores xff", "192.0.2.1:5000", []string{"203.0.113.5"}, "192.0.2.1"},
		{"trusted peer", "10.1.1.1:5000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"right-most untrusted hop", "10.1.1.1:5000", []string{"198.51.100.7, 203.0.113.5, 10.2.2.2"}, "203.0.113.5"},
		{"several header lines", "127.0.0.1:5000", []string{"198.51.100.7", "203.0.113.5, 10.2.2.2"}, "203.0.113.5"},
		{"all trusted", "10.1.1.1:5000", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage hop stops the walk", "10.1.1.1:5000", []string{"198.51.100.7, not-an-ip, 10.2.2.2"}, "10.2.2.2"},
		{"ipv6 remote", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"mapped remote", "[::ffff:192.0.2.9]:443", nil, "192.0.2.9"},
		{"empty hops", "10.1.1.1:5000", []string{" , ,203.0.113.5,"}, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := trusted.clientIP(r); got.String() != tc.want {
				t.Fatalf("clientIP = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[float64]string{0: "1", 0.2: "1", 1: "1", 1.1: "2", 30: "30"} {
		if got := retryAfter(secs(d)); got != want {
			t.Errorf("retryAfter(%vs) = %s, want %s", d, got, want)
		}
	}
}

func TestIdempotentMethods(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "PUT": true, "DELETE": true, "TRACE": true, "POST": false, "PATCH": false, "CONNECT": false} {
		if isIdempotent(m) != want {
			t.Errorf("isIdempotent(%s) != %v", m, want)
		}
	}
}

func TestStatusLabelBounded(t *testing.T) {
	for code, want := range map[int]string{200: "200", 418: "418", 99: "other", 600: "other", 999: "other"} {
		if got := statusText(code); got != want {
			t.Errorf("statusText(%d) = %q, want %q", code, got, want)
		}
	}
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
