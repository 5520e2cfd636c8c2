package dnsserver

// One test per DNS limit: the limit is enforced on an abusive client and
// normal clients are unaffected. They extend tcp_test.go (basic timeouts,
// connection counts) and server_test.go (TestTruncation, TestMetaTypes).

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// stallFrom opens a TCP connection from local that sends the first byte
// of a length prefix and nothing more, and returns it with the time
// before the byte was sent.
func stallFrom(t *testing.T, local, addr string) (net.Conn, time.Time) {
	t.Helper()
	c := dialFrom(t, local, addr)
	if c == nil {
		t.Fatalf("stalled connection from %s refused", local)
	}
	since := time.Now()
	if _, err := c.Conn.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	return c.Conn, since
}

// udpFrom asks c.example.test A over UDP from the loopback address local.
func udpFrom(t *testing.T, local, addr string) bool {
	t.Helper()
	cl := &dns.Client{Net: "udp", Timeout: 5 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}}
	r, _, err := cl.Exchange(query("c.example.test.", dns.TypeA, 0), addr)
	return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
}

// TestLimitMaxTCPConnections: stalled connections filling the total
// limit get further connections refused, UDP clients are unaffected,
// and the read timeout reclaims the slots for normal clients.
func TestLimitMaxTCPConnections(t *testing.T) {
	cfg := testConfig(t, nil, `  max_tcp_connections: 4
  max_tcp_connections_per_ip: 64
  tcp_read_timeout: 1s
  tcp_idle_timeout: 10s
`)
	srv := startServer(t, cfg, engine(cfg))
	var stalled []net.Conn
	for i := range cfg.DNS.MaxTCPConnections {
		c, _ := stallFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%2), srv.addr)
		stalled = append(stalled, c)
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", float64(cfg.DNS.MaxTCPConnections))

	if ask(dialFrom(t, "127.0.0.4", srv.addr)) {
		t.Fatal("a connection over max_tcp_connections was served")
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_rejected_total", "reason", reasonMaxConnections, 1)
	if !udpFrom(t, "127.0.0.4", srv.addr) || !udpFrom(t, "127.0.0.2", srv.addr) {
		t.Fatal("UDP clients affected by the TCP connection limit")
	}

	for i, c := range stalled {
		if !closedByServer(&dns.Conn{Conn: c}) {
			t.Fatalf("stalled connection %d not closed by the read timeout", i)
		}
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", 0)
	for i := range cfg.DNS.MaxTCPConnections {
		if !ask(dialFrom(t, "127.0.0.4", srv.addr)) {
			t.Fatalf("normal client %d not served once the stalled connections were dropped", i)
		}
	}
}

// TestLimitMaxTCPConnectionsPerIP: one address holding its quota of
// stalled connections is refused more, while other addresses and UDP
// from the same address are served; a slot the client frees is reusable.
func TestLimitMaxTCPConnectionsPerIP(t *testing.T) {
	cfg := testConfig(t, nil, `  max_tcp_connections: 100
  max_tcp_connections_per_ip: 3
`)
	srv := startServer(t, cfg, engine(cfg))
	var stalled []net.Conn
	for range cfg.DNS.MaxTCPConnectionsPerIP {
		c, _ := stallFrom(t, "127.0.0.2", srv.addr)
		stalled = append(stalled, c)
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", float64(cfg.DNS.MaxTCPConnectionsPerIP))
	for i := range 3 {
		if ask(dialFrom(t, "127.0.0.2", srv.addr)) {
			t.Fatal("a connection over max_tcp_connections_per_ip was served")
		}
		waitMetric(t, srv.reg, "gslb_dns_tcp_rejected_total", "reason", reasonMaxPerIP, float64(i+1))
	}

	// Neighbours (other addresses, several connections each) are served.
	for _, local := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.1"} {
		var open []*dns.Conn
		for range cfg.DNS.MaxTCPConnectionsPerIP {
			c := dialFrom(t, local, srv.addr)
			if !ask(c) {
				t.Fatalf("client %s not served while 127.0.0.2 is at its limit", local)
			}
			open = append(open, c)
		}
		for _, c := range open {
			c.Close()
		}
	}
	if !udpFrom(t, "127.0.0.2", srv.addr) {
		t.Fatal("UDP from the limited address not answered")
	}
	if n := metricValue(t, srv.reg, "gslb_dns_tcp_rejected_total", "reason", reasonMaxConnections); n != 0 {
		t.Errorf("%v rejections for the total limit", n)
	}

	// Closing one stalled connection frees exactly one slot.
	stalled[0].Close()
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", float64(cfg.DNS.MaxTCPConnectionsPerIP-1))
	if !ask(dialFrom(t, "127.0.0.2", srv.addr)) {
		t.Fatal("freed slot not reusable")
	}
}

// TestLimitTCPIdleTimeout: with a long read timeout, connections that
// send nothing (at first, or after an answer) are closed by the idle
// timeout, while clients that keep asking are served throughout.
func TestLimitTCPIdleTimeout(t *testing.T) {
	cfg := testConfig(t, nil, `  tcp_idle_timeout: 300ms
  tcp_read_timeout: 10s
`)
	srv := startServer(t, cfg, engine(cfg))

	start := time.Now()
	silent := dialFrom(t, "127.0.0.2", srv.addr)
	after := dialFrom(t, "127.0.0.2", srv.addr)
	if !ask(after) {
		t.Fatal("query not answered")
	}
	for name, c := range map[string]*dns.Conn{"silent": silent, "idle after an answer": after} {
		if !closedByServer(c) {
			t.Fatalf("%s connection not closed", name)
		}
	}
	if elapsed := time.Since(start); elapsed < cfg.DNS.TCPIdleTimeout {
		t.Errorf("idle connections closed after %v, before the idle timeout", elapsed)
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonIdleTimeout, 2)

	// A busy client: pipelined queries in one write, then one at a time.
	c := dialFrom(t, "127.0.0.3", srv.addr)
	var burst []byte
	for i := range 5 {
		q := query("c.example.test.", dns.TypeA, 0)
		q.Id = uint16(100 + i)
		b, _ := q.Pack()
		burst = binary.BigEndian.AppendUint16(burst, uint16(len(b)))
		burst = append(burst, b...)
	}
	if _, err := c.Conn.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r, err := c.ReadMsg()
		if err != nil || r.Id != uint16(100+i) || len(r.Answer) != 1 {
			t.Fatalf("pipelined query %d: %v %v", i, r, err)
		}
	}
	for i := range 5 {
		if !ask(c) {
			t.Fatalf("sequential query %d not answered", i)
		}
	}
	if n := metricValue(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonReadTimeout); n != 0 {
		t.Errorf("%v read timeouts with a 10 s read timeout", n)
	}
}

