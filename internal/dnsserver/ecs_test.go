package dnsserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestParseClientSubnet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   []byte
		want   netip.Prefix
		family uint16
		ok     bool
	}{
		{name: "v4 /24", data: []byte{0, 1, 24, 0, 203, 0, 113}, want: netip.MustParsePrefix("203.0.113.0/24"), family: 1, ok: true},
		{name: "v4 /23 last bit clear", data: []byte{0, 1, 23, 0, 203, 0, 112}, want: netip.MustParsePrefix("203.0.112.0/23"), family: 1, ok: true},
		{name: "v4 /32", data: []byte{0, 1, 32, 0, 192, 0, 2, 1}, want: netip.MustParsePrefix("192.0.2.1/32"), family: 1, ok: true},
		{name: "v4 /0", data: []byte{0, 1, 0, 0}, want: netip.MustParsePrefix("0.0.0.0/0"), family: 1, ok: true},
		{name: "v6 /56", data: []byte{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0}, want: netip.MustParsePrefix("2001:db8:1::/56"), family: 2, ok: true},
		{name: "v6 /0", data: []byte{0, 2, 0, 0}, want: netip.MustParsePrefix("::/0"), family: 2, ok: true},
		{name: "too short", data: []byte{0, 1, 24}},
		{name: "family 0", data: []byte{0, 0, 0, 0}},
		{name: "family 3", data: []byte{0, 3, 8, 0, 10}},
		{name: "v4 prefix 33", data: []byte{0, 1, 33, 0, 1, 2, 3, 4, 5}},
		{name: "v6 prefix 129", data: append([]byte{0, 2, 129, 0}, make([]byte, 17)...)},
		{name: "scope in a query", data: []byte{0, 1, 24, 24, 203, 0, 113}},
		{name: "bits beyond the prefix", data: []byte{0, 1, 23, 0, 203, 0, 113}},
		{name: "host bits in a /24 sent as 4 bytes", data: []byte{0, 1, 24, 0, 203, 0, 113, 9}},
		{name: "too many address bytes", data: []byte{0, 1, 24, 0, 203, 0, 113, 0}},
		{name: "too few address bytes", data: []byte{0, 1, 24, 0, 203, 0}},
		{name: "address bytes with /0", data: []byte{0, 1, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := ParseClientSubnet(tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (cs.Prefix() != tc.want || cs.Family != tc.family) {
				t.Errorf("got %v family %d, want %v family %d", cs.Prefix(), cs.Family, tc.want, tc.family)
			}
		})
	}
}

func TestFindSubnetOption(t *testing.T) {
	q := query("www.example.test.", dns.TypeA, 1232)
	q.IsEdns0().Option = append(q.IsEdns0().Option,
		&dns.EDNS0_LOCAL{Code: 10, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 24, 0, 203, 0, 113}})
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	data, found, err := findSubnetOption(b)
	if err != nil || !found || string(data) != string([]byte{0, 1, 24, 0, 203, 0, 113}) {
		t.Fatalf("findSubnetOption = % x %v %v", data, found, err)
	}
	for i := range b {
		// Every prefix of the message is walked without panicking.
		_, _, _ = findSubnetOption(b[:i])
	}

	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 0, 0}})
	b, _ = q.Pack()
	if _, _, err := findSubnetOption(b); err == nil {
		t.Error("two ECS options accepted")
	}
}

// ecsQuery builds a query carrying an ECS option with raw data.
func ecsQuery(name string, qtype uint16, data []byte) *dns.Msg {
	q := query(name, qtype, 1232)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: data})
	return q
}

