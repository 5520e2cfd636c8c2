package dnsserver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestServeUDPAndTCP(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	for _, netw := range []string{"udp", "tcp"} {
		t.Run(netw, func(t *testing.T) {
			q := query("www.example.test.", dns.TypeA, 0)
			q.RecursionDesired = true
			r := exchange(t, netw, srv.addr, q)
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.RecursionAvailable || !r.RecursionDesired || r.Id != q.Id {
				t.Errorf("header: %v", r.MsgHdr)
			}
			same(t, "answer", rrStrings(r.Answer), []string{wwwA1, wwwA2})

			r = exchange(t, netw, srv.addr, query("nope.example.test.", dns.TypeA, 0))
			if r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Answer) != 0 {
				t.Errorf("NXDOMAIN: %v", r)
			}
			same(t, "authority", rrStrings(r.Ns), []string{negSOARR})

			r = exchange(t, netw, srv.addr, query("example.org.", dns.TypeA, 0))
			if r.Rcode != dns.RcodeRefused || r.Authoritative || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 {
				t.Errorf("REFUSED: %v", r)
			}
		})
	}
}

func TestQuestionCasePreserved(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	for _, name := range []string{"WwW.ExAmPlE.TeSt.", "NoPe.EXAMPLE.test.", "Example.ORG."} {
		r := exchange(t, "udp", srv.addr, query(name, dns.TypeA, 0))
		if len(r.Question) != 1 || r.Question[0].Name != name {
			t.Errorf("question = %v, want %s", r.Question, name)
		}
	}
}

func TestEDNS(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))

	r := exchange(t, "udp", srv.addr, query("www.example.test.", dns.TypeA, 0))
	if r.IsEdns0() != nil {
		t.Errorf("OPT in the reply to a query without one: %v", r)
	}

	q := query("www.example.test.", dns.TypeA, 4096)
	q.IsEdns0().SetDo(true)
	r = exchange(t, "udp", srv.addr, q)
	opt := r.IsEdns0()
	if opt == nil {
		t.Fatalf("no OPT in the reply: %v", r)
	}
	if opt.UDPSize() != cfg.DNS.UDPSize || !opt.Do() || opt.Version() != 0 {
		t.Errorf("OPT: size %d (want %d) do %v version %d", opt.UDPSize(), cfg.DNS.UDPSize, opt.Do(), opt.Version())
	}

	q = query("www.example.test.", dns.TypeA, 1232)
	r = exchange(t, "udp", srv.addr, q)
	if r.IsEdns0().Do() {
		t.Error("DO set in reply to a query without DO")
	}

	q = query("www.example.test.", dns.TypeA, 1232)
	q.IsEdns0().SetVersion(1)
	r = exchange(t, "udp", srv.addr, q)
	if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
		t.Errorf("EDNS version 1: rcode %s, reply %v", dns.RcodeToString[r.Rcode], r)
	}

	// Unknown options are ignored.
	q = query("www.example.test.", dns.TypeA, 1232)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}})
	r = exchange(t, "udp", srv.addr, q)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("unknown option: %v", r)
	}
}

