package e2e

// TestFaults runs the real gslb binary on loopback (no namespaces, no
// root, ephemeral ports) through the faults of issue 9: kill -9 and
// restart keeps drains, reload under dnsperf load loses no query and keeps
// the old config on a bad one, and a GeoIP database replaced by a corrupt
// file keeps the old one.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/geo/geotest"
)

// Loopback addresses of the fault tests' two backends: distinct so that
// DNS answers tell the regions apart.
const (
	faultEastAddr = "127.0.0.21"
	faultWestAddr = "127.0.0.22"
	faultZone     = "faults.test."
	faultService  = "www.faults.test."
)

// ECS subnets located by the cidr_maps of faultConfig.
var (
	eastSubnet = []byte{0, 1, 24, 0, 198, 51, 100}
	westSubnet = []byte{0, 1, 24, 0, 203, 0, 113}
)

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests build and run the gslb binary; skipped in -short mode")
	}
	root := repoRoot(t)
	readSources(t, root)
	bin, _ := buildBinaries(t, root, t.TempDir())

	t.Run("kill -9 and restart keeps drains", func(t *testing.T) { faultKillKeepsDrains(t, bin) })
	t.Run("reload under dnsperf load", func(t *testing.T) { faultReloadUnderLoad(t, bin) })
	t.Run("corrupt GeoIP database keeps the old one", func(t *testing.T) { faultCorruptGeoIP(t, bin) })
}

// faultEnv is one gslb instance on loopback and what it needs.
type faultEnv struct {
	t          *testing.T
	bin, dir   string
	configPath string
	statePath  string
	token      string
	dnsAddr    string
	adminAddr  string
	eastPort   int
	westPort   int
	proc       *faultProc
}

// faultOptions vary the config of a faultEnv.
type faultOptions struct {
	geoDatabase string // "" for cidr_maps only
	marker      string // the text of marker.faults.test TXT
	broken      bool   // write an invalid config
}

// newFaultEnv starts two backends and picks free ports; the instance is
// started with start.
func newFaultEnv(t *testing.T, bin string) *faultEnv {
	t.Helper()
	dir := t.TempDir()
	e := &faultEnv{
		t: t, bin: bin, dir: dir,
		configPath: filepath.Join(dir, "gslb.yaml"),
		statePath:  filepath.Join(dir, "state", "gslb-state.json"),
		token:      "fault-token-" + strconv.Itoa(os.Getpid()),
	}
	if err := os.MkdirAll(filepath.Dir(e.statePath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(e.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.eastPort = backend(t, faultEastAddr, "east")
	e.westPort = backend(t, faultWestAddr, "west")
	e.dnsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, true)))
	e.adminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, false)))
	return e
}

// backend serves /healthz on addr:0 and returns its port.
func backend(t *testing.T, addr, region string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("backend %s: %v", region, err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok", region)
	}))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return l.Addr().(*net.TCPAddr).Port
}

// freePort returns a loopback port free for TCP (and UDP when udp).
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udp {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// writeConfig writes the instance's config file.
func (e *faultEnv) writeConfig(o faultOptions) {
	e.t.Helper()
	if o.marker == "" {
		o.marker = "v1"
	}
	geoDB := ""
	if o.geoDatabase != "" {
		geoDB = fmt.Sprintf("  database: %s\n  reload_interval: 200ms\n", o.geoDatabase)
	}
	udpSize := 1232
	if o.broken {
		udpSize = 100 // below the DNS minimum: rejected by validation
	}
	text := fmt.Sprintf(`# gslb fault test (e2e/faults_test.go)
dns:
  listen: ["%[1]s"]
  udp_size: %[2]d
  rrl:
    exempt: ["127.0.0.0/8"] # dnsperf runs from loopback at 2000 qps
admin:
  listen: %[3]s
  token_file: token
log:
  level: info
  format: json
state_file: %[4]s
regions:
  east: {latitude: 39.04, longitude: -77.49}
  west: {latitude: 37.35, longitude: -121.96}
geo:
%[5]s  cidr_maps:
    - {cidr: 198.51.100.0/24, region: east}
    - {cidr: 203.0.113.0/24, region: west}
pools:
  web:
    check: {type: http, path: /healthz, interval: 300ms, timeout: 250ms, rise: 1, fall: 2, cold_start: assume_healthy}
    endpoints:
      - {name: east-1, region: east, address: %[6]s, port: %[7]d}
      - {name: west-1, region: west, address: %[8]s, port: %[9]d}
services:
  www: {pool: web, policy: geo, ttl: 1}
zones:
  - name: faults.test
    ns: [ns1]
    records:
      - "ns1 A 127.0.0.1"
      - 'marker TXT "%[10]s"'
`, e.dnsAddr, udpSize, e.adminAddr, e.statePath, geoDB, faultEastAddr, e.eastPort, faultWestAddr, e.westPort, o.marker)
	tmp := e.configPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.configPath); err != nil {
		e.t.Fatal(err)
	}
}

