package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse feeds arbitrary text to the config loader. It must never
// panic; a config it accepts must hold the validated defaults; an error
// must be an *Errors whose every entry names the file and carries a line
// within the text, unless the text is not YAML at all (a syntax error the
// YAML parser could not place). The seed corpus is testdata/fuzz/FuzzParse
// (the demo config and broken variants of it) plus the demo itself.
func FuzzParse(f *testing.F) {
	f.Add(DemoYAML())
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		cfg, err := Parse(name, data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without an error")
			}
			checkAccepted(t, cfg)
			return
		}
		if cfg != nil {
			t.Fatalf("config returned with an error: %v", err)
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("error %T %q is not a non-empty *Errors", err, err)
		}
		if !strings.HasPrefix(err.Error(), name) {
			t.Fatalf("error does not start with the file name: %q", err)
		}
		syntax := yaml.Unmarshal(data, new(yaml.Node)) != nil
		lines := yamlLines(data)
		for _, e := range errs.List {
			if e.File != name || e.Msg == "" {
				t.Fatalf("error without file or message: %+v", e)
			}
			if e.Line <= 0 && !syntax {
				t.Fatalf("error without a line for text that is valid YAML: %q (all: %v)", e.Error(), err)
			}
			if e.Line > lines+1 {
				t.Fatalf("error at line %d of a %d-line text: %q", e.Line, lines, e.Error())
			}
		}
	})
}

// yamlLines counts the lines of data as the YAML parser numbers them: it
// breaks lines at LF, CR, CR LF, and the Unicode breaks NEL, LS and PS.
func yamlLines(data []byte) int {
	lines := 1
	for i := 0; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			lines++
		case data[i] == '\r':
			lines++
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
		case bytes.HasPrefix(data[i:], []byte("\u0085")), bytes.HasPrefix(data[i:], []byte("\u2028")),
			bytes.HasPrefix(data[i:], []byte("\u2029")):
			lines++
		}
	}
	return lines
}

// checkAccepted checks the invariants validation promises of an accepted
// config.
func checkAccepted(t *testing.T, cfg *Config) {
	t.Helper()
	d := cfg.DNS
	if len(d.Listen) == 0 || d.UDPSize < 512 || d.MaxTCPConnections < 1 || d.MaxTCPConnectionsPerIP < 1 ||
		d.TCPIdleTimeout < 0 || d.TCPReadTimeout < 0 {
		t.Fatalf("accepted DNS limits out of range: %+v", d)
	}
	if cfg.Admin.Listen == "" || cfg.Admin.MaxBodyBytes <= 0 {
		t.Fatalf("accepted admin config without defaults: %+v", cfg.Admin)
	}
	for _, z := range cfg.Zones {
		if z == nil || !strings.HasSuffix(z.Name, ".") || z.Name != strings.ToLower(z.Name) {
			t.Fatalf("accepted zone not normalised: %+v", z)
		}
	}
	for id, s := range cfg.Services {
		if s == nil || s.ID != id || cfg.Pools[s.Pool] == nil {
			t.Fatalf("accepted service %q with a dangling pool: %+v", id, s)
		}
	}
	for name, p := range cfg.Pools {
		for _, e := range p.Endpoints {
			if e == nil || cfg.Regions[e.Region] == nil {
				t.Fatalf("accepted endpoint of pool %q in an unknown region: %+v", name, e)
			}
		}
	}
}
