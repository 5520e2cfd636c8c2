//go:build linux

package dnsserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestUDPBatchReadsAndWritesMany queues more datagrams than a batch holds
// and checks that one read takes a full batch with each source, and that
// one flush sends every queued reply to its source; with pktinfo, each
// reply also carries its source address as a control message (as on a
// wildcard listener).
func TestUDPBatchReadsAndWritesMany(t *testing.T) {
	for _, pktinfo := range []bool{false, true} {
		t.Run(fmt.Sprintf("pktinfo=%v", pktinfo), func(t *testing.T) { testUDPBatch(t, pktinfo) })
	}
}

func testUDPBatch(t *testing.T, pktinfo bool) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clients := make([]*net.UDPConn, 2)
	for i := range clients {
		if clients[i], err = net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	const n = batchSize + 8
	for i := range n {
		if _, err := clients[i%2].Write([]byte{byte(i), 'q'}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if pktinfo {
		if err := ipv4.NewPacketConn(srv).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			t.Fatal(err)
		}
	}
	b := newUDPBatch(rc, pktinfo)
	got := 0
	for got < n {
		if err := rc.Read(b.recvmmsg); err != nil || b.errno != 0 {
			t.Fatalf("read: %v %v", err, b.errno)
		}
		if got == 0 && b.n != batchSize {
			t.Fatalf("first read took %d datagrams, want a full batch of %d", b.n, batchSize)
		}
		for i := range b.n {
			src, ok := sockaddrAddrPort(b.names[i][:b.rhdrs[i].Hdr.Namelen])
			want := clients[(got+i)%2].LocalAddr().(*net.UDPAddr).AddrPort()
			data := b.in[i][:b.rhdrs[i].Len]
			if !ok || src != want || !bytes.Equal(data, []byte{byte(got + i), 'q'}) {
				t.Fatalf("datagram %d: % x from %v, want from %v", got+i, data, src, want)
			}
			if pktinfo {
				var cm ipv4.ControlMessage
				if err := cm.Parse(b.oob[i][:b.rhdrs[i].Hdr.Controllen]); err != nil || !cm.Dst.Equal(net.IPv4(127, 0, 0, 1)) {
					t.Fatalf("datagram %d: destination %v, %v", got+i, cm.Dst, err)
				}
			}
			b.queue(i, append(b.out[i][:0], data[0], 'r'))
			if pktinfo && len(b.soob[b.sendN-1]) == 0 {
				t.Fatalf("reply %d has no source control message", got+i)
			}
		}
		if err := b.flush(); err != nil {
			t.Fatal(err)
		}
		got += b.n
	}
	buf := make([]byte, 16)
	for i := range n {
		c := clients[i%2]
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:k], []byte{byte(i), 'r'}) {
			t.Fatalf("reply %d: % x, %v", i, buf[:k], err)
		}
	}
}

// TestUDPOversizeQuery sends a datagram longer than a batch's receive
// buffer: it is answered FORMERR with its question, not cut and answered.
func TestUDPOversizeQuery(t *testing.T) {
	cfg := testConfig(t, nil, "  rrl: {enabled: false}\n")
	srv := startServer(t, cfg, engine(cfg))
	c, err := net.Dial("udp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A query whose OPT record carries a padding option of 5000 bytes.
	m := query("c.example.test.", dns.TypeA, 1232)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 5000)})
	req, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(req) <= batchReadSize {
		t.Fatalf("query of %d bytes is not oversize", len(req))
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var r dns.Msg
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if r.Id != m.Id || r.Rcode != dns.RcodeFormatError || len(r.Question) != 1 || r.Question[0].Name != "c.example.test." {
		t.Fatalf("reply to an oversize query: %v", &r)
	}
	// The server goes on answering.
	if r := exchange(t, "udp", srv.addr, query("c.example.test.", dns.TypeA, 1232)); len(r.Answer) != 1 {
		t.Fatalf("after the oversize query: %v", r)
	}
}

func TestSockaddrAddrPort(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 5353)
	copy(v4[4:], []byte{127, 0, 0, 9})
	v6 := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 53)
	a6 := netip.MustParseAddr("::ffff:192.0.2.1").As16()
	copy(v6[8:], a6[:])
	unknown := bytes.Clone(v6)
	binary.NativeEndian.PutUint16(unknown, unix.AF_UNIX)
	for _, tc := range []struct {
		name string
		sa   []byte
		want string // "" = not decoded
	}{
		{"v4", v4, "127.0.0.9:5353"},
		{"v6 (mapped)", v6, "[::ffff:192.0.2.1]:53"},
		{"short v4", v4[:8], ""},
		{"short v6", v6[:20], ""},
		{"other family", unknown, ""},
		{"empty", nil, ""},
	} {
		got, ok := sockaddrAddrPort(tc.sa)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("%s: %v %v, want %q", tc.name, got, ok, tc.want)
		}
	}
}

// TestReplySourcesMemoised: the control message for a reply is the one
// replySource makes, rebuilt only when the received one changes, so that
// replies on a wildcard socket allocate nothing for it.
func TestReplySourcesMemoised(t *testing.T) {
	oobA := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 1, Addr: [4]byte{192, 0, 2, 53}})
	oobB := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 1, Addr: [4]byte{198, 51, 100, 53}})
	var c replySources
	for _, oob := range [][]byte{oobA, oobA, oobB, oobA} {
		got, want := c.of(oob), replySource(oob)
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Fatalf("of(%x) = %x, replySource gives %x", oob, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.of(oobA) }); n != 0 {
		t.Errorf("%v allocations per reply for an unchanged source, want 0", n)
	}
}

// TestServeInWaitBounded: the UDP loop serves batch after batch inside one
// wait for the socket, but at most maxBatches of them, so that a socket
// that never runs dry still returns to the serve loop (which sees a
// close); and a batch that leaves the socket empty ends the serving
// without another recvmmsg.
func TestServeInWaitBounded(t *testing.T) {
	cfg := testConfig(t, nil, "  rrl: {enabled: false}\n")
	s, err := NewServer(cfg, engine(cfg), Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = client.SetReadBuffer(1 << 20)
	const queued = 2*batchSize + 10
	for i := range queued {
		m := query("c.example.test.", dns.TypeA, 1232)
		m.Id = uint16(i + 1)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write(wire); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := newUDPBatch(rc, false)
	b.maxBatches = 1
	var smp sampler
	serve := func() {
		t.Helper()
		if err := rc.Read(func(fd uintptr) bool { return s.serveInWait(b, fd, &smp) }); err != nil || b.errno != 0 {
			t.Fatalf("serve: %v %v", err, b.errno)
		}
	}
	replies := func(n int) {
		t.Helper()
		buf := make([]byte, 512)
		for range n {
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := client.Read(buf)
			var r dns.Msg
			if err != nil || r.Unpack(buf[:k]) != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("reply: %v %v", err, r)
			}
		}
		_ = client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := client.Read(buf); err == nil {
			t.Fatalf("more than %d replies", n)
		}
	}
	serve() // one batch, then back to the serve loop with datagrams left
	if b.drained {
		t.Fatal("a full batch marked the socket drained")
	}
	replies(batchSize)
	b.maxBatches = 2
	serve() // a full batch, then the last 10, which leave the socket empty
	if !b.drained {
		t.Fatal("a short batch did not mark the socket drained")
	}
	replies(queued - batchSize)
}