// faultProc is a running gslb.
type faultProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// start runs gslb serve on the config file and waits until it is ready.
func (e *faultEnv) start() {
	t := e.t
	t.Helper()
	if out, err := run(e.bin, "check", "-config", e.configPath); err != nil {
		t.Fatalf("gslb check: %v\n%s", err, out)
	}
	logPath := filepath.Join(e.dir, "gslb.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(lf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(e.bin, "serve", "-config", e.configPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1 exitcode=66")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start gslb: %v", err)
	}
	p := &faultProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(lf, "=== exit %s: %v\n", time.Now().Format(time.RFC3339Nano), p.err)
		lf.Close()
		close(p.done)
	}()
	e.proc = p
	t.Cleanup(func() {
		e.stop()
		if data, _ := os.ReadFile(logPath); bytes.Contains(data, []byte("WARNING: DATA RACE")) {
			t.Errorf("data race reported by gslb:\n%s", tail(data, 60))
		} else if t.Failed() {
			t.Logf("gslb log:\n%s", tail(data, 40))
		}
	})
	e.waitReady()
}

// stop ends the instance with SIGTERM (SIGKILL after 10 s).
func (e *faultEnv) stop() {
	p := e.proc
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the instance with SIGKILL, as a crash or the OOM killer would.
func (e *faultEnv) kill() {
	_ = e.proc.cmd.Process.Kill()
	<-e.proc.done
}

// signal sends sig to the instance.
func (e *faultEnv) signal(sig syscall.Signal) {
	e.t.Helper()
	if err := e.proc.cmd.Process.Signal(sig); err != nil {
		e.t.Fatalf("signal %v: %v", sig, err)
	}
}

func tail(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitReady waits until /readyz is 200 and DNS answers the SOA.
func (e *faultEnv) waitReady() {
	t := e.t
	t.Helper()
	var last string
	if _, ok := poll(20*time.Second, 50*time.Millisecond, func() bool {
		select {
		case <-e.proc.done:
			return true
		default:
		}
		code, body, err := e.admin("GET", "/readyz", "")
		if err != nil || code != http.StatusOK {
			last = fmt.Sprintf("/readyz: %d %q %v", code, strings.TrimSpace(body), err)
			return false
		}
		r, err := e.dnsQuery(faultZone, dns.TypeSOA, nil)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			last = fmt.Sprintf("SOA: %v %v", r, err)
			return false
		}
		return true
	}); !ok {
		t.Fatalf("gslb not ready after 20 s: %s", last)
	}
	select {
	case <-e.proc.done:
		data, _ := os.ReadFile(e.proc.logPath)
		t.Fatalf("gslb exited during start-up (%v):\n%s", e.proc.err, tail(data, 30))
	default:
	}
}

// admin calls the admin API; mutating calls carry the bearer token.
func (e *faultEnv) admin(method, path, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.adminAddr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if method == http.MethodPost {
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(data), err
}

// metrics returns the /metrics exposition.
func (e *faultEnv) metrics() string {
	e.t.Helper()
	code, body, err := e.admin("GET", "/metrics", "")
	if err != nil || code != http.StatusOK {
		e.t.Fatalf("/metrics: %d %v", code, err)
	}
	return body
}

// sample returns the value of the series of name whose labels contain
// every one of labels (e.g. `result="error"`), and whether it exists.
func sample(exposition, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// dnsQuery asks the instance over UDP, with an ECS option when subnet is set.
func (e *faultEnv) dnsQuery(name string, qtype uint16, subnet []byte) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	if subnet != nil {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: subnet})
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, e.dnsAddr)
	return r, err
}

