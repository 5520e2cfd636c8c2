package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolveVia asks server (host:port) for name's A records from inside ns,
// from local address from, with recursion desired, as a stub resolver
// would. It returns the addresses sorted, or an error for a failed
// exchange or a non-NOERROR answer.
func resolveVia(ctx context.Context, ns, from, server, name string, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := nsDialer{ns: ns, local: net.ParseIP(from)}
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: 1232}
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn, UDPSize: 1232})
	if err != nil {
		return nil, fmt.Errorf("query %s A at %s from %s: %w", name, server, from, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("query %s A at %s from %s: rcode %s", name, server, from, dns.RcodeToString[resp.Rcode])
	}
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// resolve asks the Unbound resolver for the service from a client address.
func (w *world) resolve(ctx context.Context, from string) ([]string, error) {
	return resolveVia(ctx, w.client, from, addrPort(resolverAddr, "53"), serviceName, 5*time.Second)
}

// httpClient returns a client whose connections are made from inside ns,
// from local address from. Keep-alives are off so that every request is a
// new connection, as a stream of independent users would make.
func httpClient(ns, from string, timeout time.Duration) *http.Client {
	d := nsDialer{ns: ns, local: net.ParseIP(from)}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       d.DialContext,
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// adminCall calls an admin API of a gslb instance (addr is its host) from
// the client namespace. token "" sends no Authorization header.
func (w *world) adminCall(ctx context.Context, method, host, path, token, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addrPort(host, adminPort)+path, strings.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Gslb-Actor", "e2e")
	resp, err := httpClient(w.client, "", 5*time.Second).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s on %s: %w", method, path, host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("%s %s on %s: read body: %w", method, path, host, err)
	}
	return resp.StatusCode, string(data), nil
}

// metricSum adds up, over all series, the samples of every metric whose
// name contains one of the substrings (text exposition format). It also
// returns the names that matched.
func metricSum(exposition string, substrings ...string) (float64, []string) {
	var sum float64
	var names []string
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		match := false
		for _, s := range substrings {
			if strings.Contains(name, s) {
				match = true
			}
		}
		if !match {
			continue
		}
		rest := line[len(name):]
		if strings.HasPrefix(rest, "{") {
			rest = rest[strings.LastIndex(rest, "}")+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		sum += v
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return sum, names
}

// sameSet reports whether got holds exactly want (both sorted).
func sameSet(got []string, want ...string) bool {
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(got, w)
}

// isAddr reports whether s is an IP address (used to read dig +short).
func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
