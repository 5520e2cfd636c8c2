package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds arbitrary bytes to the whole request path. A response,
// when there is one, must parse, carry the query's ID with QR set, and fit
// the UDP cap over UDP.
func FuzzRespond(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	seed(query("www.example.test.", dns.TypeA, 0))
	seed(query("nope.example.test.", dns.TypeAAAA, 1232))
	seed(query("big.example.test.", dns.TypeTXT, 512))
	seed(query("example.test.", dns.TypeANY, 4096))
	seed(ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 24, 0, 203, 0, 113}))
	seed(ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 23, 0, 203, 0, 113}))
	f.Add(cat(rawHeader(1, 0, 2, 0, 0, 0), rawQuestion, rawQuestion), true)
	f.Add(cat(rawHeader(5, 0, 1, 0, 0, 0), []byte("\xc0\x0c\x00\x01\x00\x01")), false)
	f.Add(cat(rawHeader(9, 5<<11, 1, 0, 0, 0), rawQuestion), false)
	f.Add([]byte{1, 2, 3}, true)

	cfg := testConfig(f, bigTXT(20), "")
	h, err := NewHandler(cfg, engine(cfg))
	if err != nil {
		f.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.9:5300")
	f.Fuzz(func(t *testing.T, req []byte, overTCP bool) {
		tr := UDP
		if overTCP {
			tr = TCP
		}
		resp, out := h.Respond(nil, req, src, tr)
		if resp == nil {
			if out.Rcode != RcodeDropped {
				t.Fatalf("no response but rcode %d", out.Rcode)
			}
			return
		}
		if len(resp) < headerSize || binary.BigEndian.Uint16(resp) != binary.BigEndian.Uint16(req) {
			t.Fatalf("response id does not match")
		}
		var m dns.Msg
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if !m.Response || m.RecursionAvailable {
			t.Fatalf("bad header %v", m.MsgHdr)
		}
		if tr == UDP && len(resp) > int(cfg.DNS.UDPSize) {
			t.Fatalf("UDP response of %d bytes over the %d cap", len(resp), cfg.DNS.UDPSize)
		}
	})
}

// FuzzParseClientSubnet checks that ECS parsing never panics and that an
// accepted option round-trips through the response encoding.
func FuzzParseClientSubnet(f *testing.F) {
	f.Add([]byte{0, 1, 24, 0, 203, 0, 113})
	f.Add([]byte{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0})
	f.Add([]byte{0, 1, 0, 0})
	f.Add([]byte{0, 1, 33, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseClientSubnet(data)
		if err != nil {
			return
		}
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.Option = append(opt.Option, cs.responseOption(0))
		m := new(dns.Msg)
		m.Extra = append(m.Extra, opt)
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("accepted option does not pack: %v", err)
		}
		got, found, err := findSubnetOption(b)
		if err != nil || !found || string(got) != string(data) {
			t.Fatalf("round trip: % x -> % x (%v)", data, got, err)
		}
	})
}