// TestLimitTCPReadTimeout: with a long idle timeout, a client that
// starts a query and stalls is dropped by the read timeout, while a
// client that pauses between queries (longer than the read timeout) or
// sends a query in pieces is served.
func TestLimitTCPReadTimeout(t *testing.T) {
	cfg := testConfig(t, nil, `  tcp_idle_timeout: 10s
  tcp_read_timeout: 300ms
`)
	srv := startServer(t, cfg, engine(cfg))

	oneByte, since1 := stallFrom(t, "127.0.0.2", srv.addr)
	partial := dialFrom(t, "127.0.0.2", srv.addr)
	since2 := time.Now()
	if _, err := partial.Conn.Write([]byte{0, 33, 0, 1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"one byte": oneByte, "partial message": partial.Conn} {
		if !closedByServer(&dns.Conn{Conn: c}) {
			t.Fatalf("%s then stall: not closed", name)
		}
	}
	if elapsed := time.Since(since1); elapsed < cfg.DNS.TCPReadTimeout {
		t.Errorf("closed after %v, before the read timeout", elapsed)
	}
	if elapsed := time.Since(since2); elapsed < cfg.DNS.TCPReadTimeout {
		t.Errorf("closed after %v, before the read timeout", elapsed)
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonReadTimeout, 2)

	// A client that pauses between queries for twice the read timeout
	// is idle, not slow: it is served.
	c := dialFrom(t, "127.0.0.3", srv.addr)
	if !ask(c) {
		t.Fatal("first query not answered")
	}
	time.Sleep(2 * cfg.DNS.TCPReadTimeout)
	if !ask(c) {
		t.Fatal("query after a pause between queries not answered")
	}
	// A query written in pieces well within the read timeout is served.
	q := query("c.example.test.", dns.TypeA, 0)
	b, _ := q.Pack()
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	msg = append(msg, b...)
	for _, piece := range [][]byte{msg[:1], msg[1:5], msg[5:]} {
		if _, err := c.Conn.Write(piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r, err := c.ReadMsg(); err != nil || r.Id != q.Id || len(r.Answer) != 1 {
		t.Fatalf("query sent in pieces: %v %v", r, err)
	}
	if n := metricValue(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonIdleTimeout); n != 0 {
		t.Errorf("%v idle timeouts with a 10 s idle timeout", n)
	}
}

// TestLimitMaxQueriesPerTCPConnection: a client pipelining more queries
// than allowed gets exactly the allowed answers, then the connection is
// closed; a new connection is served.
func TestLimitMaxQueriesPerTCPConnection(t *testing.T) {
	cfg := testConfig(t, nil, `  max_queries_per_tcp_connection: 3
`)
	srv := startServer(t, cfg, engine(cfg))
	c := dialFrom(t, "127.0.0.2", srv.addr)
	var burst []byte
	for i := range 6 {
		q := query("c.example.test.", dns.TypeA, 0)
		q.Id = uint16(200 + i)
		b, _ := q.Pack()
		burst = binary.BigEndian.AppendUint16(burst, uint16(len(b)))
		burst = append(burst, b...)
	}
	if _, err := c.Conn.Write(burst); err != nil {
		t.Fatal(err)
	}
	answered := 0
	for {
		r, err := c.ReadMsg()
		if err != nil {
			break
		}
		if r.Id != uint16(200+answered) || len(r.Answer) != 1 {
			t.Fatalf("answer %d: %v", answered, r)
		}
		answered++
	}
	if answered != cfg.DNS.MaxQueriesPerTCPConnection {
		t.Fatalf("%d answers on one connection, want max_queries_per_tcp_connection = %d", answered, cfg.DNS.MaxQueriesPerTCPConnection)
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonMaxQueries, 1)
	for range 2 {
		if !ask(dialFrom(t, "127.0.0.2", srv.addr)) {
			t.Fatal("new connection not served")
		}
	}
}

// udpRaw sends m over UDP and returns the reply exactly as received.
func udpRaw(t *testing.T, addr string, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	c := dialRaw(t, addr)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c.send(b)
	reply := c.read()
	var r dns.Msg
	if err := r.Unpack(reply); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	c.c.Close()
	return &r, len(reply)
}

// TestLimitUDPResponseCap: with udp_size 800, no UDP answer is larger
// than the client's advertised size (512 without EDNS) or the cap; an
// answer that does not fit is TC=1 and one that fits is complete.
func TestLimitUDPResponseCap(t *testing.T) {
	var recs []string
	for i := range 3 {
		recs = append(recs, fmt.Sprintf(`medium TXT "%d %s"`, i, strings.Repeat("m", 200))) // ~700 bytes
	}
	for i := range 2 {
		recs = append(recs, fmt.Sprintf(`small TXT "%d %s"`, i, strings.Repeat("s", 100))) // ~280 bytes
	}
	recs = append(recs, bigTXT(20)...) // ~4.4 KB
	// The amplification cap is off here: this test is about the size cap.
	cfg := testConfig(t, recs, `  udp_size: 800
  max_udp_amplification: 0
`)
	srv := startServer(t, cfg, engine(cfg))
	const udpCap = 800

	names := []string{"www.example.test.", "small.example.test.", "medium.example.test.", "big.example.test.", "example.test."}
	full := map[string]int{}
	for _, name := range names {
		qtype := dns.TypeTXT
		if strings.HasPrefix(name, "www") {
			qtype = dns.TypeA
		}
		r := exchange(t, "tcp", srv.addr, query(name, qtype, 0))
		if r.Truncated {
			t.Fatalf("TCP answer for %s truncated", name)
		}
		full[name] = len(r.Answer)
	}
	for _, name := range names {
		qtype := dns.TypeTXT
		if strings.HasPrefix(name, "www") {
			qtype = dns.TypeA
		}
		for _, size := range []uint16{0, 100, 511, 512, 600, 799, 800, 801, 1232, 4096, 65535} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				r, n := udpRaw(t, srv.addr, query(name, qtype, size))
				limit := 512
				if size > 0 {
					limit = max(512, int(size))
				}
				limit = min(limit, udpCap)
				if n > limit {
					t.Fatalf("%d-byte UDP answer, over min(client %d, cap %d)", n, size, udpCap)
				}
				if r.Rcode != dns.RcodeSuccess {
					t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
				}
				// Measure what the full answer would take for this client.
				tcpR := exchange(t, "tcp", srv.addr, query(name, qtype, size))
				tcpR.Compress = true
				fits := tcpR.Len() <= limit
				switch {
				case fits && (r.Truncated || len(r.Answer) != full[name]):
					t.Errorf("a %d-byte answer that fits %d was truncated (TC=%v, %d of %d records)", tcpR.Len(), limit, r.Truncated, len(r.Answer), full[name])
				case !fits && !r.Truncated:
					t.Errorf("a %d-byte answer over %d without TC", tcpR.Len(), limit)
				}
				if opt := r.IsEdns0(); (opt != nil) != (size > 0) || (opt != nil && opt.UDPSize() != udpCap) {
					t.Errorf("OPT %v, want one advertising %d when the query had one", opt, udpCap)
				}
			})
		}
	}
}

