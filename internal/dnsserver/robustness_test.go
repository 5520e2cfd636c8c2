package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// robustDNS is the dns: section of the robustness tests. Loopback is
// exempt from response rate limiting: the test floods from 127.0.0.1 on
// purpose and judges the answers, not the rate limiter.
const robustDNS = `  udp_size: 1232
  tcp_idle_timeout: 700ms
  tcp_read_timeout: 500ms
  rrl:
    exempt: ["127.0.0.0/8"]
`

// canary is a valid query and the exact answer it must get.
type canary struct {
	name  string
	msg   func() *dns.Msg
	check func(r *dns.Msg, netw string) error
}

// wantReply compares the parts of a reply a client relies on. Records
// are compared as sorted sets (an answer may rotate).
func wantReply(r *dns.Msg, rcode int, tc bool, answer, ns []string) error {
	if !r.Response || !r.Authoritative || r.Rcode != rcode || r.Truncated != tc || r.RecursionAvailable {
		return fmt.Errorf("header %+v, want rcode %s AA TC=%v", r.MsgHdr, dns.RcodeToString[rcode], tc)
	}
	got, want := rrStrings(r.Answer), slices.Clone(answer)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("answer %q, want %q", got, want)
	}
	if gotNS := rrStrings(r.Ns); !slices.Equal(gotNS, ns) {
		return fmt.Errorf("authority %q, want %q", gotNS, ns)
	}
	return nil
}

// canaries are the valid queries interleaved with the garbage.
func canaries() []canary {
	return []canary{
		{
			name: "www A",
			msg:  func() *dns.Msg { return query("www.example.test.", dns.TypeA, 0) },
			check: func(r *dns.Msg, _ string) error {
				if r.IsEdns0() != nil {
					return errors.New("OPT in the reply to a query without one")
				}
				return wantReply(r, dns.RcodeSuccess, false, []string{wwwA1, wwwA2}, nil)
			},
		},
		{
			name: "www A with ECS",
			msg: func() *dns.Msg {
				return ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 24, 0, 203, 0, 113})
			},
			check: func(r *dns.Msg, _ string) error {
				s := subnetOf(r)
				if s == nil || s.Family != 1 || s.SourceNetmask != 24 || s.SourceScope > 24 ||
					!s.Address.Equal(net.IPv4(203, 0, 113, 0)) {
					return fmt.Errorf("ECS echo %v", s)
				}
				return wantReply(r, dns.RcodeSuccess, false, []string{wwwA1, wwwA2}, nil)
			},
		},
		{
			name: "apex SOA",
			msg:  func() *dns.Msg { return query("example.test.", dns.TypeSOA, 1232) },
			check: func(r *dns.Msg, _ string) error {
				if opt := r.IsEdns0(); opt == nil || opt.UDPSize() != 1232 {
					return fmt.Errorf("OPT %v", opt)
				}
				return wantReply(r, dns.RcodeSuccess, false, []string{soaRR}, nil)
			},
		},
		{
			name: "NXDOMAIN",
			msg:  func() *dns.Msg { return query("nope.example.test.", dns.TypeA, 0) },
			check: func(r *dns.Msg, _ string) error {
				return wantReply(r, dns.RcodeNameError, false, nil, []string{negSOARR})
			},
		},
		{
			name: "big TXT: truncated over UDP, whole over TCP",
			msg:  func() *dns.Msg { return query("big.example.test.", dns.TypeTXT, 1232) },
			check: func(r *dns.Msg, netw string) error {
				if netw == "udp" {
					return wantReply(r, dns.RcodeSuccess, true, nil, nil)
				}
				var want []string
				for _, rec := range bigTXT(20) {
					rr, err := dns.NewRR("$ORIGIN example.test.\n$TTL 300\n" + rec)
					if err != nil {
						return err
					}
					want = append(want, rrStrings([]dns.RR{rr})...)
				}
				return wantReply(r, dns.RcodeSuccess, false, want, nil)
			},
		},
	}
}

