package routing

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/geo"
)

// This file holds everything only Explain runs: trace lines, candidate
// tables and the text rendering shared by `gslb explain` and the admin API.

func (e *Engine) traceStart(cs *compiledService, q Query, client netip.Addr, v *healthView, tr *tracer) {
	qt := "any type"
	if q.QType != 0 {
		qt = dns.TypeToString[q.QType]
	}
	switch {
	case !client.IsValid():
		tr.add("client unknown, %s", qt)
	case client.BitLen() > 0 && q.SourcePrefix > 0 && q.SourcePrefix < q.Client.BitLen():
		tr.add("client %s/%d (ECS), %s", client, q.SourcePrefix, qt)
	default:
		tr.add("client %s, %s", client, qt)
	}
	tr.add("service %s (%s), pool %s, policy %s, when_all_down %s", cs.svc.ID, cs.svc.Name, cs.pool.Name, policyName(cs.svc.Policy), cs.svc.WhenAllDown)
	tr.add("health snapshot v%d", v.snap.Version)
}

func policyName(p string) string {
	if p == "" {
		return PolicyGeo
	}
	return p
}

func traceLocation(loc geo.Location, client netip.Addr, tr *tracer) {
	if !client.IsValid() {
		tr.add("location: none (no client address)")
		return
	}
	tr.add("location: %s", describeLocation(loc))
}

