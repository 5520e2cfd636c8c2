package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkRespond measures the whole message path without sockets: bytes
// in, packed response out.
func BenchmarkRespond(b *testing.B) {
	cfg := testConfig(b, nil, "")
	h, err := NewHandler(cfg, engine(cfg))
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.9:5300")
	for _, bc := range []struct {
		name string
		q    *dns.Msg
	}{
		{"static A", query("c.example.test.", dns.TypeA, 1232)},
		{"service A", query("www.example.test.", dns.TypeA, 1232)},
		{"service A with ECS", ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 24, 0, 203, 0, 113})},
		{"NXDOMAIN", query("nope.example.test.", dns.TypeA, 1232)},
		{"wildcard", query("foo.wild.example.test.", dns.TypeA, 1232)},
	} {
		req, err := bc.q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				resp, _ := h.Respond(buf, req, src, UDP)
				if resp == nil {
					b.Fatal("no response")
				}
			}
		})
	}
}

// BenchmarkAnswerPath measures the answer path with the answer cache
// (hits) and without it (every query takes the full path: decode, lookup,
// routing decision, pack), and the server's handling around it (metrics).
func BenchmarkAnswerPath(b *testing.B) {
	src := netip.MustParseAddrPort("192.0.2.9:5300")
	cases := []struct {
		name string
		q    *dns.Msg
	}{
		{"static A", query("c.example.test.", dns.TypeA, 1232)},
		{"service A with ECS", ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 24, 0, 203, 0, 113})},
		{"NXDOMAIN", query("nope.example.test.", dns.TypeA, 1232)},
	}
	for _, mode := range []struct {
		name  string
		extra string
	}{
		{"hit", ""},
		{"miss", "  cache_size: 0\n"},
	} {
		cfg := testConfig(b, nil, mode.extra)
		s, err := NewServer(cfg, engine(cfg), Deps{})
		if err != nil {
			b.Fatal(err)
		}
		for _, bc := range cases {
			req, err := bc.q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			b.Run(mode.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]byte, 0, 4096)
				for b.Loop() {
					if resp, _ := s.handle(buf, req, src, UDP, false); resp == nil {
						b.Fatal("no response")
					}
				}
			})
		}
	}
}