// TestLimitANYMinimal: ANY gets one RRset (RFC 8482), over UDP and TCP,
// so the answer stays far smaller than the name's data; an RRset too
// large for the client is TC=1 over UDP, never an oversized datagram.
func TestLimitANYMinimal(t *testing.T) {
	cfg := testConfig(t, bigTXT(20), "")
	srv := startServer(t, cfg, engine(cfg))

	// Everything at the apex, type by type.
	all := 0
	for _, qtype := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeTXT, dns.TypeCAA} {
		r := exchange(t, "tcp", srv.addr, query("example.test.", qtype, 0))
		if len(r.Answer) == 0 {
			t.Fatalf("no %s at the apex", dns.TypeToString[qtype])
		}
		all += len(r.Answer)
	}
	for _, netw := range []string{"udp", "tcp"} {
		for _, size := range []uint16{0, 1232, 4096} {
			q := query("example.test.", dns.TypeANY, size)
			qb, _ := q.Pack()
			var r *dns.Msg
			var n int
			if netw == "udp" {
				r, n = udpRaw(t, srv.addr, q)
			} else {
				r = exchange(t, netw, srv.addr, q)
				r.Compress = true
				n = r.Len()
			}
			types := map[uint16]bool{}
			for _, rr := range r.Answer {
				types[rr.Header().Rrtype] = true
			}
			if r.Rcode != dns.RcodeSuccess || len(types) != 1 || len(r.Answer) >= all || r.Truncated {
				t.Errorf("ANY over %s (EDNS %d): %d types, %d of the %d records, TC=%v", netw, size, len(types), len(r.Answer), all, r.Truncated)
			}
			if n > 512 || n > 10*len(qb) {
				t.Errorf("ANY over %s (EDNS %d): %d-byte answer to a %d-byte query", netw, size, n, len(qb))
			}
		}
	}

	// A service name: ANY is its address records only.
	r := exchange(t, "udp", srv.addr, query("www.example.test.", dns.TypeANY, 1232))
	same(t, "ANY at a service", rrStrings(r.Answer), []string{wwwA1, wwwA2})

	// A name whose one RRset is larger than the client takes.
	for _, size := range []uint16{0, 1232} {
		r, n := udpRaw(t, srv.addr, query("big.example.test.", dns.TypeANY, size))
		if !r.Truncated || len(r.Answer) != 0 || n > max(512, int(size)) {
			t.Errorf("ANY for a large RRset over UDP (EDNS %d): TC=%v, %d records, %d bytes", size, r.Truncated, len(r.Answer), n)
		}
	}
}