func replySubnet(t *testing.T, r *dns.Msg) *dns.EDNS0_SUBNET {
	t.Helper()
	opt := r.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if s, ok := o.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

func TestECSOverUDP(t *testing.T) {
	cfg := testConfig(t, nil, "")
	rr := &recordingRouter{Router: engine(cfg), scope: 30}
	srv := startServer(t, cfg, rr)
	v4 := []byte{0, 1, 24, 0, 203, 0, 113}

	t.Run("echo and capped scope", func(t *testing.T) {
		r := exchange(t, "udp", srv.addr, ecsQuery("www.example.test.", dns.TypeA, v4))
		s := replySubnet(t, r)
		if s == nil {
			t.Fatalf("no ECS in reply: %v", r)
		}
		if s.Family != 1 || s.SourceNetmask != 24 || !s.Address.Equal(net.ParseIP("203.0.113.0")) {
			t.Errorf("echo: %v", s)
		}
		if s.SourceScope != uint8(cfg.DNS.ECS.MaxScopeV4) {
			t.Errorf("scope %d, want the cap %d (decision said 30)", s.SourceScope, cfg.DNS.ECS.MaxScopeV4)
		}
		q, _ := rr.lastQuery()
		if q.Client != mustAddr("203.0.113.0") || q.SourcePrefix != 24 {
			t.Errorf("router got %+v, want the ECS subnet", q)
		}
	})

	t.Run("scope below the cap", func(t *testing.T) {
		rr2 := &recordingRouter{Router: engine(cfg), scope: 16}
		srv2 := startServer(t, cfg, rr2)
		r := exchange(t, "udp", srv2.addr, ecsQuery("www.example.test.", dns.TypeA, v4))
		if s := replySubnet(t, r); s == nil || s.SourceScope != 16 {
			t.Errorf("ECS %v, want scope 16", s)
		}
	})

	t.Run("v6 echo with v6 cap", func(t *testing.T) {
		r := exchange(t, "udp", srv.addr, ecsQuery("www.example.test.", dns.TypeAAAA, []byte{0, 2, 64, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1}))
		s := replySubnet(t, r)
		if s == nil || s.Family != 2 || s.SourceNetmask != 64 || s.SourceScope != 30 {
			t.Errorf("ECS %v, want 2001:db8:0:1::/64 scope 30", s)
		}
	})

	for _, tc := range []struct{ name, qname string }{
		{"static answer has scope 0", "c.example.test."},
		{"NXDOMAIN has scope 0", "nope.example.test."},
		{"refused has scope 0", "example.org."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, "udp", srv.addr, ecsQuery(tc.qname, dns.TypeA, v4))
			if s := replySubnet(t, r); s == nil || s.SourceScope != 0 || s.SourceNetmask != 24 {
				t.Errorf("ECS %v, want echo with scope 0", s)
			}
		})
	}

	t.Run("source prefix 0: no address used", func(t *testing.T) {
		r := exchange(t, "udp", srv.addr, ecsQuery("www.example.test.", dns.TypeA, []byte{0, 1, 0, 0}))
		if s := replySubnet(t, r); s == nil || s.SourceScope != 0 || s.SourceNetmask != 0 {
			t.Errorf("ECS %v, want /0 scope 0", s)
		}
		if q, _ := rr.lastQuery(); q.Client.IsValid() || q.SourcePrefix != 0 {
			t.Errorf("router got %+v, want no client address", q)
		}
		if len(r.Answer) != 2 {
			t.Errorf("answer %v", r.Answer)
		}
	})

	t.Run("no ECS: the source address", func(t *testing.T) {
		r := exchange(t, "udp", srv.addr, query("www.example.test.", dns.TypeA, 1232))
		if s := replySubnet(t, r); s != nil {
			t.Errorf("ECS %v in reply to a query without", s)
		}
		if q, _ := rr.lastQuery(); q.Client != mustAddr("127.0.0.1") || q.SourcePrefix != 32 {
			t.Errorf("router got %+v, want 127.0.0.1/32", q)
		}
	})

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"source prefix longer than the family", []byte{0, 1, 33, 0, 1, 2, 3, 4, 5}},
		{"non-zero bits beyond the prefix", []byte{0, 1, 23, 0, 203, 0, 113}},
		{"address longer than the prefix", []byte{0, 1, 24, 0, 203, 0, 113, 0}},
		{"scope in the query", []byte{0, 1, 24, 8, 203, 0, 113}},
		{"unknown family", []byte{0, 3, 8, 0, 10}},
	} {
		t.Run("FORMERR "+tc.name, func(t *testing.T) {
			_, before := rr.lastQuery()
			r := exchange(t, "udp", srv.addr, ecsQuery("www.example.test.", dns.TypeA, tc.data))
			if r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 || r.Authoritative {
				t.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if s := replySubnet(t, r); s != nil {
				t.Errorf("malformed ECS echoed: %v", s)
			}
			if _, after := rr.lastQuery(); after != before {
				t.Error("router consulted for a malformed query")
			}
		})
	}
}

func TestECSPolicy(t *testing.T) {
	v4 := []byte{0, 1, 24, 0, 203, 0, 113}
	for _, tc := range []struct {
		name, dnsExtra string
		honoured       bool
	}{
		{"disabled", "  ecs: {enabled: false}\n", false},
		{"untrusted source", "  ecs: {trusted_resolvers: [192.0.2.0/24, \"2001:db8::/32\"]}\n", false},
		{"trusted source", "  ecs: {trusted_resolvers: [127.0.0.0/8]}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, nil, tc.dnsExtra)
			rr := &recordingRouter{Router: engine(cfg), scope: 24}
			srv := startServer(t, cfg, rr)
			r := exchange(t, "udp", srv.addr, ecsQuery("www.example.test.", dns.TypeA, v4))
			s := replySubnet(t, r)
			q, _ := rr.lastQuery()
			if tc.honoured {
				if s == nil || s.SourceScope != 24 || q.Client != mustAddr("203.0.113.0") {
					t.Errorf("ECS %v, router got %+v: want honoured", s, q)
				}
			} else {
				if s != nil || q.Client != mustAddr("127.0.0.1") {
					t.Errorf("ECS %v, router got %+v: want ignored", s, q)
				}
			}
		})
	}
}