// answerOf returns the sorted A records for the service for a client subnet.
func (e *faultEnv) answerOf(subnet []byte) ([]string, error) {
	r, err := e.dnsQuery(faultService, dns.TypeA, subnet)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// expectAnswer polls until the subnet's answer is want.
func (e *faultEnv) expectAnswer(what string, subnet []byte, timeout time.Duration, want ...string) {
	e.t.Helper()
	var got []string
	var err error
	if _, ok := poll(timeout, 50*time.Millisecond, func() bool {
		got, err = e.answerOf(subnet)
		return err == nil && sameSet(got, want...)
	}); !ok {
		e.t.Fatalf("%s: answer %v (%v), want %v within %s", what, got, err, want, timeout)
	}
}

// regionState returns the state of a region in /api/v1/status.
func (e *faultEnv) regionState(region string) (string, error) {
	code, body, err := e.admin("GET", "/api/v1/status", "")
	if err != nil || code != http.StatusOK {
		return "", fmt.Errorf("/api/v1/status: %d %v", code, err)
	}
	var st struct {
		Regions []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"regions"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return "", fmt.Errorf("decode status: %w", err)
	}
	for _, r := range st.Regions {
		if r.Name == region {
			return r.State, nil
		}
	}
	return "", fmt.Errorf("region %s not in status", region)
}

// faultKillKeepsDrains: a drain survives SIGKILL and restart; the state
// file is valid JSON; DNS answers west only from the first answer after
// the restart.
func faultKillKeepsDrains(t *testing.T, bin string) {
	e := newFaultEnv(t, bin)
	e.writeConfig(faultOptions{})
	e.start()
	e.expectAnswer("east client before the drain", eastSubnet, 10*time.Second, faultEastAddr)
	e.expectAnswer("west client before the drain", westSubnet, 10*time.Second, faultWestAddr)

	code, body, err := e.admin("POST", "/api/v1/regions/east/drain", `{"reason": "fault test"}`)
	if err != nil || code/100 != 2 {
		t.Fatalf("drain east: %d %s %v", code, body, err)
	}
	if st, err := e.regionState("east"); err != nil || st != "drained" {
		t.Fatalf("east state %q (%v) after the drain", st, err)
	}
	e.expectAnswer("east client after the drain", eastSubnet, 5*time.Second, faultWestAddr)

	e.kill()
	data, err := os.ReadFile(e.statePath)
	if err != nil {
		t.Fatalf("state file after kill -9: %v", err)
	}
	var st struct {
		DrainedRegions map[string]json.RawMessage `json:"drained_regions"`
	}
	if !json.Valid(data) || json.Unmarshal(data, &st) != nil {
		t.Fatalf("state file is not valid JSON after kill -9:\n%s", data)
	}
	if _, ok := st.DrainedRegions["east"]; !ok {
		t.Fatalf("state file does not hold the drain of east:\n%s", data)
	}

	e.start()
	// The very first answers after the restart already exclude east.
	for i := range 20 {
		got, err := e.answerOf(eastSubnet)
		if err != nil || !sameSet(got, faultWestAddr) {
			t.Fatalf("answer %d after restart for an east client: %v (%v), want only west %s", i, got, err, faultWestAddr)
		}
		if got, err := e.answerOf(westSubnet); err != nil || !sameSet(got, faultWestAddr) {
			t.Fatalf("answer %d after restart for a west client: %v (%v)", i, got, err)
		}
	}
	if st, err := e.regionState("east"); err != nil || st != "drained" {
		t.Fatalf("east state %q (%v) after restart, want drained", st, err)
	}

	code, body, err = e.admin("POST", "/api/v1/regions/east/undrain", "")
	if err != nil || code/100 != 2 {
		t.Fatalf("undrain east: %d %s %v", code, body, err)
	}
	e.expectAnswer("east client after the undrain", eastSubnet, 5*time.Second, faultEastAddr)
}

var dnsperfLost = regexp.MustCompile(`Queries lost:\s+(\d+)`)
var dnsperfCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)

