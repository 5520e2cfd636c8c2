package dnsserver

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// demoServer runs the embedded demo config with its DNS listener moved to
// an ephemeral loopback port.
func demoServer(t *testing.T) (host, port string) {
	t.Helper()
	const listen = `listen: ["127.0.0.1:5353"]`
	text := config.DemoYAML()
	if !bytes.Contains(text, []byte(listen)) {
		t.Fatalf("demo config no longer has %s", listen)
	}
	text = bytes.Replace(text, []byte(listen), []byte(`listen: ["127.0.0.1:0"]`), 1)
	cfg, err := config.Parse(config.DemoSource, text)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, cfg, engine(cfg))
	a := srv.Addrs()[0]
	return a.Addr().String(), strconv.Itoa(int(a.Port()))
}

// digResult is what dig or kdig printed, parsed.
type digResult struct {
	status   string
	flags    []string
	sections map[string][]string // "ANSWER", "AUTHORITY", ... -> records
	raw      string
}

var (
	statusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`(?i);; flags: ([a-z ]*);`)
	// dig: ";; ANSWER SECTION:"; kdig: ";; ANSWER SECTION:" as well.
	sectionRE = regexp.MustCompile(`^;; ([A-Z]+) SECTION:`)
)

// runDig runs tool (dig or kdig) against the server and parses its output.
func runDig(t *testing.T, tool, host, port string, args ...string) digResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	all := []string{"@" + host, "-p", port, "+norecurse"}
	if strings.HasSuffix(tool, "kdig") {
		all = append(all, "+timeout=3", "+retry=0")
	} else {
		all = append(all, "+time=3", "+tries=1")
	}
	all = append(all, args...)
	out, err := exec.CommandContext(ctx, tool, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(all, " "), err, out)
	}
	r := digResult{sections: map[string][]string{}, raw: string(out)}
	if m := statusRE.FindStringSubmatch(r.raw); m != nil {
		r.status = m[1]
	}
	if m := flagsRE.FindStringSubmatch(r.raw); m != nil {
		r.flags = strings.Fields(strings.ToLower(m[1]))
	}
	section := ""
	for _, line := range strings.Split(r.raw, "\n") {
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" {
			section = ""
			continue
		}
		if section != "" && !strings.HasPrefix(line, ";") {
			r.sections[section] = append(r.sections[section], strings.Join(strings.Fields(line), " "))
		}
	}
	return r
}

func (r digResult) check(t *testing.T, status string, aa bool) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %q, want %s\n%s", r.status, status, r.raw)
	}
	if slices.Contains(r.flags, "aa") != aa {
		t.Errorf("flags %v: aa want %v\n%s", r.flags, aa, r.raw)
	}
	if slices.Contains(r.flags, "ra") {
		t.Errorf("RA set: %v", r.flags)
	}
}

// recordsOfType returns the records of a section with the given type.
func (r digResult) recordsOfType(section, typ string) []string {
	var out []string
	for _, rec := range r.sections[section] {
		if f := strings.Fields(rec); len(f) >= 5 && f[3] == typ {
			out = append(out, rec)
		}
	}
	return out
}

func TestDigAgainstDemo(t *testing.T) {
	dig := requireTool(t, "dig")
	host, port := demoServer(t)
	const zone = "ecommerce.example.com."

	for _, transport := range []string{"+notcp", "+tcp"} {
		t.Run(transport, func(t *testing.T) {
			r := runDig(t, dig, host, port, transport, zone, "SOA")
			r.check(t, "NOERROR", true)
			if got := r.recordsOfType("ANSWER", "SOA"); len(got) != 1 || len(r.sections["ANSWER"]) != 1 {
				t.Errorf("want one SOA, answer %v", r.sections["ANSWER"])
			}

			r = runDig(t, dig, host, port, transport, "www."+zone, "A")
			r.check(t, "NOERROR", true)
			as := r.recordsOfType("ANSWER", "A")
			if len(as) == 0 {
				t.Errorf("no A records\n%s", r.raw)
			}
			for _, a := range as {
				if ip := strings.Fields(a)[4]; ip != "127.0.0.11" && ip != "127.0.0.12" {
					t.Errorf("A %s is not a demo ingress", ip)
				}
			}

			r = runDig(t, dig, host, port, transport, "nope."+zone)
			r.check(t, "NXDOMAIN", true)
			if len(r.recordsOfType("AUTHORITY", "SOA")) != 1 {
				t.Errorf("no SOA in authority\n%s", r.raw)
			}

			r = runDig(t, dig, host, port, transport, "www."+zone, "MX")
			r.check(t, "NOERROR", true)
			if len(r.sections["ANSWER"]) != 0 || len(r.recordsOfType("AUTHORITY", "SOA")) != 1 {
				t.Errorf("want NODATA with SOA\n%s", r.raw)
			}

			r = runDig(t, dig, host, port, transport, "example.org")
			r.check(t, "REFUSED", false)
		})
	}

	t.Run("ECS", func(t *testing.T) {
		r := runDig(t, dig, host, port, "+subnet=203.0.113.0/24", "www."+zone, "A")
		r.check(t, "NOERROR", true)
		if !regexp.MustCompile(`CLIENT-SUBNET: 203\.0\.113\.0/24/\d+`).MatchString(r.raw) {
			t.Errorf("ECS option not echoed\n%s", r.raw)
		}
	})

	t.Run("CNAME, wildcard, delegation", func(t *testing.T) {
		r := runDig(t, dig, host, port, "shop."+zone, "A")
		r.check(t, "NOERROR", true)
		if len(r.recordsOfType("ANSWER", "CNAME")) != 1 || len(r.recordsOfType("ANSWER", "A")) == 0 {
			t.Errorf("CNAME chain not followed\n%s", r.raw)
		}
		r = runDig(t, dig, host, port, "anything.static."+zone, "A")
		r.check(t, "NOERROR", true)
		if got := r.recordsOfType("ANSWER", "A"); len(got) != 1 || !strings.HasPrefix(got[0], "anything.static."+zone) {
			t.Errorf("wildcard answer %v", got)
		}
		r = runDig(t, dig, host, port, "host.legacy."+zone, "A")
		r.check(t, "NOERROR", false)
		if len(r.recordsOfType("AUTHORITY", "NS")) != 1 || len(r.recordsOfType("ADDITIONAL", "A")) != 1 {
			t.Errorf("referral with glue expected\n%s", r.raw)
		}
	})
}

func TestKdigAgainstDemo(t *testing.T) {
	kdig := requireTool(t, "kdig")
	host, port := demoServer(t)
	const zone = "ecommerce.example.com."

	r := runDig(t, kdig, host, port, zone, "SOA")
	r.check(t, "NOERROR", true)
	if len(r.recordsOfType("ANSWER", "SOA")) != 1 {
		t.Errorf("want one SOA\n%s", r.raw)
	}
	r = runDig(t, kdig, host, port, "+tcp", "www."+zone, "A")
	r.check(t, "NOERROR", true)
	if len(r.recordsOfType("ANSWER", "A")) == 0 {
		t.Errorf("no A records\n%s", r.raw)
	}
	r = runDig(t, kdig, host, port, "nope."+zone, "A")
	r.check(t, "NXDOMAIN", true)
	r = runDig(t, kdig, host, port, "+subnet=203.0.113.0/24", "www."+zone, "A")
	r.check(t, "NOERROR", true)
	if !regexp.MustCompile(`CLIENT-SUBNET: 203\.0\.113\.0/24/\d+`).MatchString(r.raw) {
		t.Errorf("ECS option not echoed\n%s", r.raw)
	}
}