// describeLocation renders a Location in one line.
func describeLocation(loc geo.Location) string {
	if !loc.Found() {
		if loc.Network.IsValid() {
			return "unknown (nothing known for " + loc.Network.String() + ")"
		}
		return "unknown"
	}
	var parts []string
	parts = append(parts, loc.Source)
	if loc.Network.IsValid() {
		parts = append(parts, loc.Network.String())
	}
	if loc.Region != "" {
		parts = append(parts, "region "+loc.Region)
	}
	var place []string
	for _, s := range []string{loc.Country, loc.Subdivision, loc.Continent} {
		if s != "" {
			place = append(place, s)
		}
	}
	if len(place) > 0 {
		parts = append(parts, strings.Join(place, "/"))
	}
	if loc.HasCoordinates {
		c := fmt.Sprintf("(%.2f, %.2f)", loc.Latitude, loc.Longitude)
		if loc.Approximate {
			c += " approximate: continent centre"
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, " ")
}

// regionState says why a region is or is not eligible.
func regionState(rv *regionView, fam int) string {
	switch {
	case rv.drained:
		return fmt.Sprintf("drained (%d/%d endpoints up)", rv.upCount, rv.total)
	case !rv.up:
		return fmt.Sprintf("down (%d/%d endpoints up, below min_healthy)", rv.upCount, rv.total)
	case len(rv.targets[fam]) == 0:
		return fmt.Sprintf("up but no up %s endpoint", famName(fam))
	}
	return fmt.Sprintf("up (%d/%d endpoints up)", rv.upCount, rv.total)
}

// candidates describes the regions in order, then the rest of the universe.
func (e *Engine) candidates(cs *compiledService, v *healthView, fam int, order []int, loc geo.Location) []Candidate {
	seen := make([]bool, len(cs.regions))
	var out []Candidate
	add := func(ri int) {
		if seen[ri] {
			return
		}
		seen[ri] = true
		r := &cs.regions[ri]
		rv := &v.regions[ri]
		c := Candidate{
			Region: r.name, DistanceKm: -1, BiasedKm: -1, Bias: r.bias, Weight: int(r.weight),
			Up: rv.up, Eligible: rv.eligible(fam), Drained: rv.drained, UpEndpoints: rv.upCount, Endpoints: rv.total,
		}
		if loc.HasCoordinates {
			c.DistanceKm = geo.DistanceKm(loc.Latitude, loc.Longitude, r.lat, r.lon)
			c.BiasedKm = c.DistanceKm * (1 - float64(r.bias)/100)
		}
		out = append(out, c)
	}
	for _, ri := range order {
		add(ri)
	}
	for ri := range cs.regions {
		add(ri)
	}
	return out
}

func (e *Engine) traceAnswer(cs *compiledService, d *Decision, hashed bool, tr *tracer) {
	var eps []string
	for _, t := range d.Targets {
		eps = append(eps, t.Endpoint+" "+t.Addr.String())
	}
	where := "region " + d.Region
	if d.Region == "" {
		where = "all regions"
	}
	tr.add("answer from %s (%s): %s", where, d.Reason, strings.Join(eps, ", "))
	if hashed {
		tr.add("max_records %d: endpoints chosen by hash of the client network", cs.svc.MaxRecords)
	}
	traceTTLScope(cs, d, tr)
}

func (e *Engine) traceAllDown(cs *compiledService, d *Decision, tr *tracer) {
	switch d.Reason {
	case ReasonFallback:
		tr.add("no region has a healthy endpoint: when_all_down fallback answers %v", d.Fallback)
	case ReasonFailClosed:
		tr.add("no region has a healthy endpoint: when_all_down fail_closed answers nothing (NODATA)")
	default:
		tr.add("no region has a healthy endpoint: when_all_down fail_open answers all %d configured endpoint(s)", len(d.Targets))
	}
	traceTTLScope(cs, d, tr)
}

func traceTTLScope(cs *compiledService, d *Decision, tr *tracer) {
	if d.TTL != cs.ttl {
		tr.add("ttl %d (degraded; normal %d)", d.TTL, cs.ttl)
	} else {
		tr.add("ttl %d", d.TTL)
	}
	if d.Scope == 0 {
		tr.add("ecs scope /0: the answer does not depend on the client")
	} else {
		tr.add("ecs scope /%d", d.Scope)
	}
}

func netipPrefixString(a netip.Addr, bits int) string {
	p, err := a.Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// FormatExplain writes a decision made by Explain as text: the client and
// its location, the candidate regions with distances and health, the rule
// that won, the answer, TTL, ECS scope and the step-by-step trace.
func FormatExplain(w io.Writer, d Decision) error {
	var b strings.Builder
	fmt.Fprintf(&b, "service:   %s", d.Service)
	if d.Policy != "" {
		fmt.Fprintf(&b, " (policy %s)", d.Policy)
	}
	b.WriteByte('\n')
	client := "unknown"
	if d.Query.Client.IsValid() {
		client = d.Query.Client.String()
		if d.Query.SourcePrefix > 0 && d.Query.SourcePrefix < d.Query.Client.BitLen() {
			client = fmt.Sprintf("%s/%d", client, d.Query.SourcePrefix)
		}
	}
	qt := "A+AAAA"
	if d.Query.QType != 0 {
		qt = dns.TypeToString[d.Query.QType]
	}
	fmt.Fprintf(&b, "client:    %s  %s\n", client, qt)
	fmt.Fprintf(&b, "location:  %s\n", describeLocation(d.Location))
	if len(d.Candidates) > 0 {
		b.WriteString("candidates:\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  REGION\tDISTANCE\tBIASED\tHEALTH\tENDPOINTS UP")
		for _, c := range d.Candidates {
			dist, biased := "-", "-"
			if c.DistanceKm >= 0 {
				dist = fmt.Sprintf("%.0f km", c.DistanceKm)
				biased = fmt.Sprintf("%.0f km", c.BiasedKm)
				if c.Bias != 0 {
					biased += fmt.Sprintf(" (bias %+d)", c.Bias)
				}
			}
			health := "down"
			switch {
			case c.Drained:
				health = "drained"
			case c.Eligible:
				health = "up"
			case c.Up:
				health = "up, no endpoint of type"
			}
			if c.Weight > 0 {
				health += fmt.Sprintf(", weight %d", c.Weight)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\n", c.Region, dist, biased, health, c.UpEndpoints, c.Endpoints)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	rule := d.Reason
	if d.AllDown {
		rule += " (all regions down)"
	}
	fmt.Fprintf(&b, "rule:      %s\n", rule)
	var answer []string
	if len(d.Fallback) > 0 {
		for _, a := range d.Fallback {
			answer = append(answer, a.String()+" (fallback)")
		}
	} else {
		for _, t := range d.Targets {
			answer = append(answer, fmt.Sprintf("%s (%s/%s)", t.Addr, t.Region, t.Endpoint))
		}
	}
	if len(answer) == 0 {
		answer = []string{"no addresses (NODATA)"}
	}
	region := d.Region
	if region == "" {
		region = "-"
	}
	fmt.Fprintf(&b, "region:    %s\n", region)
	fmt.Fprintf(&b, "answer:    %s\n", strings.Join(answer, ", "))
	deg := ""
	if d.Degraded {
		deg = " (degraded)"
	}
	fmt.Fprintf(&b, "ttl:       %d%s\n", d.TTL, deg)
	fmt.Fprintf(&b, "scope:     /%d\n", d.Scope)
	fmt.Fprintf(&b, "snapshot:  v%d\n", d.SnapshotVersion)
	if len(d.Trace) > 0 {
		b.WriteString("trace:\n")
		for i, l := range d.Trace {
			fmt.Fprintf(&b, "  %2d. %s\n", i+1, l)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
