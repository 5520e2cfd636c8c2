package admin

import (
	"fmt"
	"strings"

	"github.com/gslb-dev/gslb/internal/routing"
)

// formatExplain renders a decision for humans (explain?format=text): the
// outcome first, then the trace step by step.
func formatExplain(d routing.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "service:   %s\n", d.Service)
	region := d.Region
	if region == "" {
		region = "(spans regions)"
	}
	fmt.Fprintf(&b, "region:    %s\n", region)
	fmt.Fprintf(&b, "reason:    %s\n", d.Reason)
	loc := d.Location
	if loc.Found() {
		fmt.Fprintf(&b, "client at: %s", loc.Source)
		if loc.Network.IsValid() {
			fmt.Fprintf(&b, " %s", loc.Network)
		}
		for _, s := range []string{loc.Continent, loc.Country, loc.Subdivision, loc.Region} {
			if s != "" {
				fmt.Fprintf(&b, " %s", s)
			}
		}
		if loc.HasCoordinates {
			fmt.Fprintf(&b, " (%.2f, %.2f)", loc.Latitude, loc.Longitude)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("client at: unknown\n")
	}
	fmt.Fprintf(&b, "ttl:       %d\n", d.TTL)
	fmt.Fprintf(&b, "ecs scope: /%d\n", d.Scope)
	if d.AllDown {
		b.WriteString("all down:  yes\n")
	} else if d.Degraded {
		b.WriteString("degraded:  yes\n")
	}
	fmt.Fprintf(&b, "health:    snapshot v%d\n", d.SnapshotVersion)
	b.WriteString("answer:\n")
	if len(d.Fallback) > 0 {
		for _, a := range d.Fallback {
			fmt.Fprintf(&b, "  %s (fallback)\n", a)
		}
	}
	for _, t := range d.Targets {
		fmt.Fprintf(&b, "  %s  %s/%s  region %s\n", t.Addr, t.Pool, t.Endpoint, t.Region)
	}
	if len(d.Targets) == 0 && len(d.Fallback) == 0 {
		b.WriteString("  (none)\n")
	}
	if len(d.Trace) > 0 {
		b.WriteString("trace:\n")
		for i, step := range d.Trace {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, step)
		}
	}
	return b.String()
}
