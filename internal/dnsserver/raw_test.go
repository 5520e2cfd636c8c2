package dnsserver

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawQuestion is "www.example.test. IN A" on the wire.
var rawQuestion = []byte("\x03www\x07example\x04test\x00\x00\x01\x00\x01")

// rawHeader builds a header with the given id, flags and counts.
func rawHeader(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	for i, v := range []uint16{id, flags, qd, an, ns, ar} {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// rawUDP sends packets and reads one reply each (or none: want nil).
type rawUDP struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawUDP {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUDP{t: t, c: c}
}

func (r *rawUDP) send(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawUDP) read() []byte {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := r.c.Read(buf)
	if err != nil {
		r.t.Fatalf("no reply: %v", err)
	}
	return buf[:n]
}

// canary sends a valid query and checks that the next datagram read is
// its answer: whatever was sent before it got no reply.
func (r *rawUDP) canary(id uint16) {
	r.t.Helper()
	r.send(cat(rawHeader(id, 0, 1, 0, 0, 0), rawQuestion))
	reply := r.read()
	if got := binary.BigEndian.Uint16(reply); got != id {
		r.t.Fatalf("expected no reply to the previous packet, got a reply with id %d", got)
	}
}

func TestRawMalformedQueries(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	optRR := []byte("\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00") // OPT, size 1232, no options
	for _, tc := range []struct {
		name     string
		packet   []byte
		rcode    int
		opcode   int
		question bool // the question is echoed
	}{
		{name: "QDCOUNT 2", packet: cat(rawHeader(1, 0, 2, 0, 0, 0), rawQuestion, rawQuestion), rcode: dns.RcodeFormatError},
		{name: "QDCOUNT 0", packet: rawHeader(2, 0, 0, 0, 0, 0), rcode: dns.RcodeFormatError},
		{name: "QDCOUNT lies", packet: cat(rawHeader(3, 0, 1, 0, 0, 0)), rcode: dns.RcodeFormatError},
		{name: "label runs past the end", packet: cat(rawHeader(4, 0, 1, 0, 0, 0), []byte("\x3fwww")), rcode: dns.RcodeFormatError},
		{name: "compression pointer loop", packet: cat(rawHeader(5, 0, 1, 0, 0, 0), []byte("\xc0\x0c\x00\x01\x00\x01")), rcode: dns.RcodeFormatError},
		{name: "bad label type", packet: cat(rawHeader(6, 0, 1, 0, 0, 0), []byte("\x80abc\x00\x00\x01\x00\x01")), rcode: dns.RcodeFormatError},
		{name: "two OPT records", packet: cat(rawHeader(7, 0, 1, 0, 0, 2), rawQuestion, optRR, optRR), rcode: dns.RcodeFormatError, question: true},
		{name: "ARCOUNT lies", packet: cat(rawHeader(8, 0, 1, 0, 0, 3), rawQuestion, optRR), rcode: dns.RcodeFormatError, question: true},
		{name: "opcode STATUS", packet: cat(rawHeader(9, 2<<11, 1, 0, 0, 0), rawQuestion), rcode: dns.RcodeNotImplemented, opcode: dns.OpcodeStatus, question: true},
		{name: "opcode NOTIFY", packet: cat(rawHeader(10, 4<<11|1<<10, 1, 0, 0, 0), rawQuestion), rcode: dns.RcodeNotImplemented, opcode: dns.OpcodeNotify, question: true},
		{name: "opcode UPDATE", packet: cat(rawHeader(11, 5<<11, 1, 0, 0, 0), rawQuestion), rcode: dns.RcodeNotImplemented, opcode: dns.OpcodeUpdate, question: true},
		{name: "unassigned opcode", packet: cat(rawHeader(12, 15<<11, 0, 0, 0, 0)), rcode: dns.RcodeNotImplemented, opcode: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.send(tc.packet)
			reply := c.read()
			if len(reply) < 12 {
				t.Fatalf("reply of %d bytes", len(reply))
			}
			id, flags := binary.BigEndian.Uint16(reply), binary.BigEndian.Uint16(reply[2:])
			if id != binary.BigEndian.Uint16(tc.packet) {
				t.Errorf("id %d, want %d", id, binary.BigEndian.Uint16(tc.packet))
			}
			if flags&flagQR == 0 || int(flags&0xF) != tc.rcode || int(flags>>11&0xF) != tc.opcode {
				t.Errorf("flags %016b: want QR, opcode %d, rcode %s", flags, tc.opcode, dns.RcodeToString[tc.rcode])
			}
			if flags&(1<<10) != 0 || flags&(1<<7) != 0 {
				t.Errorf("AA or RA set: %016b", flags)
			}
			qd := binary.BigEndian.Uint16(reply[4:])
			if tc.question && (qd != 1 || !bytes.HasPrefix(reply[12:], rawQuestion)) {
				t.Errorf("question not echoed: qd=%d % x", qd, reply[12:])
			}
			var m dns.Msg
			if err := m.Unpack(reply); err != nil {
				t.Errorf("reply does not parse: %v", err)
			}
		})
	}
}

func TestRawDropped(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	c := dialRaw(t, srv.addr)
	for i, packet := range [][]byte{
		{},
		{0x12},
		rawHeader(1, 0, 1, 0, 0, 0)[:11],
		cat(rawHeader(2, flagQR, 1, 0, 0, 0), rawQuestion), // a response
	} {
		c.send(packet)
		c.canary(uint16(100 + i))
	}
}

func TestRawQueryAnswered(t *testing.T) {
	cfg := testConfig(t, nil, "")
	srv := startServer(t, cfg, engine(cfg))
	c := dialRaw(t, srv.addr)
	// RD and CD are copied.
	c.send(cat(rawHeader(77, flagRD|flagCD, 1, 0, 0, 0), rawQuestion))
	var m dns.Msg
	if err := m.Unpack(c.read()); err != nil {
		t.Fatal(err)
	}
	if m.Id != 77 || !m.RecursionDesired || !m.CheckingDisabled || m.RecursionAvailable || !m.Authoritative || len(m.Answer) != 2 {
		t.Errorf("reply: %v", &m)
	}
}

// TestPlainNameEndLimit: a name of 255 octets on the wire is read, one
// of 256 is not (RFC 1035 section 2.3.4), so that no reply echoes a
// question no client can parse (a FuzzRespond finding).
func TestPlainNameEndLimit(t *testing.T) {
	name := func(last int) []byte {
		var b []byte
		for range 3 {
			b = append(b, 63)
			b = append(b, bytes.Repeat([]byte{'a'}, 63)...)
		}
		b = append(b, byte(last))
		b = append(b, bytes.Repeat([]byte{'b'}, last)...)
		return append(b, 0, 0, 1, 0, 1) // root, type A, class IN
	}
	if end, ok := plainNameEnd(name(61), 0); !ok || end != 255 {
		t.Errorf("255-octet name: end %d, ok %v", end, ok)
	}
	if _, ok := plainNameEnd(name(62), 0); ok {
		t.Error("256-octet name accepted")
	}
}
