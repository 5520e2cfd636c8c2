package dnsserver

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// inFlight is one query of a burst and what its reply must hold.
type inFlight struct {
	name    string
	qtype   uint16
	udpSize uint16
	check   func(r *dns.Msg) error
}

// burstMix is a mix of cached and uncached answers, errors and truncated
// replies, sent many at a time so that the UDP loops read and answer
// them in batches.
func burstMix() []inFlight {
	answer := func(want string) func(*dns.Msg) error {
		return func(r *dns.Msg) error {
			if r.Rcode != dns.RcodeSuccess || r.Truncated || len(r.Answer) == 0 {
				return fmt.Errorf("want an answer, got %v", r)
			}
			if got := r.Answer[len(r.Answer)-1].String(); !strings.Contains(got, want) {
				return fmt.Errorf("answer %q, want %q in it", got, want)
			}
			return nil
		}
	}
	return []inFlight{
		{name: "c.example.test.", qtype: dns.TypeA, udpSize: 1232, check: answer("192.0.2.3")},
		{name: "MAIL.example.TEST.", qtype: dns.TypeA, check: answer("192.0.2.25")},
		{name: "shop.example.test.", qtype: dns.TypeA, udpSize: 1232, check: answer("192.0.2.")},
		{name: "example.test.", qtype: dns.TypeMX, udpSize: 1232, check: answer("\tMX\t")},
		{name: "x.wild.example.test.", qtype: dns.TypeA, udpSize: 1232, check: answer("192.0.2.98")},
		{name: "nope.example.test.", qtype: dns.TypeA, udpSize: 1232, check: func(r *dns.Msg) error {
			if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
				return fmt.Errorf("want NXDOMAIN with the SOA, got %v", r)
			}
			return nil
		}},
		{name: "big.example.test.", qtype: dns.TypeTXT, udpSize: 1232, check: func(r *dns.Msg) error {
			if !r.Truncated || len(r.Answer) != 0 {
				return fmt.Errorf("want an empty TC=1 reply, got TC=%v with %d answers", r.Truncated, len(r.Answer))
			}
			return nil
		}},
		{name: "outside.test.", qtype: dns.TypeA, check: func(r *dns.Msg) error {
			if r.Rcode != dns.RcodeRefused {
				return fmt.Errorf("want REFUSED, got %v", r)
			}
			return nil
		}},
	}
}

// sendBurst sends rounds × the mix from one socket without waiting, with
// IDs 1.., and returns what each ID asked.
func sendBurst(t *testing.T, c *net.UDPConn, mix []inFlight, rounds int) map[uint16]inFlight {
	t.Helper()
	sent := make(map[uint16]inFlight)
	id := uint16(0)
	for range rounds {
		for _, q := range mix {
			id++
			m := query(q.name, q.qtype, q.udpSize)
			m.Id = id
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			sent[id] = q
		}
	}
	return sent
}

// readReplies reads replies on c until every ID of sent was answered (in
// any order), checking each against its question.
func readReplies(t *testing.T, c *net.UDPConn, sent map[uint16]inFlight) {
	t.Helper()
	buf := make([]byte, 65535)
	seen := make(map[uint16]bool)
	for len(seen) < len(sent) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d of %d replies, then: %v", len(seen), len(sent), err)
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		q, ok := sent[r.Id]
		if !ok || seen[r.Id] {
			t.Fatalf("unexpected or repeated reply ID %d", r.Id)
		}
		seen[r.Id] = true
		if len(r.Question) != 1 || r.Question[0].Name != q.name || r.Question[0].Qtype != q.qtype {
			t.Fatalf("reply %d has question %v, want %s %s", r.Id, r.Question, q.name, dns.TypeToString[q.qtype])
		}
		if err := q.check(&r); err != nil {
			t.Fatalf("reply %d to %s %s: %v", r.Id, q.name, dns.TypeToString[q.qtype], err)
		}
	}
}

// TestUDPManyInFlight sends bursts of queries from several client sockets
// at once, over IPv4 and IPv6, and checks that every query gets its own
// answer, at its own address, in any order.
func TestUDPManyInFlight(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			if strings.HasPrefix(listen, "[") {
				probe, err := net.ListenPacket("udp6", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				probe.Close()
			}
			cfg := testConfig(t, bigTXT(20), "  rrl: {enabled: false}\n")
			cfg.DNS.Listen = []string{listen}
			srv := startServer(t, cfg, engine(cfg))
			raddr, err := net.ResolveUDPAddr("udp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			// 120 queries in flight: several batches' worth, yet well
			// within the sockets' default buffers (a burst beyond them
			// is dropped by the kernel, as UDP may be).
			const clients, rounds = 3, 5
			conns := make([]*net.UDPConn, clients)
			sent := make([]map[uint16]inFlight, clients)
			for i := range conns {
				c, err := net.DialUDP("udp", nil, raddr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetReadBuffer(1 << 20)
				conns[i] = c
			}
			// Interleave the clients' bursts so that batches mix sources.
			mix := burstMix()
			for i, c := range conns {
				sent[i] = sendBurst(t, c, mix, rounds)
			}
			for i, c := range conns {
				readReplies(t, c, sent[i])
			}
		})
	}
}

// TestUDPBurstRateLimited checks that response rate limiting decides per
// datagram when many arrive at once: the budget, then every 2nd limited
// response slipped, the rest dropped.
func TestUDPBurstRateLimited(t *testing.T) {
	addr, reg := rrlServer(t)
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.4.1")}, raddr)
	if err != nil {
		t.Skipf("cannot bind loopback address 127.0.4.1: %v", err)
	}
	defer c.Close()
	const n = 40
	for i := range n {
		m := query("c.example.test.", dns.TypeA, 1232)
		m.Id = uint16(i + 1)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for rrlCount(t, reg, "queries") < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var replies []*dns.Msg
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, err := c.Read(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		replies = append(replies, r)
	}
	// 5 answered, then 35 limited: 17 slipped (every 2nd), 18 dropped.
	full, slipped := rrlTally(t, replies)
	if full != 5 || slipped != 17 {
		t.Fatalf("burst of %d at 5/s, slip 2: %d answered, %d slipped; want 5 and 17", n, full, slipped)
	}
	if s, d := rrlCount(t, reg, "slip"), rrlCount(t, reg, "drop"); s != 17 || d != 18 {
		t.Fatalf("rrl metrics: slip %v drop %v, want 17 and 18", s, d)
	}
}