// askCanary sends c over netw and checks the reply; UDP replies are also
// checked against the client's size.
func askCanary(netw, addr string, c canary) error {
	q := c.msg()
	cl := &dns.Client{Net: netw, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := cl.Exchange(q, addr)
	if err != nil {
		return fmt.Errorf("canary %s over %s: %w", c.name, netw, err)
	}
	if r.Id != q.Id || len(r.Question) != 1 || r.Question[0] != q.Question[0] {
		return fmt.Errorf("canary %s over %s: id/question mismatch: %v", c.name, netw, r)
	}
	if netw == "udp" {
		limit := 512
		if opt := q.IsEdns0(); opt != nil {
			limit = max(512, int(opt.UDPSize()))
		}
		r.Compress = true
		if n := r.Len(); n > limit {
			return fmt.Errorf("canary %s: %d-byte UDP reply to a client of %d", c.name, n, limit)
		}
	}
	if err := c.check(r, netw); err != nil {
		return fmt.Errorf("canary %s over %s: %w", c.name, netw, err)
	}
	return nil
}

// subnetOf returns the ECS option of a reply, or nil.
func subnetOf(r *dns.Msg) *dns.EDNS0_SUBNET {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if s, ok := o.(*dns.EDNS0_SUBNET); ok {
				return s
			}
		}
	}
	return nil
}

