package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	unitFile       = "systemd/gslb.service"
	unitConfigFile = "systemd/gslb.yaml"
)

// unit is a systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", file, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of key in section.
func (u unit) one(section, key string) string {
	v := u[section][key]
	if len(v) != 1 {
		return ""
	}
	return v[0]
}

// TestSystemdUnitHardening checks the unit runs gslb unprivileged with only
// CAP_NET_BIND_SERVICE, a read-only system, its state under StateDirectory,
// the admin token as a credential, and reload as check-then-SIGHUP.
func TestSystemdUnitHardening(t *testing.T) {
	u := parseUnit(t, unitFile)
	const s = "Service"
	want := map[string]string{
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"PrivateDevices":        "yes",
		"StateDirectory":        "gslb",
		"Restart":               "on-failure",
	}
	for k, v := range want {
		if got := u.one(s, k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if u.one(s, "DynamicUser") != "yes" && (u.one(s, "User") == "" || u.one(s, "User") == "root") {
		t.Errorf("neither DynamicUser=yes nor a non-root User=")
	}
	if u.one("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%q", u.one("Install", "WantedBy"))
	}

	start := strings.Fields(u.one(s, "ExecStart"))
	if len(start) < 2 || start[1] != "serve" {
		t.Fatalf("ExecStart %q: want gslb serve -config FILE", start)
	}
	cfgPath := configFlag(t, start[1:])
	reload := u[s]["ExecReload"]
	if len(reload) == 0 || reload[len(reload)-1] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload %q: the last must be /bin/kill -HUP $MAINPID", reload)
	}
	checkCmd := start[0] + " check -config " + cfgPath
	if len(reload) < 2 || reload[0] != checkCmd {
		t.Errorf("ExecReload does not run %q before the SIGHUP", checkCmd)
	}
	if pre := u[s]["ExecStartPre"]; len(pre) == 0 || pre[0] != checkCmd {
		t.Errorf("ExecStartPre %q does not run %q", pre, checkCmd)
	}

	// The example config lives where ExecStart reads it and uses the
	// directories the unit provides.
	data, err := os.ReadFile(unitConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseGslbConfig(t, data)
	if filepath.Base(cfgPath) != filepath.Base(unitConfigFile) || filepath.Dir(cfgPath) != "/etc/"+u.one(s, "ConfigurationDirectory") {
		t.Errorf("ExecStart reads %s; ConfigurationDirectory=%s and the example is %s", cfgPath, u.one(s, "ConfigurationDirectory"), unitConfigFile)
	}
	if sf := cfg.str(t, "state_file"); filepath.Dir(sf) != "/var/lib/"+u.one(s, "StateDirectory") {
		t.Errorf("state_file %s is not in StateDirectory /var/lib/%s (the only writable place)", sf, u.one(s, "StateDirectory"))
	}
	name, _, ok := strings.Cut(u.one(s, "LoadCredential"), ":")
	if tf := cfg.str(t, "admin", "token_file"); !ok || tf != "/run/credentials/gslb.service/"+name {
		t.Errorf("admin.token_file %s is not the LoadCredential %q", tf, name)
	}
}

// TestSystemdConfigPassesGslbCheck validates the example config with the
// real `gslb check`, the credential mapped to a stand-in file.
func TestSystemdConfigPassesGslbCheck(t *testing.T) {
	data, err := os.ReadFile(unitConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	token := parseGslbConfig(t, data).str(t, "admin", "token_file")
	if out, code := checkConfig(t, data, "gslb.yaml", token); code != 0 {
		t.Fatalf("gslb check exited %d:\n%s", code, out)
	}
}

// TestSystemdAnalyze runs `systemd-analyze verify` on the unit and its
// offline security review, which must rate the exposure OK (at most 2.0).
// The binary path is replaced by a stand-in executable: verify insists
// that ExecStart exists.
func TestSystemdAnalyze(t *testing.T) {
	sa := requireTool(t, "systemd-analyze")
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	standIn := filepath.Join(dir, "gslb")
	if err := os.WriteFile(standIn, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "/usr/local/bin/gslb", standIn)
	file := filepath.Join(dir, "gslb.service")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", file).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=true", "--threshold=20", "--no-pager", file).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security (threshold 2.0): %v\n%s", err, lastLines(string(out), 3))
	}
	if !strings.Contains(string(out), "Overall exposure level") {
		t.Errorf("systemd-analyze security printed no exposure level:\n%s", lastLines(string(out), 3))
	}
}

// requireTool returns the path of an external tool, skipping the test when
// it is missing (failing under CI=true, where CI installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