// faultReloadUnderLoad: dnsperf at 2000 qps for 5 s while the config is
// reloaded with SIGHUP twice (a valid change, then an invalid file): no
// query is lost, the valid change takes effect, the invalid one is
// refused and the previous config keeps serving.
func faultReloadUnderLoad(t *testing.T, bin string) {
	requireTool(t, "dnsperf", "dnsperf")
	e := newFaultEnv(t, bin)
	e.writeConfig(faultOptions{marker: "v1"})
	e.start()
	marker := func() string {
		r, err := e.dnsQuery("marker."+faultZone, dns.TypeTXT, nil)
		if err != nil || len(r.Answer) != 1 {
			return fmt.Sprintf("error: %v %v", r, err)
		}
		return strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
	}
	if got := marker(); got != "v1" {
		t.Fatalf("marker %q before reload", got)
	}

	data := filepath.Join(e.dir, "queries.txt")
	if err := os.WriteFile(data, []byte("www.faults.test A\nmarker.faults.test TXT\nfaults.test SOA\nnope.faults.test A\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(e.dnsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	perf := exec.CommandContext(ctx, "dnsperf", "-s", host, "-p", port, "-d", data, "-l", "5", "-Q", "2000", "-c", "4", "-t", "2")
	var out bytes.Buffer
	perf.Stdout, perf.Stderr = &out, &out
	if err := perf.Start(); err != nil {
		t.Fatalf("start dnsperf: %v", err)
	}
	perfDone := make(chan error, 1)
	go func() { perfDone <- perf.Wait() }()

	time.Sleep(time.Second)
	e.writeConfig(faultOptions{marker: "v2"})
	e.signal(syscall.SIGHUP)
	if _, ok := poll(3*time.Second, 20*time.Millisecond, func() bool { return marker() == "v2" }); !ok {
		t.Errorf("valid reload not in effect: marker %q", marker())
	}
	if v, ok := sample(e.metrics(), "gslb_config_reload_success"); !ok || v != 1 {
		t.Errorf("gslb_config_reload_success = %v (present %v) after a valid reload", v, ok)
	}

	time.Sleep(500 * time.Millisecond)
	e.writeConfig(faultOptions{marker: "v3", broken: true})
	e.signal(syscall.SIGHUP)
	if _, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
		v, ok := sample(e.metrics(), "gslb_config_reload_success")
		return ok && v == 0
	}); !ok {
		t.Errorf("gslb_config_reload_success not 0 after an invalid reload")
	}
	if v, _ := sample(e.metrics(), "gslb_config_reloads_total", `result="failure"`); v < 1 {
		t.Errorf("gslb_config_reloads_total{result=\"failure\"} = %v", v)
	}
	for range 10 {
		if got := marker(); got != "v2" {
			t.Fatalf("after the invalid reload the marker is %q, want the previous config's v2", got)
		}
	}
	if got, err := e.answerOf(westSubnet); err != nil || !sameSet(got, faultWestAddr) {
		t.Errorf("service after the invalid reload: %v %v", got, err)
	}

	select {
	case err := <-perfDone:
		if err != nil {
			t.Fatalf("dnsperf: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("dnsperf did not finish:\n%s", out.String())
	}
	lost, completed := dnsperfLost.FindStringSubmatch(out.String()), dnsperfCompleted.FindStringSubmatch(out.String())
	if lost == nil || completed == nil {
		t.Fatalf("cannot read dnsperf's report:\n%s", out.String())
	}
	n, _ := strconv.Atoi(completed[1])
	t.Logf("dnsperf: %s queries completed, %s lost, across two SIGHUP reloads", completed[1], lost[1])
	if lost[1] != "0" {
		t.Errorf("dnsperf lost %s queries during reloads:\n%s", lost[1], out.String())
	}
	if n < 1000 {
		t.Errorf("dnsperf completed only %d queries:\n%s", n, out.String())
	}
}

// faultCorruptGeoIP: a GeoIP database overwritten with garbage is
// refused by the reloader (counted as an error) and answers located by
// the old database stay the same; a later valid database is taken.
func faultCorruptGeoIP(t *testing.T, bin string) {
	e := newFaultEnv(t, bin)
	dbPath := filepath.Join(e.dir, "geo.mmdb")
	geotest.WriteFile(t, dbPath, geotest.SchemaGeoIP2, geotest.All())
	e.writeConfig(faultOptions{geoDatabase: dbPath})
	e.start()

	nearEast := []byte{0, 1, 24, 0, 3, 80, 1}  // 3.80.0.0/12 in the database: Virginia
	nearWest := []byte{0, 1, 24, 0, 13, 56, 1} // 13.56.0.0/16: California
	e.expectAnswer("client located in Virginia by the database", nearEast, 10*time.Second, faultEastAddr)
	e.expectAnswer("client located in California by the database", nearWest, 10*time.Second, faultWestAddr)
	const reloads = "gslb_geo_reload_total"
	before, _ := sample(e.metrics(), reloads, `result="error"`)

	// Overwrite in place, as a careless updater would.
	garbage := bytes.Repeat([]byte("this is not a maxmind database\x00\xff"), 512)
	if err := os.WriteFile(dbPath, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		v, _ := sample(e.metrics(), reloads, `result="error"`)
		return v > before
	}); !ok {
		t.Fatalf("%s{result=\"error\"} did not grow after the database was corrupted", reloads)
	}
	for i := range 20 {
		if got, err := e.answerOf(nearEast); err != nil || !sameSet(got, faultEastAddr) {
			t.Fatalf("answer %d for the Virginia client with a corrupt database: %v (%v)", i, got, err)
		}
		if got, err := e.answerOf(nearWest); err != nil || !sameSet(got, faultWestAddr) {
			t.Fatalf("answer %d for the California client with a corrupt database: %v (%v)", i, got, err)
		}
	}
	if code, _, err := e.admin("GET", "/readyz", ""); err != nil || code != http.StatusOK {
		t.Errorf("/readyz %d %v with a corrupt database replacement", code, err)
	}

	// A valid database that moves 3.80.0.0/12 to California is taken:
	// the reloader was alive, it only refused the garbage.
	moved := geotest.All()
	moved[0].Latitude, moved[0].Longitude, moved[0].Subdivision = 37.77, -122.42, "CA"
	geotest.WriteFile(t, dbPath, geotest.SchemaGeoIP2, moved)
	e.expectAnswer("client moved to California by a new valid database", nearEast, 10*time.Second, faultWestAddr)
	if v, _ := sample(e.metrics(), reloads, `result="success"`); v < 2 {
		t.Errorf("%s{result=\"success\"} = %v after the valid replacement", reloads, v)
	}
}