// metricTotal sums a counter or gauge over all its series.
func metricTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	var sum float64
	for _, mf := range gather(t, reg) {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// sentPacket is what the garbage client remembers of one packet.
type sentPacket struct {
	kind     string
	response bool // QR was set: the server must not answer
	limit    int  // the largest reply the client can take
}

// garbage generates malformed and hostile packets from a seeded source.
type garbage struct {
	rnd *rand.Rand
}

// valid is the wire form of a valid query, with an OPT record of size
// udpSize when udpSize > 0 and the given EDNS options.
func (g *garbage) valid(name string, qtype uint16, udpSize uint16, opts ...dns.EDNS0) []byte {
	m := query(name, qtype, udpSize)
	if len(opts) > 0 {
		if m.IsEdns0() == nil {
			m.SetEdns0(1232, false)
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, opts...)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// optRR is an OPT record with the given size, rdlength and rdata.
func optRR(size uint16, rdlen uint16, rdata []byte) []byte {
	b := []byte{0, 0, 41, byte(size >> 8), byte(size), 0, 0, 0, 0, byte(rdlen >> 8), byte(rdlen)}
	return append(b, rdata...)
}

// ednsOption is one raw EDNS option.
func ednsOption(code uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// withOPT is a query for www A with one OPT record holding rdata.
func withOPT(rdata []byte) []byte {
	return cat(rawHeader(0, 0, 1, 0, 0, 1), rawQuestion, optRR(1232, uint16(len(rdata)), rdata))
}

func (g *garbage) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rnd.Uint32())
	}
	return b
}

// kinds are the generators of hostile packets, by name.
func (g *garbage) kinds() []struct {
	name string
	gen  func() []byte
} {
	badECS := [][]byte{
		{0, 3, 24, 0, 203, 0, 113},                    // family 3
		{0, 0, 24, 0, 203, 0, 113},                    // family 0
		{0, 1, 33, 0, 203, 0, 113, 1, 2},              // prefix > 32
		{0, 2, 129, 0},                                // v6 prefix > 128
		{0, 1, 23, 0, 203, 0, 113},                    // bits beyond the prefix
		{0, 1, 20, 0, 203, 0, 127},                    // bits beyond the prefix
		{0, 1, 24, 0, 203, 0},                         // truncated address
		{0, 1, 24, 0, 203, 0, 113, 7},                 // too many address bytes
		{0, 2, 56, 0, 0x20, 0x01},                     // truncated v6 address
		{0, 1, 24, 24, 203, 0, 113},                   // scope in a query
		{0, 1, 24},                                    // shorter than the fixed part
		{},                                            // empty
		{0, 1, 0, 0, 1},                               // /0 with an address byte
		{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7}, // everything wrong
	}
	return []struct {
		name string
		gen  func() []byte
	}{
		{"random bytes", func() []byte { return g.bytes(g.rnd.IntN(600)) }},
		{"large random bytes", func() []byte { return g.bytes(1000 + g.rnd.IntN(3000)) }},
		{"truncated header", func() []byte {
			return g.valid("www.example.test.", dns.TypeA, 0)[:2+g.rnd.IntN(headerSize-2)]
		}},
		{"truncated message", func() []byte {
			b := g.valid("www.example.test.", dns.TypeA, 1232)
			return b[:headerSize+g.rnd.IntN(len(b)-headerSize)]
		}},
		{"label runs past the end", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{byte(10 + g.rnd.IntN(53)), 'w', 'w', 'w'})
		}},
		{"label length with reserved bits", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{byte(0x40 + g.rnd.IntN(0x80)), 'a', 'b', 'c', 0, 0, 1, 0, 1})
		}},
		{"name longer than 255", func() []byte {
			var name []byte
			for range 6 {
				name = append(name, 63)
				name = append(name, make([]byte, 63)...)
			}
			for i := range name {
				if name[i] == 0 {
					name[i] = 'a'
				}
			}
			return cat(rawHeader(0, 0, 1, 0, 0, 0), name, []byte{0, 0, 1, 0, 1})
		}},
		{"compression pointer to itself", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{0xc0, 0x0c, 0, 1, 0, 1})
		}},
		{"compression pointer loop", func() []byte {
			// name at 12: label "a" then a pointer to 12.
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 0x0c, 0, 1, 0, 1})
		}},
		{"compression pointer ping-pong", func() []byte {
			// question name points to 18, which points back to 12.
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{0xc0, 18, 0, 1, 0, 1, 0xc0, 12})
		}},
		{"compression pointer past the end", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 0), []byte{0xc0 | byte(g.rnd.IntN(64)), 0xff, 0, 1, 0, 1})
		}},
		{"QDCOUNT 2", func() []byte { return cat(rawHeader(0, 0, 2, 0, 0, 0), rawQuestion, rawQuestion) }},
		{"QDCOUNT 65535", func() []byte { return cat(rawHeader(0, 0, 0xffff, 0, 0, 0), rawQuestion) }},
		{"QDCOUNT 0", func() []byte { return rawHeader(0, 0, 0, 0, 0, 0) }},
		{"QDCOUNT 0 with a question", func() []byte { return cat(rawHeader(0, 0, 0, 0, 0, 0), rawQuestion) }},
		{"counts lie", func() []byte {
			return cat(rawHeader(0, 0, 1, uint16(g.rnd.IntN(5)), uint16(g.rnd.IntN(5)), uint16(1+g.rnd.IntN(5))), rawQuestion)
		}},
		{"duplicated OPT", func() []byte {
			n := 2 + g.rnd.IntN(3)
			parts := [][]byte{rawHeader(0, 0, 1, 0, 0, uint16(n)), rawQuestion}
			for range n {
				parts = append(parts, optRR(uint16(g.rnd.Uint32()), 0, nil))
			}
			return cat(parts...)
		}},
		{"oversized OPT", func() []byte {
			// Many options, several KB of them.
			var rdata []byte
			for range 20 + g.rnd.IntN(40) {
				rdata = append(rdata, ednsOption(uint16(65001+g.rnd.IntN(500)), g.bytes(g.rnd.IntN(100)))...)
			}
			return withOPT(rdata)
		}},
		{"OPT rdlength past the end", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 1), rawQuestion, optRR(1232, 0xffff, g.bytes(10)))
		}},
		{"OPT option overruns", func() []byte {
			return withOPT([]byte{0, 8, 0, 200, 0, 1, 24, 0})
		}},
		{"OPT truncated option header", func() []byte { return withOPT([]byte{0, 8, 0}) }},
		{"OPT with a non-root owner", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 1), rawQuestion, []byte{1, 'x'}, optRR(1232, 0, nil))
		}},
		{"OPT in the answer section", func() []byte {
			return cat(rawHeader(0, 0, 1, 1, 0, 0), rawQuestion, optRR(1232, 0, nil))
		}},
		{"OPT with random rdata", func() []byte { return withOPT(g.bytes(g.rnd.IntN(64))) }},
		{"EDNS version 1", func() []byte {
			b := cat(rawHeader(0, 0, 1, 0, 0, 1), rawQuestion, optRR(1232, 0, nil))
			b[len(b)-5] = 1 // version
			return b
		}},
		{"tiny and huge EDNS sizes", func() []byte {
			return cat(rawHeader(0, 0, 1, 0, 0, 1), []byte("\x03big\x07example\x04test\x00\x00\x10\x00\x01"),
				optRR([]uint16{0, 1, 100, 511, 65535}[g.rnd.IntN(5)], 0, nil))
		}},
		{"unknown class", func() []byte {
			b := g.valid("www.example.test.", dns.TypeA, 0)
			class := []uint16{dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassNONE, 0, 5, 4242, 0xffff, uint16(g.rnd.Uint32())}[g.rnd.IntN(8)]
			binary.BigEndian.PutUint16(b[len(b)-2:], class)
			return b
		}},
		{"unknown or meta type", func() []byte {
			qtype := []uint16{0, dns.TypeOPT, dns.TypeAXFR, dns.TypeIXFR, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, 65280, 0xffff, uint16(g.rnd.Uint32())}[g.rnd.IntN(10)]
			return g.valid([]string{"example.test.", "www.example.test.", "nope.example.test.", "example.org."}[g.rnd.IntN(4)], qtype, 1232)
		}},
		{"ANY", func() []byte { return g.valid("example.test.", dns.TypeANY, uint16(g.rnd.IntN(5000))) }},
		{"malformed ECS", func() []byte {
			return withOPT(ednsOption(dns.EDNS0SUBNET, badECS[g.rnd.IntN(len(badECS))]))
		}},
		{"two ECS options", func() []byte {
			e := ednsOption(dns.EDNS0SUBNET, []byte{0, 1, 24, 0, 203, 0, 113})
			return withOPT(cat(e, e))
		}},
		{"random ECS", func() []byte {
			return withOPT(ednsOption(dns.EDNS0SUBNET, g.bytes(g.rnd.IntN(24))))
		}},
		{"opcode other than QUERY", func() []byte {
			b := g.valid("www.example.test.", dns.TypeA, 0)
			b[2] = byte(1+g.rnd.IntN(15)) << 3
			return b
		}},
		{"response to a query", func() []byte {
			m := query("www.example.test.", dns.TypeA, 1232)
			r := new(dns.Msg)
			r.SetReply(m)
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 9)})
			b, _ := r.Pack()
			return b
		}},
		{"response with garbage", func() []byte {
			b := g.bytes(headerSize + g.rnd.IntN(300))
			b[2] |= 0x80
			return b
		}},
		{"flipped bits in a valid query", func() []byte {
			b := g.valid("www.example.test.", dns.TypeA, 1232, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(203, 0, 113, 0)})
			for range 1 + g.rnd.IntN(4) {
				i := 2 + g.rnd.IntN(len(b)-2)
				b[i] ^= 1 << g.rnd.IntN(8)
			}
			return b
		}},
	}
}