func TestClasses(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	for _, tc := range []struct {
		class  uint16
		rcode  int
		answer int
	}{
		{dns.ClassINET, dns.RcodeSuccess, 2},
		{dns.ClassANY, dns.RcodeSuccess, 2},
		{dns.ClassCHAOS, dns.RcodeRefused, 0},
		{dns.ClassHESIOD, dns.RcodeRefused, 0},
		{4242, dns.RcodeRefused, 0},
	} {
		q := query("www.example.test.", dns.TypeA, 0)
		q.Question[0].Qclass = tc.class
		r := exchange(t, "udp", srv.addr, q)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answer {
			t.Errorf("class %d: rcode %s, %d answers", tc.class, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
}

func TestMetaTypes(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	for _, tc := range []struct {
		qtype uint16
		rcode int
	}{
		{dns.TypeAXFR, dns.RcodeRefused},
		{dns.TypeIXFR, dns.RcodeRefused},
		{dns.TypeMAILB, dns.RcodeNotImplemented},
		{dns.TypeOPT, dns.RcodeFormatError},
	} {
		r := exchange(t, "tcp", srv.addr, query("example.test.", tc.qtype, 0))
		if r.Rcode != tc.rcode || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s", dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode])
		}
	}
	// ANY is minimal over UDP and TCP alike.
	for _, netw := range []string{"udp", "tcp"} {
		r := exchange(t, netw, srv.addr, query("example.test.", dns.TypeANY, 0))
		types := map[uint16]bool{}
		for _, rr := range r.Answer {
			types[rr.Header().Rrtype] = true
		}
		if r.Rcode != dns.RcodeSuccess || len(types) != 1 {
			t.Errorf("ANY over %s: %v", netw, r.Answer)
		}
	}
}

// bigTXT returns n TXT records of about 200 bytes each at big.example.test.
func bigTXT(n int) []string {
	var recs []string
	for i := range n {
		recs = append(recs, fmt.Sprintf(`big TXT "%03d %s"`, i, strings.Repeat("x", 200)))
	}
	return recs
}

func TestTruncation(t *testing.T) {
	recs := bigTXT(20) // ~4 KB
	for i := range 4 {
		recs = append(recs, fmt.Sprintf(`medium TXT "%d %s"`, i, strings.Repeat("m", 200)))
	}
	// The amplification cap is off here: this test is about client sizes.
	cfg := testConfig(t, recs, "  max_udp_amplification: 0\n")
	srv := startServer(t, cfg, engine(cfg))

	for _, tc := range []struct {
		name     string
		qname    string
		udpSize  uint16
		tc       bool
		answers  int
		withOPT  bool
		overTCP  bool
		wantSize int
	}{
		{name: "no EDNS: 512 bytes", qname: "medium.example.test.", tc: true},
		{name: "EDNS 1232 fits", qname: "medium.example.test.", udpSize: 1232, answers: 4},
		{name: "EDNS below 512 counts as 512", qname: "medium.example.test.", udpSize: 100, tc: true},
		{name: "client size above the configured cap", qname: "big.example.test.", udpSize: 65000, tc: true},
		{name: "TCP gets everything", qname: "big.example.test.", udpSize: 65000, overTCP: true, answers: 20},
		{name: "TCP without EDNS", qname: "big.example.test.", overTCP: true, answers: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netw := "udp"
			if tc.overTCP {
				netw = "tcp"
			}
			q := query(tc.qname, dns.TypeTXT, tc.udpSize)
			r := exchange(t, netw, srv.addr, q)
			if r.Truncated != tc.tc || len(r.Answer) != tc.answers {
				t.Errorf("TC=%v with %d answers, want TC=%v with %d", r.Truncated, len(r.Answer), tc.tc, tc.answers)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Question) != 1 {
				t.Errorf("header: %v", r.MsgHdr)
			}
			if (r.IsEdns0() != nil) != (tc.udpSize > 0) {
				t.Errorf("OPT present = %v, want %v", r.IsEdns0() != nil, tc.udpSize > 0)
			}
			if !tc.overTCP {
				r.Compress = true // Len then measures the wire size
				limit := max(512, min(int(max(tc.udpSize, 512)), int(cfg.DNS.UDPSize)))
				if r.Len() > limit {
					t.Errorf("UDP response of %d bytes exceeds %d", r.Len(), limit)
				}
			}
		})
	}
}

func TestTCPPipelining(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	conn, err := dns.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	names := []string{"www.example.test.", "c.example.test.", "nope.example.test.", "example.test.", "example.org."}
	want := map[uint16]int{}
	// Write every query before reading any answer.
	for i, name := range names {
		q := query(name, dns.TypeA, 0)
		q.Id = uint16(1000 + i)
		want[q.Id] = []int{dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeSuccess, dns.RcodeRefused}[i]
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	for range names {
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		rc, ok := want[r.Id]
		if !ok {
			t.Fatalf("unexpected or repeated id %d", r.Id)
		}
		delete(want, r.Id)
		if r.Rcode != rc {
			t.Errorf("id %d (%s): rcode %s want %s", r.Id, r.Question[0].Name, dns.RcodeToString[r.Rcode], dns.RcodeToString[rc])
		}
	}
}

func TestSwap(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	if r := exchange(t, "udp", srv.addr, query("new.example.test.", dns.TypeA, 0)); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before swap: %v", r)
	}

	// Queries keep flowing while configs are swapped: every one of a
	// bounded run of queries is answered correctly.
	newCfg := testConfig(t, []string{"new A 192.0.2.77"}, "")
	queried := make(chan error, 1)
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		for range 300 {
			r, _, err := c.Exchange(query("c.example.test.", dns.TypeA, 0), srv.addr)
			if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1) {
				err = fmt.Errorf("bad answer during swap: %v", r)
			}
			if err != nil {
				queried <- err
				return
			}
		}
		queried <- nil
	}()
	swaps := 0
	for done := false; !done; swaps++ {
		select {
		case err := <-queried:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		next := cfg
		if swaps%2 == 0 {
			next = newCfg
		}
		if err := srv.Swap(next, engine(next)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Swap(newCfg, engine(newCfg)); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d swaps during 300 queries", swaps)
	r := exchange(t, "tcp", srv.addr, query("new.example.test.", dns.TypeA, 0))
	same(t, "answer after swap", rrStrings(r.Answer), []string{"new.example.test. 300 IN A 192.0.2.77"})

	// A config whose zone data cannot be built is refused; the old stays.
	bad := withUncheckedRecords(t, []string{"new A 192.0.2.77", "c TXT \"x\"", "c CNAME a"})
	if err := srv.Swap(bad, engine(bad)); err == nil {
		t.Fatal("Swap accepted a zone with a CNAME and other data")
	}
	r = exchange(t, "udp", srv.addr, query("new.example.test.", dns.TypeA, 0))
	same(t, "answer after failed swap", rrStrings(r.Answer), []string{"new.example.test. 300 IN A 192.0.2.77"})
}

func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t, nil, "")
	s, err := NewServer(cfg, engine(cfg), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	addr := s.Addrs()[0].String()

	idle, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.WriteMsg(query("c.example.test.", dns.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.ReadMsg(); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	// The idle connection was closed by the server.
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.ReadMsg(); err == nil {
		t.Fatal("idle connection still open after shutdown")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestMetrics(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	exchange(t, "udp", srv.addr, query("www.example.test.", dns.TypeA, 0))
	exchange(t, "udp", srv.addr, query("nope.example.test.", dns.TypeA, 0))
	exchange(t, "udp", srv.addr, query("example.org.", dns.TypeA, 0))
	exchange(t, "udp", srv.addr, query("c.example.test.", 65280, 0))
	want := map[string]float64{
		"example.test./A/NOERROR":     1,
		"example.test./A/NXDOMAIN":    1,
		"other/A/REFUSED":             1,
		"example.test./other/NOERROR": 1,
	}
	got := map[string]float64{}
	for _, mf := range gather(t, srv.reg) {
		if mf.GetName() == "gslb_dns_queries_total" {
			for _, m := range mf.Metric {
				got[label(m, "zone")+"/"+label(m, "qtype")+"/"+label(m, "rcode")] = m.GetCounter().GetValue()
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("queries_total{%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if n := histogramCount(t, srv.reg, "gslb_dns_request_duration_seconds"); n < 4 {
		t.Errorf("duration histogram count = %d", n)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	for _, mf := range gather(t, reg) {
		if mf.GetName() == name {
			return mf.Metric[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// metricValue returns a counter or gauge value with the given label.
func metricValue(t *testing.T, reg *prometheus.Registry, name, labelName, labelValue string) float64 {
	for _, mf := range gather(t, reg) {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if labelName == "" || label(m, labelName) == labelValue {
				if m.Gauge != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// waitMetric polls until the metric reaches want (metrics are updated
// just after the client sees the effect).
func waitMetric(t *testing.T, reg *prometheus.Registry, name, labelName, labelValue string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := metricValue(t, reg, name, labelName, labelValue)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s=%q} = %v, want %v", name, labelName, labelValue, v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTCPAnswerLargerThan64K(t *testing.T) {
	cfg := testConfig(t, bigTXT(400), "") // ~86 KB of TXT
	srv := startServer(t, cfg, engine(cfg))
	r := exchange(t, "tcp", srv.addr, query("big.example.test.", dns.TypeTXT, 0))
	r.Compress = true // Len then measures the wire size
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 400 || r.Len() > dns.MaxMsgSize {
		t.Errorf("TC=%v, %d answers, %d bytes", r.Truncated, len(r.Answer), r.Len())
	}
}

func TestListenSeveralAddresses(t *testing.T) {
	listen := []string{"127.0.0.1:0", "127.0.0.2:0"}
	if c, err := net.ListenPacket("udp", "[::1]:0"); err == nil {
		c.Close()
		listen = append(listen, "[::1]:0")
	}
	cfg := testConfig(t, nil, "")
	cfg.DNS.Listen = listen
	srv := startServerN(t, cfg, engine(cfg), len(listen))
	for i, a := range srv.Addrs() {
		if want := strings.TrimSuffix(listen[i], ":0"); "["+a.Addr().String()+"]" != want && a.Addr().String() != want {
			t.Errorf("Addrs()[%d] = %v, want host %s", i, a, want)
		}
		for _, netw := range []string{"udp", "tcp"} {
			r := exchange(t, netw, a.String(), query("c.example.test.", dns.TypeA, 0))
			if len(r.Answer) != 1 {
				t.Errorf("%s %v: %v", netw, a, r)
			}
		}
	}
}

func TestRunBindError(t *testing.T) {
	cfg := testConfig(t, nil, "")
	first := startServer(t, cfg, engine(cfg))
	cfg2 := testConfig(t, nil, "")
	cfg2.DNS.Listen = []string{first.addr}
	s, err := NewServer(cfg2, engine(cfg2), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), first.addr) {
		t.Fatalf("Run on a taken address: %v", err)
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready closed although binding failed")
	default:
	}
}

func TestNewServerErrors(t *testing.T) {
	cfg := testConfig(t, nil, "")
	if _, err := NewServer(cfg, nil, Deps{}); err == nil {
		t.Error("nil router accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewServer(cfg, engine(cfg), Deps{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(cfg, engine(cfg), Deps{Registry: reg}); err == nil {
		t.Error("second server on one registry: metrics registered twice without error")
	}
}
