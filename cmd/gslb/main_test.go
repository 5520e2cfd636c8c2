package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gslb-dev/gslb/internal/config"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckAcceptsDemoConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gslb.yaml")
	if err := os.WriteFile(file, config.DemoYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "check", "-config", file)
	if code != 0 || !strings.Contains(out, ": ok (1 zone(s), 2 service(s)") {
		t.Fatalf("check demo: code %d, out %q, err %q", code, out, errOut)
	}
}

func TestCheckReportsEveryMistakeWithFileAndLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gslb.yaml")
	bad := `regions:
  east: {latitude: 39.04, longitude: -77.49}
pools:
  storefront:
    check: {type: htp}
    endpoints:
      - {region: east, address: 192.0.2.10}
services:
  www:
    pool: storefrnt
zones:
  - name: ecommerce.example.com
    ns: [ns1]
    recrods: []
`
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "check", "-config", file)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, errOut)
	}
	lineRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:(\d+): `)
	got := lineRE.FindAllStringSubmatch(errOut, -1)
	if len(got) != 3 {
		t.Fatalf("want 3 file:line errors, got %d:\n%s", len(got), errOut)
	}
	for _, want := range []string{
		file + `:5: pools.storefront.check.type: unknown check type "htp"`,
		file + `:10: services.www.pool: unknown pool "storefrnt"`,
		file + `:14: zones[0].recrods: unknown field "recrods"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}

func TestCheckNeedsAConfig(t *testing.T) {
	if code, _, _ := runCmd(t, "check"); code != 2 {
		t.Fatalf("check without -config: code %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "check", "-config", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 {
		t.Fatalf("check of a missing file: code %d, want 1", code)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "gslb ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: code %d", code)
	}
}

func TestExplainUsesTheDemoConfig(t *testing.T) {
	code, out, errOut := runCmd(t, "explain", "-client", "203.0.113.7", "www.ecommerce.example.com", "A")
	if code != 0 {
		t.Fatalf("explain: code %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "127.0.0.12") || !strings.Contains(out, "west") {
		t.Fatalf("explain for a west client should choose west (127.0.0.12):\n%s", out)
	}
	code, _, _ = runCmd(t, "explain", "-client", "203.0.113.7", "nope.ecommerce.example.com")
	if code != 1 {
		t.Fatalf("explain of a non-service: code %d, want 1", code)
	}
}