// clientLimit is the largest UDP reply the sender of pkt accepts: the
// EDNS size of its (first) OPT record, or 512.
func clientLimit(pkt []byte) int {
	var m dns.Msg
	if m.Unpack(pkt) != nil {
		return 512
	}
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			return max(512, int(opt.UDPSize()))
		}
	}
	return 512
}

// garbageClient sends packets from one UDP socket and collects every
// datagram that comes back.
type garbageClient struct {
	conn *net.UDPConn
	dst  *net.UDPAddr
	next uint16
	sent map[uint16]sentPacket

	mu      sync.Mutex
	replies [][]byte
	seen    chan uint16 // ids of replies, for the barrier
	done    chan struct{}
}

func newGarbageClient(t *testing.T, addr string) *garbageClient {
	t.Helper()
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	gc := &garbageClient{conn: conn, dst: dst, next: 1, sent: map[uint16]sentPacket{},
		seen: make(chan uint16, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(gc.done)
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			gc.mu.Lock()
			gc.replies = append(gc.replies, slices.Clone(buf[:n]))
			gc.mu.Unlock()
			if n >= 2 {
				gc.seen <- binary.BigEndian.Uint16(buf)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-gc.done
	})
	return gc
}

// send numbers pkt with the next id and sends it.
func (gc *garbageClient) send(t *testing.T, kind string, pkt []byte) {
	t.Helper()
	id := gc.next
	gc.next++
	if len(pkt) >= 2 {
		binary.BigEndian.PutUint16(pkt, id)
		gc.sent[id] = sentPacket{kind: kind, response: len(pkt) >= 3 && pkt[2]&0x80 != 0, limit: clientLimit(pkt)}
	}
	if _, err := gc.conn.WriteToUDP(pkt, gc.dst); err != nil {
		t.Fatalf("send %s: %v", kind, err)
	}
}

// barrier sends a valid query and waits for its reply: the server has
// then handled everything sent before (replies of other readers may
// still be in flight for a moment; the caller waits a little more).
func (gc *garbageClient) barrier(t *testing.T) {
	t.Helper()
	id := gc.next
	gc.send(t, "barrier", cat(rawHeader(0, 0, 1, 0, 0, 0), rawQuestion))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-gc.seen:
			if got == id {
				time.Sleep(100 * time.Millisecond)
				return
			}
		case <-deadline:
			t.Fatal("barrier query not answered")
		}
	}
}

