package dnsserver

import (
	"github.com/gslb-dev/gslb/internal/config"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/routing"
)

const (
	soaRR    = "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 604800 60"
	negSOARR = "example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 604800 60"
	wwwA1    = "www.example.test. 30 IN A 192.0.2.1"
	wwwA2    = "www.example.test. 30 IN A 192.0.2.2"
	cA       = "c.example.test. 300 IN A 192.0.2.3"
	subNS1   = "sub.example.test. 300 IN NS ns.sub.example.test."
	subNS2   = "sub.example.test. 300 IN NS ns.elsewhere.test."
	subGlue  = "ns.sub.example.test. 300 IN A 192.0.2.54"
)

func TestLookup(t *testing.T) {
	cfg := testConfig(t, nil, "")
	zones, err := NewZones(cfg, engine(cfg))
	if err != nil {
		t.Fatal(err)
	}
	client := routing.Query{Client: mustAddr("198.51.100.7"), SourcePrefix: 32}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
		routed bool
	}{
		{name: "apex SOA", qname: "example.test.", qtype: dns.TypeSOA, aa: true, answer: []string{soaRR}},
		{name: "apex NS with glue", qname: "example.test.", qtype: dns.TypeNS, aa: true,
			answer: []string{"example.test. 300 IN NS ns1.example.test.", "example.test. 300 IN NS ns2.example.test."},
			extra:  []string{"ns1.example.test. 300 IN A 192.0.2.53", "ns1.example.test. 300 IN AAAA 2001:db8::53"}},
		{name: "static A", qname: "c.example.test.", qtype: dns.TypeA, aa: true, answer: []string{cA}},
		{name: "mixed case qname", qname: "C.Example.TEST.", qtype: dns.TypeA, aa: true, answer: []string{cA}},
		{name: "TXT", qname: "example.test.", qtype: dns.TypeTXT, aa: true, answer: []string{`example.test. 300 IN TXT "hello"`}},
		{name: "CAA", qname: "example.test.", qtype: dns.TypeCAA, aa: true, answer: []string{`example.test. 300 IN CAA 0 issue "letsencrypt.org"`}},
		{name: "MX with one additional per target", qname: "example.test.", qtype: dns.TypeMX, aa: true,
			answer: []string{"example.test. 300 IN MX 10 mail.example.test.", "example.test. 300 IN MX 20 MAIL.example.test."},
			extra:  []string{"mail.example.test. 300 IN A 192.0.2.25"}},
		{name: "SRV with additional", qname: "_https._tcp.example.test.", qtype: dns.TypeSRV, aa: true,
			answer: []string{"_https._tcp.example.test. 300 IN SRV 0 5 443 srv.example.test."},
			extra:  []string{"srv.example.test. 300 IN A 192.0.2.80"}},
		{name: "service A from the router", qname: "www.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{wwwA1, wwwA2}, routed: true},
		{name: "service AAAA from the router", qname: "www.example.test.", qtype: dns.TypeAAAA, aa: true,
			answer: []string{"www.example.test. 30 IN AAAA 2001:db8::1"}, routed: true},
		{name: "service other type is NODATA", qname: "www.example.test.", qtype: dns.TypeMX, aa: true, ns: []string{negSOARR}},
		{name: "service without the family is NODATA", qname: "six.example.test.", qtype: dns.TypeA, aa: true,
			ns: []string{negSOARR}, routed: true},
		{name: "service v6", qname: "six.example.test.", qtype: dns.TypeAAAA, aa: true,
			answer: []string{"six.example.test. 20 IN AAAA 2001:db8::2"}, routed: true},
		{name: "below a service is NXDOMAIN", qname: "x.www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{negSOARR}},
		{name: "service under an empty non-terminal", qname: "svc.deep.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"svc.deep.example.test. 30 IN A 192.0.2.1", "svc.deep.example.test. 30 IN A 192.0.2.2"}, routed: true},
		{name: "empty non-terminal above a service", qname: "deep.example.test.", qtype: dns.TypeA, aa: true, ns: []string{negSOARR}},
		{name: "CNAME to a service", qname: "shop.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test.", wwwA1, wwwA2}, routed: true},
		{name: "CNAME asked for itself is not chased", qname: "shop.example.test.", qtype: dns.TypeCNAME, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test."}},
		{name: "CNAME chain", qname: "a.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"a.example.test. 300 IN CNAME b.example.test.", "b.example.test. 300 IN CNAME c.example.test.", cA}},
		{name: "CNAME loop stops", qname: "loop1.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"loop1.example.test. 300 IN CNAME loop2.example.test.", "loop2.example.test. 300 IN CNAME loop1.example.test."}},
		{name: "CNAME out of zone", qname: "ext.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"ext.example.test. 300 IN CNAME www.example.org."}},
		{name: "CNAME to a missing name", qname: "dangling.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			answer: []string{"dangling.example.test. 300 IN CNAME nothere.example.test."}, ns: []string{negSOARR}},
		{name: "CNAME into a delegation", qname: "tolegacy.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"tolegacy.example.test. 300 IN CNAME host.sub.example.test."},
			ns:     []string{subNS1, subNS2}, extra: []string{subGlue}},
		{name: "NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{negSOARR}},
		{name: "NODATA", qname: "c.example.test.", qtype: dns.TypeAAAA, aa: true, ns: []string{negSOARR}},
		{name: "empty non-terminal", qname: "b.ent.example.test.", qtype: dns.TypeA, aa: true, ns: []string{negSOARR}},
		{name: "empty non-terminal two up", qname: "ent.example.test.", qtype: dns.TypeTXT, aa: true, ns: []string{negSOARR}},
		{name: "below an empty non-terminal", qname: "zz.ent.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{negSOARR}},
		{name: "wildcard", qname: "foo.wild.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"foo.wild.example.test. 300 IN A 192.0.2.99"}},
		{name: "wildcard owner is the query name", qname: "FOO.wild.example.test.", qtype: dns.TypeTXT, aa: true,
			answer: []string{`foo.wild.example.test. 300 IN TXT "wild"`}},
		{name: "wildcard several labels deep", qname: "a.b.wild.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"a.b.wild.example.test. 300 IN A 192.0.2.99"}},
		{name: "wildcard NODATA", qname: "foo.wild.example.test.", qtype: dns.TypeMX, aa: true, ns: []string{negSOARR}},
		{name: "existing name is not wildcarded", qname: "x.wild.example.test.", qtype: dns.TypeTXT, aa: true, ns: []string{negSOARR}},
		{name: "closest encloser without wildcard", qname: "y.x.wild.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{negSOARR}},
		{name: "wildcard parent is an empty non-terminal", qname: "wild.example.test.", qtype: dns.TypeA, aa: true, ns: []string{negSOARR}},
		{name: "literal wildcard name", qname: "*.wild.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"*.wild.example.test. 300 IN A 192.0.2.99"}},
		{name: "wildcard CNAME is chased", qname: "q.cn.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"q.cn.example.test. 300 IN CNAME c.example.test.", cA}},
		{name: "referral at the cut", qname: "sub.example.test.", qtype: dns.TypeA,
			ns: []string{subNS1, subNS2}, extra: []string{subGlue}},
		{name: "referral below the cut", qname: "host.sub.example.test.", qtype: dns.TypeAAAA,
			ns: []string{subNS1, subNS2}, extra: []string{subGlue}},
		{name: "referral for occluded glue name", qname: "ns.sub.example.test.", qtype: dns.TypeA,
			ns: []string{subNS1, subNS2}, extra: []string{subGlue}},
		{name: "referral for NS at the cut", qname: "sub.example.test.", qtype: dns.TypeNS,
			ns: []string{subNS1, subNS2}, extra: []string{subGlue}},
		{name: "DS at the cut is the parent's", qname: "sub.example.test.", qtype: dns.TypeDS, aa: true, ns: []string{negSOARR}},
		{name: "ANY is one RRset", qname: "example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"example.test. 300 IN NS ns1.example.test.", "example.test. 300 IN NS ns2.example.test."},
			extra:  []string{"ns1.example.test. 300 IN A 192.0.2.53", "ns1.example.test. 300 IN AAAA 2001:db8::53"}},
		{name: "ANY at a service", qname: "www.example.test.", qtype: dns.TypeANY, aa: true, answer: []string{wwwA1, wwwA2}, routed: true},
		{name: "ANY at a v6 service", qname: "six.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"six.example.test. 20 IN AAAA 2001:db8::2"}, routed: true},
		{name: "ANY at a CNAME", qname: "shop.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test."}},
		{name: "ANY at an empty non-terminal", qname: "ent.example.test.", qtype: dns.TypeANY, aa: true, ns: []string{negSOARR}},
		{name: "ANY NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, aa: true, ns: []string{negSOARR}},
		{name: "more specific zone wins", qname: "inner.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"inner.example.test. 300 IN A 192.0.2.200"}},
		{name: "more specific zone NXDOMAIN has its SOA", qname: "x.inner.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"inner.example.test. 60 IN SOA ns1.example.test. hostmaster.inner.example.test. 9 3600 600 604800 60"}},
		{name: "outside every zone", qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "parent of a zone", qname: "test.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
		{name: "root", qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := zones.Lookup(tt.qname, tt.qtype, client)
			if r.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if r.Authoritative != tt.aa {
				t.Errorf("AA = %v, want %v", r.Authoritative, tt.aa)
			}
			if r.Routed != tt.routed {
				t.Errorf("Routed = %v, want %v", r.Routed, tt.routed)
			}
			got, want := rrStrings(r.Answer), tt.answer
			if tt.routed {
				// The router's order is its own business.
				got, want = sorted(got), sorted(want)
			}
			same(t, "answer", got, want)
			same(t, "authority", rrStrings(r.Ns), tt.ns)
			same(t, "additional", rrStrings(r.Extra), tt.extra)
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func same(t *testing.T, section string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s:\n got  %q\n want %q", section, got, want)
	}
}

// TestLookupDoesNotShareMutableState checks that synthesized records do
// not leak into the zone data and that results are independent.
func TestLookupDoesNotShareMutableState(t *testing.T) {
	cfg := testConfig(t, nil, "")
	zones, err := NewZones(cfg, engine(cfg))
	if err != nil {
		t.Fatal(err)
	}
	first := zones.Lookup("one.wild.example.test.", dns.TypeA, routing.Query{})
	second := zones.Lookup("two.wild.example.test.", dns.TypeA, routing.Query{})
	if first.Answer[0].Header().Name != "one.wild.example.test." || second.Answer[0].Header().Name != "two.wild.example.test." {
		t.Fatalf("synthesized owners: %v %v", first.Answer, second.Answer)
	}
	lit := zones.Lookup("*.wild.example.test.", dns.TypeA, routing.Query{})
	if lit.Answer[0].Header().Name != "*.wild.example.test." {
		t.Fatalf("wildcard record modified: %v", lit.Answer)
	}
}

func TestLookupRoutingQuery(t *testing.T) {
	cfg := testConfig(t, nil, "")
	rr := &recordingRouter{Router: engine(cfg), scope: 20}
	zones, err := NewZones(cfg, rr)
	if err != nil {
		t.Fatal(err)
	}
	client := routing.Query{Client: mustAddr("203.0.113.0"), SourcePrefix: 24}
	r := zones.Lookup("www.example.test.", dns.TypeAAAA, client)
	q, n := rr.lastQuery()
	if n != 1 || q.Client != client.Client || q.SourcePrefix != 24 || q.QType != dns.TypeAAAA {
		t.Errorf("router got %+v (%d calls)", q, n)
	}
	if !r.Routed || r.Scope != 20 {
		t.Errorf("Routed=%v Scope=%d, want true 20", r.Routed, r.Scope)
	}
	if r := zones.Lookup("c.example.test.", dns.TypeA, client); r.Routed || r.Scope != 0 {
		t.Errorf("static answer Routed=%v Scope=%d", r.Routed, r.Scope)
	}
}

func TestNewZonesRejectsInconsistentData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records []string
	}{
		{"CNAME and other data", []string{"dup CNAME c", "dup TXT \"x\""}},
		{"two CNAMEs", []string{"two CNAME a", "two CNAME b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := withUncheckedRecords(t, tc.records)
			if _, err := NewZones(cfg, engine(cfg)); err == nil {
				t.Fatal("NewZones accepted the zone")
			}
		})
	}
}

// withUncheckedRecords returns the test config with records added to the
// first zone after validation (which now rejects inconsistent data
// itself), so that NewZones's own checks are exercised.
func withUncheckedRecords(t *testing.T, records []string) *config.Config {
	t.Helper()
	cfg := testConfig(t, nil, "")
	cfg.Zones[0].Records = append(cfg.Zones[0].Records, records...)
	return cfg
}
