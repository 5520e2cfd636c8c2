package dnsserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// rrlDNS limits each /24 to 5 answers and 2 errors per second, slipping
// every 2nd limited response; 127.0.2.0/24 is exempt.
const rrlDNS = `  rrl:
    responses_per_second: 5
    errors_per_second: 2
    slip: 2
    exempt: ["127.0.2.0/24"]
`

// rrlServer starts a server whose rate limiter's clock stands still, so
// buckets never refill during the test.
func rrlServer(t *testing.T) (addr string, reg *prometheus.Registry) {
	t.Helper()
	cfg := testConfig(t, nil, rrlDNS)
	reg = prometheus.NewRegistry()
	frozen := time.Unix(1_700_000_000, 0)
	s, err := NewServer(cfg, engine(cfg), Deps{Registry: reg, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return s.Addrs()[0].String(), reg
}

// rrlCount reads gslb_dns_rrl_actions_total{action} and the number of
// messages handled.
func rrlCount(t *testing.T, reg *prometheus.Registry, action string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		switch {
		case action == "queries" && mf.GetName() == "gslb_dns_queries_total":
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		case mf.GetName() == "gslb_dns_rrl_actions_total":
			for _, m := range mf.Metric {
				for _, l := range m.Label {
					if l.GetName() == "action" && l.GetValue() == action {
						sum += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return sum
}

// rrlBurst sends n UDP queries for name from local (a loopback address) and
// returns the replies received, in order. It waits until the server has
// handled all of them, then reads what arrived.
func rrlBurst(t *testing.T, addr, local, name string, n int, reg *prometheus.Registry) []*dns.Msg {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, raddr)
	if err != nil {
		t.Skipf("cannot bind loopback address %s: %v", local, err)
	}
	defer c.Close()
	before := rrlCount(t, reg, "queries")
	for i := range n {
		m := query(name, dns.TypeA, 1232)
		m.Id = uint16(i + 1)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		// Keep the order (one client hashes to one socket and reader)
		// and stay well under the socket buffers.
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rrlCount(t, reg, "queries")-before < float64(n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var out []*dns.Msg
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, err := c.Read(buf)
		if err != nil {
			return out
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		out = append(out, r)
	}
}

// rrlTally counts full answers and slipped (TC=1, empty) replies.
func rrlTally(t *testing.T, replies []*dns.Msg) (full, slipped int) {
	t.Helper()
	for _, r := range replies {
		switch {
		case r.Truncated:
			if len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || len(r.Question) != 1 {
				t.Fatalf("slipped reply is not minimal: %v", r)
			}
			slipped++
		default:
			full++
		}
	}
	return full, slipped
}

func TestRRLBurstFromOneNetwork(t *testing.T) {
	addr, reg := rrlServer(t)

	// 5 answered, then 15 limited: 7 slipped (every 2nd), 8 dropped.
	full, slipped := rrlTally(t, rrlBurst(t, addr, "127.0.0.1", "c.example.test.", 20, reg))
	if full != 5 || slipped != 7 {
		t.Fatalf("burst of 20 at 5/s, slip 2: %d answered, %d slipped; want 5 and 7", full, slipped)
	}
	if s, d := rrlCount(t, reg, "slip"), rrlCount(t, reg, "drop"); s != 7 || d != 8 {
		t.Fatalf("rrl metrics: slip %v drop %v, want 7 and 8", s, d)
	}

	// Another /24 has its own budget.
	if full, _ := rrlTally(t, rrlBurst(t, addr, "127.0.1.1", "c.example.test.", 5, reg)); full != 5 {
		t.Fatalf("another /24: %d of 5 answered", full)
	}
	// An exempt network is never limited.
	if full, _ := rrlTally(t, rrlBurst(t, addr, "127.0.2.1", "c.example.test.", 20, reg)); full != 20 {
		t.Fatalf("exempt network: %d of 20 answered", full)
	}
	// TCP is never limited, even for the limited network.
	for i := range 10 {
		r := exchange(t, "tcp", addr, query("c.example.test.", dns.TypeA, 1232))
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("TCP query %d from a limited network: %v", i, r)
		}
	}
}

func TestRRLErrorsHaveTheirOwnBudget(t *testing.T) {
	addr, reg := rrlServer(t)
	// NXDOMAIN: 2 answered, then limited (slip 2 of 6 limited → 3 slipped).
	replies := rrlBurst(t, addr, "127.0.3.1", "nope.example.test.", 8, reg)
	full, slipped := rrlTally(t, replies)
	if full != 2 || slipped != 3 {
		t.Fatalf("8 NXDOMAIN at 2/s: %d answered, %d slipped; want 2 and 3", full, slipped)
	}
	for _, r := range replies[:2] {
		if r.Rcode != dns.RcodeNameError {
			t.Fatalf("answer %v", r)
		}
	}
	// Positive answers to the same network still have their budget.
	if full, _ := rrlTally(t, rrlBurst(t, addr, "127.0.3.1", "c.example.test.", 5, reg)); full != 5 {
		t.Fatalf("answers after the errors budget ran out: %d of 5", full)
	}
}

func TestSlipReply(t *testing.T) {
	m := query("MiXeD.example.test.", dns.TypeA, 1232)
	m.Response, m.Authoritative = true, true
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "mixed.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}})
	b, _ := m.Pack()
	var r dns.Msg
	if err := r.Unpack(slipReply(b)); err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || !r.Response || r.Id != m.Id || len(r.Answer)+len(r.Extra) != 0 ||
		len(r.Question) != 1 || r.Question[0].Name != "MiXeD.example.test." {
		t.Fatalf("slip reply %v", &r)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 12), cat(rawHeader(1, 1<<15, 1, 0, 0, 0), []byte{5, 'a'})} {
		_ = slipReply(bad) // never panics
	}
	if got := slipReply(cat(rawHeader(1, 1<<15, 1, 0, 0, 0), []byte{5, 'a'})); len(got) != 12 || got[5] != 0 {
		t.Fatalf("slip of a reply without a readable question: % x", got)
	}
}

// TestSeveralUDPSockets checks that udp_sockets binds that many sockets to
// one port and that queries from many client ports are all answered.
func TestSeveralUDPSockets(t *testing.T) {
	us, l, err := listenGroup(context.Background(), "127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	port := us[0].LocalAddr().(*net.UDPAddr).Port
	for _, u := range us {
		if p := u.LocalAddr().(*net.UDPAddr).Port; p != port {
			t.Errorf("socket on port %d, want %d", p, port)
		}
		u.Close()
	}
	if l.Addr().(*net.TCPAddr).Port != port || len(us) != 3 {
		t.Errorf("%d UDP sockets, TCP on %v, want 3 on port %d", len(us), l.Addr(), port)
	}
	l.Close()

	cfg := testConfig(t, nil, "  rrl: {enabled: false}\n") // udp_sockets: 2
	srv := startServer(t, cfg, engine(cfg))
	for i := range 40 {
		r := exchange(t, "udp", srv.addr, query("c.example.test.", dns.TypeA, 1232))
		if len(r.Answer) != 1 {
			t.Fatalf("query %d: %v", i, r)
		}
	}
}