// check judges every reply: it answers a packet that was sent, at most
// once, never a response (no reflection), and fits the client's size.
func (gc *garbageClient) check(t *testing.T, udpCap int) (answered int) {
	t.Helper()
	gc.mu.Lock()
	defer gc.mu.Unlock()
	got := map[uint16]int{}
	for _, reply := range gc.replies {
		if len(reply) < headerSize {
			t.Errorf("runt reply of %d bytes", len(reply))
			continue
		}
		id := binary.BigEndian.Uint16(reply)
		p, ok := gc.sent[id]
		if !ok {
			t.Errorf("reply with id %d to nothing sent", id)
			continue
		}
		if got[id]++; got[id] == 2 {
			t.Errorf("two replies to one %s packet (id %d)", p.kind, id)
		}
		if p.response {
			t.Errorf("the server answered a response (QR=1) packet of kind %q: reflection", p.kind)
		}
		if limit := min(p.limit, udpCap); len(reply) > limit {
			t.Errorf("%d-byte reply to a %s packet whose client takes %d (cap %d)", len(reply), p.kind, p.limit, udpCap)
		}
		var m dns.Msg
		if err := m.Unpack(reply); err != nil {
			t.Errorf("reply to a %s packet does not parse: %v", p.kind, err)
		} else if !m.Response {
			t.Errorf("reply to a %s packet without QR", p.kind)
		}
	}
	return len(got)
}

// TestRobustnessMalformedUDP floods a running server with a few thousand
// hostile packets in bounded batches, interleaved with valid canary
// queries over UDP and TCP, each of which must get exactly the right
// answer. No response packet may be answered and no reply may exceed the
// client's size.
func TestRobustnessMalformedUDP(t *testing.T) {
	const (
		batches   = 120
		batchSize = 25 // bounded: never more than this in the server's queue
	)
	cfg := testConfig(t, bigTXT(20), robustDNS)
	srv := startServer(t, cfg, engine(cfg))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	g := &garbage{rnd: rand.New(rand.NewPCG(seed, 9))}
	kinds := g.kinds()
	gc := newGarbageClient(t, srv.addr)
	cs := canaries()

	perKind := map[string]int{}
	canaryCount := 0
	for b := range batches {
		for i := range batchSize {
			k := kinds[(b*batchSize+i)%len(kinds)]
			if g.rnd.IntN(4) == 0 {
				k = kinds[g.rnd.IntN(len(kinds))]
			}
			gc.send(t, k.name, k.gen())
			perKind[k.name]++
		}
		c := cs[b%len(cs)]
		netw := "udp"
		if b%10 == 9 {
			netw = "tcp"
		}
		if err := askCanary(netw, srv.addr, c); err != nil {
			t.Fatalf("after %d hostile packets: %v", b*batchSize, err)
		}
		canaryCount++
	}
	gc.barrier(t)
	answered := gc.check(t, int(cfg.DNS.UDPSize))
	t.Logf("%d hostile packets of %d kinds (%d answered), %d canaries all answered correctly",
		batches*batchSize, len(perKind), answered, canaryCount)
	if len(perKind) != len(kinds) {
		t.Errorf("only %d of %d kinds were sent", len(perKind), len(kinds))
	}
	if answered < batches*batchSize/4 {
		t.Errorf("only %d of %d hostile packets answered: most malformed queries deserve FORMERR", answered, batches*batchSize)
	}
	if n := metricTotal(t, srv.reg, "gslb_dns_handler_panics_total"); n != 0 {
		t.Errorf("%v handler panics", n)
	}
}

