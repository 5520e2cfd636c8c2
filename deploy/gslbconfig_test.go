package deploy_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// gslbConfig is a gslb config read generically, to cross-check it against
// the manifests; `gslb check` is what validates it against the real schema.
type gslbConfig map[string]any

func parseGslbConfig(t *testing.T, data []byte) gslbConfig {
	t.Helper()
	var c gslbConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("parse gslb config: %v", err)
	}
	return c
}

// get walks keys through nested maps.
func (c gslbConfig) get(keys ...string) (any, bool) {
	var v any = map[string]any(c)
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func (c gslbConfig) str(t *testing.T, keys ...string) string {
	t.Helper()
	v, ok := c.get(keys...)
	s, isStr := v.(string)
	if !ok || !isStr || s == "" {
		t.Fatalf("gslb config: %s is not set to a string (%v)", strings.Join(keys, "."), v)
	}
	return s
}

func (c gslbConfig) list(t *testing.T, keys ...string) []string {
	t.Helper()
	v, ok := c.get(keys...)
	l, isList := v.([]any)
	if !ok || !isList || len(l) == 0 {
		t.Fatalf("gslb config: %s is not a non-empty list (%v)", strings.Join(keys, "."), v)
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("gslb config: %s[%d] is not a string", strings.Join(keys, "."), i)
		}
		out[i] = s
	}
	return out
}

func listenPort(t *testing.T, hostPort string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	n, err2 := strconv.ParseUint(p, 10, 16)
	if err != nil || err2 != nil {
		t.Fatalf("listen address %q: want host:port", hostPort)
	}
	return int32(n)
}

func listenHost(t *testing.T, hostPort string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("listen address %q: %v", hostPort, err)
	}
	return h
}

// overlayConfig returns the gslb config carried by an overlay's ConfigMap.
func overlayConfig(t *testing.T, r *rendered) (data []byte, name string) {
	t.Helper()
	d := r.deployment(t)
	c := gslbContainer(t, d)
	cfgPath := configFlag(t, c.Args)
	vol, _ := volumeAt(t, d, c, filepath.Dir(cfgPath))
	if vol.ConfigMap == nil || r.configMap(vol.ConfigMap.Name) == nil {
		t.Fatalf("config volume is not a rendered ConfigMap")
	}
	s, ok := r.configMap(vol.ConfigMap.Name).Data[filepath.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s lacks %s", vol.ConfigMap.Name, filepath.Base(cfgPath))
	}
	return []byte(s), filepath.Base(cfgPath)
}

// TestOverlayConfigsDifferOnlyInLocalRegion checks the two clusters answer
// identically: their configs are equal except proxy.local_region, which
// names the overlay's own region.
func TestOverlayConfigsDifferOnlyInLocalRegion(t *testing.T) {
	var configs []gslbConfig
	for _, o := range overlays {
		data, _ := overlayConfig(t, render(t, o))
		c := parseGslbConfig(t, data)
		if got := c.str(t, "proxy", "local_region"); got != o {
			t.Errorf("%s: proxy.local_region %q, want %q", o, got, o)
		}
		if _, ok := c.get("regions", o); !ok {
			t.Errorf("%s: no region %q in the config", o, o)
		}
		delete(c["proxy"].(map[string]any), "local_region")
		configs = append(configs, c)
	}
	for i := 1; i < len(configs); i++ {
		if !reflect.DeepEqual(configs[0], configs[i]) {
			t.Errorf("%s and %s configs differ beyond proxy.local_region", overlays[0], overlays[i])
		}
	}
}

var (
	gslbOnce sync.Once
	gslbPath string
	gslbErr  string
	gslbDir  string
)

// TestMain removes the gslb binary built for the checks.
func TestMain(m *testing.M) {
	code := m.Run()
	if gslbDir != "" {
		_ = os.RemoveAll(gslbDir)
	}
	os.Exit(code)
}

// gslbBinary returns a gslb binary: $GSLB_BIN when set (the test script may
// have built one), else one built once from the repository root.
func gslbBinary(t *testing.T) string {
	t.Helper()
	gslbOnce.Do(func() {
		if p := os.Getenv("GSLB_BIN"); p != "" {
			gslbPath = p
			return
		}
		dir, err := os.MkdirTemp("", "gslb-deploy-test-")
		if err != nil {
			gslbErr = err.Error()
			return
		}
		gslbDir = dir
		out := filepath.Join(dir, "gslb")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/gslb")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			gslbErr = "go build ./cmd/gslb: " + err.Error() + "\n" + string(b)
			return
		}
		gslbPath = out
	})
	if gslbErr != "" {
		t.Fatal(gslbErr)
	}
	return gslbPath
}

// checkConfig writes data as dir/name, maps the files the config expects a
// platform to provide (a mounted Secret, a systemd credential) to stand-ins
// under dir, and runs `gslb check -config` on it.
func checkConfig(t *testing.T, data []byte, name string, provided ...string) (out string, exitCode int) {
	t.Helper()
	bin := gslbBinary(t)
	dir := t.TempDir()
	text := string(data)
	for i, p := range provided {
		if !strings.Contains(text, p) {
			t.Fatalf("config does not mention %s", p)
		}
		standIn := filepath.Join(dir, "provided-"+strconv.Itoa(i))
		if err := os.WriteFile(standIn, []byte("stand-in\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, p, standIn)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(bin, "check", "-config", file).CombinedOutput()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run gslb check: %v", err)
		}
		return string(b), ee.ExitCode()
	}
	return string(b), 0
}

// TestOverlayConfigsPassGslbCheck validates every gslb config the rendered
// overlays carry with the real `gslb check`.
func TestOverlayConfigsPassGslbCheck(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		data, name := overlayConfig(t, r)
		token := parseGslbConfig(t, data).str(t, "admin", "token_file")
		out, code := checkConfig(t, data, name, token)
		if code != 0 {
			t.Fatalf("gslb check exited %d:\n%s", code, out)
		}
		if !strings.Contains(out, "ok") {
			t.Errorf("gslb check output lacks ok: %s", out)
		}
	})
}

// TestGslbCheckRejectsBrokenOverlayConfig is the control for the test above:
// the same config with one wrong value must fail, naming the line.
func TestGslbCheckRejectsBrokenOverlayConfig(t *testing.T) {
	r := render(t, overlays[0])
	data, name := overlayConfig(t, r)
	token := parseGslbConfig(t, data).str(t, "admin", "token_file")
	broken := strings.Replace(string(data), "local_region: "+overlays[0], "local_region: mars", 1)
	if broken == string(data) {
		t.Fatalf("could not break the config")
	}
	out, code := checkConfig(t, []byte(broken), name, token)
	if code != 1 {
		t.Fatalf("gslb check exited %d on a broken config, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, name+":") || !strings.Contains(out, "mars") {
		t.Errorf("gslb check output does not point at the bad line: %s", out)
	}
	// And without the mounted Secret the token file is missing: check must say so.
	out, code = checkConfig(t, data, name)
	if code != 1 || !strings.Contains(out, "token_file") {
		t.Errorf("gslb check without the token file exited %d: %s", code, out)
	}
}
