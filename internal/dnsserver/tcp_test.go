package dnsserver

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const limitsYAML = `  tcp_idle_timeout: 300ms
  tcp_read_timeout: 300ms
  max_tcp_connections: 3
  max_tcp_connections_per_ip: 2
  max_queries_per_tcp_connection: 3
`

// dialFrom opens a DNS TCP connection from the loopback address local.
// It returns nil when the server refused the connection so fast that the
// dial itself saw the reset.
func dialFrom(t *testing.T, local, addr string) *dns.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &dns.Conn{Conn: c}
}

// ask sends one query on c and reports whether it was answered.
func ask(c *dns.Conn) bool {
	if c == nil {
		return false
	}
	if err := c.WriteMsg(query("c.example.test.", dns.TypeA, 0)); err != nil {
		return false
	}
	r, err := c.ReadMsg()
	return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
}

// closedByServer reports whether the server closed c (a read fails
// before the test's deadline rather than timing out).
func closedByServer(c *dns.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestTCPTimeouts(t *testing.T) {
	cfg := testConfig(t, nil, limitsYAML)
	srv := startServer(t, cfg, engine(cfg))

	t.Run("idle connection is closed", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", srv.addr)
		if !ask(c) {
			t.Fatal("first query not answered")
		}
		if !closedByServer(c) {
			t.Fatal("idle connection not closed")
		}
		waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonIdleTimeout, 1)
	})

	t.Run("one byte then stall is dropped", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", srv.addr)
		if _, err := c.Conn.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(c) {
			t.Fatal("stalled connection not closed")
		}
		waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonReadTimeout, 1)
	})

	t.Run("partial message then stall is dropped", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", srv.addr)
		if _, err := c.Conn.Write([]byte{0, 40, 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(c) {
			t.Fatal("stalled connection not closed")
		}
		waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonReadTimeout, 2)
	})

	t.Run("max queries per connection", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", srv.addr)
		for i := range cfg.DNS.MaxQueriesPerTCPConnection {
			if !ask(c) {
				t.Fatalf("query %d not answered", i+1)
			}
		}
		if !closedByServer(c) {
			t.Fatal("connection not closed after the last allowed query")
		}
		waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonMaxQueries, 1)
	})
}

func TestTCPConnectionLimits(t *testing.T) {
	cfg := testConfig(t, nil, `  max_tcp_connections: 3
  max_tcp_connections_per_ip: 2
`)
	srv := startServer(t, cfg, engine(cfg))

	a1 := dialFrom(t, "127.0.0.1", srv.addr)
	a2 := dialFrom(t, "127.0.0.1", srv.addr)
	if !ask(a1) || !ask(a2) {
		t.Fatal("connections within the limits not served")
	}
	a3 := dialFrom(t, "127.0.0.1", srv.addr)
	if ask(a3) {
		t.Fatal("third connection from one IP served")
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_rejected_total", "reason", reasonMaxPerIP, 1)

	b1 := dialFrom(t, "127.0.0.2", srv.addr)
	if !ask(b1) {
		t.Fatal("connection from another IP not served")
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", 3)
	c1 := dialFrom(t, "127.0.0.3", srv.addr)
	if ask(c1) {
		t.Fatal("connection over the total limit served")
	}
	waitMetric(t, srv.reg, "gslb_dns_tcp_rejected_total", "reason", reasonMaxConnections, 1)

	// UDP clients are unaffected, and the open connections still work.
	if r := exchange(t, "udp", srv.addr, query("c.example.test.", dns.TypeA, 0)); len(r.Answer) != 1 {
		t.Fatalf("UDP: %v", r)
	}
	if !ask(a1) || !ask(b1) {
		t.Fatal("admitted connections stopped working")
	}

	// A closed connection frees its slot.
	a1.Close()
	waitMetric(t, srv.reg, "gslb_dns_tcp_connections", "", "", 2)
	a4 := dialFrom(t, "127.0.0.1", srv.addr)
	if !ask(a4) {
		t.Fatal("connection not served after a slot was freed")
	}
}