// tcpDial opens a TCP connection from 127.0.0.1 with a 5 s deadline.
func tcpDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// readAllUntilClose reads until the peer closes c and returns what came.
// It fails the test when c is not closed before its deadline.
func readAllUntilClose(t *testing.T, c net.Conn) []byte {
	t.Helper()
	data, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by the server (read %d bytes)", len(data))
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	return data
}

// TestRobustnessTCPHostileFraming sends hostile length prefixes and
// messages over TCP.
func TestRobustnessTCPHostileFraming(t *testing.T) {
	cfg := testConfig(t, bigTXT(20), robustDNS)
	srv := startServer(t, cfg, engine(cfg))
	g := &garbage{rnd: rand.New(rand.NewPCG(1, 2))}

	t.Run("huge length prefix then stall", func(t *testing.T) {
		c := tcpDial(t, srv.addr)
		if _, err := c.Write(cat([]byte{0xff, 0xff}, g.bytes(100))); err != nil {
			t.Fatal(err)
		}
		if data := readAllUntilClose(t, c); len(data) != 0 {
			t.Errorf("got %d bytes for an incomplete message", len(data))
		}
	})

	t.Run("huge message is answered and the connection goes on", func(t *testing.T) {
		c := tcpDial(t, srv.addr)
		junk := g.bytes(0xffff)
		binary.BigEndian.PutUint16(junk, 4242)
		junk[2] &^= 0x80 // a query, not a response
		junk[2] &^= 0x78 // opcode QUERY
		if _, err := c.Write(cat([]byte{0xff, 0xff}, junk)); err != nil {
			t.Fatal(err)
		}
		dc := &dns.Conn{Conn: c}
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("no reply to a 64 KiB malformed query: %v", err)
		}
		if r.Id != 4242 || r.Rcode != dns.RcodeFormatError {
			t.Errorf("reply %v, want FORMERR for id 4242", r.MsgHdr)
		}
		cs := canaries()
		q := cs[0].msg()
		if err := dc.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		if r, err = dc.ReadMsg(); err != nil || r.Id != q.Id {
			t.Fatalf("query after the junk on the same connection: %v %v", r, err)
		} else if err := cs[0].check(r, "tcp"); err != nil {
			t.Error(err)
		}
	})

	t.Run("zero length prefix closes without an answer", func(t *testing.T) {
		c := tcpDial(t, srv.addr)
		if _, err := c.Write([]byte{0, 0}); err != nil {
			t.Fatal(err)
		}
		if data := readAllUntilClose(t, c); len(data) != 0 {
			t.Errorf("got %d bytes for an empty message", len(data))
		}
	})

	t.Run("response over TCP is not answered", func(t *testing.T) {
		c := tcpDial(t, srv.addr)
		m := query("www.example.test.", dns.TypeA, 0)
		m.Response = true
		b, _ := m.Pack()
		if _, err := c.Write(cat([]byte{0, byte(len(b))}, b)); err != nil {
			t.Fatal(err)
		}
		if data := readAllUntilClose(t, c); len(data) != 0 {
			t.Errorf("got %d bytes in reply to a response: reflection over TCP", len(data))
		}
	})

	t.Run("canaries still answered", func(t *testing.T) {
		for _, c := range canaries() {
			for _, netw := range []string{"udp", "tcp"} {
				if err := askCanary(netw, srv.addr, c); err != nil {
					t.Error(err)
				}
			}
		}
	})
}