// TestLimitUDPAmplification: over UDP an answer is at most
// max_udp_amplification times the query's size; a larger one is sent
// truncated (and small, about the query's size) so the client retries over
// TCP, where it gets the whole answer. Small answers are unaffected.
func TestLimitUDPAmplification(t *testing.T) {
	recs := []string{`medium TXT "` + strings.Repeat("m", 200) + `"`, `medium TXT "` + strings.Repeat("n", 200) + `"`}
	cfg := testConfig(t, recs, `  max_udp_amplification: 5
`)
	srv := startServer(t, cfg, engine(cfg))
	for _, tc := range []struct {
		qname string
		qtype uint16
		tc    bool
	}{
		{"medium.example.test.", dns.TypeTXT, true}, // ~470 bytes for a ~50-byte query
		{"example.test.", dns.TypeSOA, false},
		{"www.example.test.", dns.TypeA, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.qname, tc.qtype)
		m.SetEdns0(1232, false)
		req, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		r, _, err := c.Exchange(m, srv.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.qname, err)
		}
		raw, _ := r.Pack()
		if r.Truncated != tc.tc {
			t.Errorf("%s %s: TC=%v, want %v (%d-byte answer to a %d-byte query)", tc.qname, dns.TypeToString[tc.qtype], r.Truncated, tc.tc, len(raw), len(req))
		}
		if len(raw) > 5*len(req) {
			t.Errorf("%s: %d-byte UDP answer to a %d-byte query exceeds 5×", tc.qname, len(raw), len(req))
		}
		if tc.tc {
			c.Net = "tcp"
			r, _, err := c.Exchange(m, srv.addr)
			if err != nil || r.Truncated || len(r.Answer) != 2 {
				t.Fatalf("%s over TCP: %v, TC=%v, %d answers; want the whole answer", tc.qname, err, r != nil && r.Truncated, len(r.Answer))
			}
		}
	}
}