// TestRobustnessIdleAndSlowTCP holds hundreds of idle and slow TCP
// connections (one byte, then nothing) from several loopback addresses
// while canaries keep being answered over UDP and fresh TCP connections,
// and checks that the server closes every stalled connection once its
// idle or read timeout has passed.
func TestRobustnessIdleAndSlowTCP(t *testing.T) {
	const (
		perKind = 150 // idle and slow each
		sources = 6   // 127.0.0.2..7: 50 connections each, under the per-IP default
	)
	cfg := testConfig(t, bigTXT(20), robustDNS)
	srv := startServer(t, cfg, engine(cfg))
	if 2*perKind/sources > cfg.DNS.MaxTCPConnectionsPerIP || 2*perKind >= cfg.DNS.MaxTCPConnections {
		t.Fatalf("the test's connections exceed the configured limits")
	}

	type stalled struct {
		c     net.Conn
		slow  bool
		since time.Time // before the server can have armed its timer
	}
	conns := make([]stalled, 2*perKind)
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for w := range sources {
		wg.Go(func() {
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w))}
			d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
			for i := w; i < len(conns); i += sources {
				slow := i%2 == 1
				since := time.Now()
				c, err := d.Dial("tcp", srv.addr)
				if err != nil {
					errs <- err
					return
				}
				if slow {
					since = time.Now()
					if _, err := c.Write([]byte{0}); err != nil {
						errs <- err
						c.Close()
						return
					}
				}
				conns[i] = stalled{c: c, slow: slow, since: since}
			}
		})
	}
	wg.Wait()
	close(errs)
	for _, c := range conns {
		if c.c != nil {
			t.Cleanup(func() { c.c.Close() })
		}
	}
	for err := range errs {
		t.Fatalf("open stalled connection: %v", err)
	}

	// Canaries over UDP and over fresh TCP connections (also from an
	// address that holds stalled connections) while they are open.
	for _, c := range canaries() {
		if err := askCanary("udp", srv.addr, c); err != nil {
			t.Error(err)
		}
		if err := askCanary("tcp", srv.addr, c); err != nil {
			t.Error(err)
		}
	}
	dc := dialFrom(t, "127.0.0.2", srv.addr)
	if !ask(dc) {
		t.Error("fresh TCP connection from an address holding 50 stalled ones not served")
	}
	dc.Close() // closed by the client: not counted as a timeout below

	// Every stalled connection is closed by the server, not before its timeout.
	var closeWG sync.WaitGroup
	for i := range conns {
		closeWG.Go(func() {
			c := conns[i]
			_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.c.Read(make([]byte, 1))
			elapsed := time.Since(c.since)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Errorf("stalled connection %d (slow=%v) not closed by the server", i, c.slow)
			case n > 0:
				t.Errorf("stalled connection %d got data", i)
			case c.slow && elapsed < cfg.DNS.TCPReadTimeout:
				t.Errorf("slow connection closed after %v, before the read timeout %v", elapsed, cfg.DNS.TCPReadTimeout)
			case !c.slow && elapsed < cfg.DNS.TCPIdleTimeout:
				t.Errorf("idle connection closed after %v, before the idle timeout %v", elapsed, cfg.DNS.TCPIdleTimeout)
			}
		})
	}
	closeWG.Wait()
	waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonIdleTimeout, perKind)
	waitMetric(t, srv.reg, "gslb_dns_tcp_closed_total", "reason", reasonReadTimeout, perKind)
	if n := metricTotal(t, srv.reg, "gslb_dns_tcp_rejected_total"); n != 0 {
		t.Errorf("%v connections rejected; all were within the limits", n)
	}
	// And the server still answers.
	for _, c := range canaries() {
		if err := askCanary("tcp", srv.addr, c); err != nil {
			t.Error(err)
		}
	}
}
