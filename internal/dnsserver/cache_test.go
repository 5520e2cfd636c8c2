package dnsserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/geo/geotest"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// geoYAML is a config whose services use every policy, with a GeoIP
// database, CIDR maps and geo_map rules, so that decisions (and their
// ECS scopes) vary with the client.
const geoYAML = `
dns:
  listen: ["127.0.0.1:0"]
DNS_EXTRA
admin: {listen: "off"}
geo:
  cidr_maps:
    - {cidr: 198.51.100.0/24, region: east}
    - {cidr: 203.0.113.0/25, region: west}
regions:
  east: {latitude: 39.04, longitude: -77.49}
  west: {latitude: 37.35, longitude: -121.96}
  eu:   {latitude: 50.11, longitude: 8.68}
pools:
  web:
    check: {type: none}
    endpoints:
      - {name: east-1, region: east, address: 192.0.2.1}
      - {name: east-2, region: east, address: 192.0.2.2}
      - {name: east-3, region: east, address: 192.0.2.3, weight: 2}
      - {name: east-6, region: east, address: "2001:db8::1"}
      - {name: west-1, region: west, address: 192.0.2.11}
      - {name: west-6, region: west, address: "2001:db8::11"}
      - {name: eu-1, region: eu, address: 192.0.2.21}
      - {name: eu-6, region: eu, address: "2001:db8::21"}
services:
  geo:
    name: geo.gslb.test
    pool: web
    policy: geo
    regions: [east, west, eu]
    geo_map:
      - {cidr: 10.1.0.0/16, regions: [west]}
      - {country: GB, regions: [eu]}
  wt:
    name: wt.gslb.test
    pool: web
    policy: weighted
    regions: [east, west, eu]
    weights: {east: 50, west: 30, eu: 20}
  maxrec:
    name: maxrec.gslb.test
    pool: web
    policy: geo
    regions: [east, west]
    max_records: 1
  fo:
    name: fo.gslb.test
    pool: web
    policy: failover
    regions: [west, east]
  all:
    name: all.gslb.test
    pool: web
    policy: all
zones:
  - name: gslb.test
    ns: [ns1]
    soa: {serial: 1}
    records:
      - "ns1 A 192.0.2.53"
      - "alias CNAME geo"
      - "*.wild CNAME wt"
      - "static A 192.0.2.80"
`

// cacheHealth is a health.Source whose snapshot tests replace.
type cacheHealth struct {
	p atomic.Pointer[health.Snapshot]
}

func (s *cacheHealth) Snapshot() *health.Snapshot { return s.p.Load() }

// countingRouter counts decisions; it keeps the engine's SnapshotVersion
// (by embedding it), so routed answers are cached.
type countingRouter struct {
	*routing.Engine
	n atomic.Int64
}

func (r *countingRouter) Decide(id string, q routing.Query) routing.Decision {
	r.n.Add(1)
	return r.Engine.Decide(id, q)
}

// geoSetup builds the geo config with a real GeoIP database, its health
// source and a counting router over the engine.
func geoSetup(t testing.TB, dnsExtra string) (*config.Config, *cacheHealth, *countingRouter) {
	t.Helper()
	cfg, err := config.Parse("geo.yaml", []byte(strings.Replace(geoYAML, "DNS_EXTRA\n", dnsExtra, 1)))
	if err != nil {
		t.Fatalf("parse geo config: %v", err)
	}
	gc := cfg.Geo
	gc.Schema = geotest.SchemaGeoIP2
	gc.Database = geotest.WriteFile(t, "", gc.Schema, geotest.All())
	loc, err := geo.New(gc, cfg.Regions, geo.Deps{})
	if err != nil {
		t.Fatalf("geo.New: %v", err)
	}
	src := &cacheHealth{}
	snap := health.AllHealthy(cfg, time.Unix(0, 0))
	snap.Version = 1
	src.p.Store(snap)
	return cfg, src, &countingRouter{Engine: routing.New(cfg, src, loc)}
}

// cacheHandlers returns a handler with the answer cache and one without.
func cacheHandlers(t testing.TB, cfg *config.Config, router Router) (cached, uncached *Handler) {
	t.Helper()
	hc, err := NewHandler(cfg, router)
	if err != nil {
		t.Fatal(err)
	}
	if hc.cache == nil {
		t.Fatal("the default config has no answer cache")
	}
	hu, err := NewHandler(cfg, router)
	if err != nil {
		t.Fatal(err)
	}
	hu.cache = nil
	return hc, hu
}

// cacheRandomClient returns a client address in one of the networks the geo
// config treats specially, or anywhere.
func cacheRandomClient(r *rand.Rand) netip.Addr {
	v4 := func(a, b byte) netip.Addr {
		return netip.AddrFrom4([4]byte{a, b, byte(r.IntN(256)), byte(r.IntN(256))})
	}
	switch r.IntN(12) {
	case 0:
		return v4(3, byte(80+r.IntN(16)))
	case 1:
		return v4(13, 56)
	case 2:
		return netip.AddrFrom4([4]byte{81, 2, 69, byte(r.IntN(256))})
	case 3:
		return v4(10, 1)
	case 4:
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(256))})
	case 5:
		return netip.AddrFrom4([4]byte{203, 0, 113, byte(r.IntN(256))})
	case 6:
		a := netip.MustParseAddr("2600:1f18::").As16()
		a[5], a[7], a[15] = byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))
		return netip.AddrFrom16(a)
	case 7:
		a := netip.MustParseAddr("2600:1f1c::").As16()
		a[6], a[14] = byte(r.IntN(256)), byte(r.IntN(256))
		return netip.AddrFrom16(a)
	case 8:
		var a [16]byte
		for i := range a {
			a[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom16(a)
	case 9:
		return v4(0, 0) // 0.0.x.x: near the unspecified address
	}
	return v4(byte(1+r.IntN(223)), byte(r.IntN(256)))
}

// cacheECSData returns ECS option data for client at prefix bits.
func cacheECSData(client netip.Addr, bits int) []byte {
	fam := uint16(ecsFamilyIPv6)
	if client.Is4() {
		fam = ecsFamilyIPv4
	}
	p, _ := client.Prefix(bits)
	a := p.Addr().AsSlice()
	d := binary.BigEndian.AppendUint16(nil, fam)
	d = append(d, byte(bits), 0)
	return append(d, a[:(bits+7)/8]...)
}

// cacheRandomQuery builds a varied query: names, types, case, EDNS sizes, the
// DO bit, ECS (both families, many prefixes, /0) and other options.
func cacheRandomQuery(r *rand.Rand, names []string) (req []byte, src netip.AddrPort) {
	name := names[r.IntN(len(names))]
	if r.IntN(3) == 0 { // 0x20-style mixed case
		b := []byte(name)
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = strings.ToUpper(string(b[i]))[0]
			}
		}
		name = string(b)
	}
	types := []uint16{dns.TypeA, dns.TypeA, dns.TypeAAAA, dns.TypeAAAA, dns.TypeANY, dns.TypeTXT,
		dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeCNAME, dns.TypeSRV, dns.TypeAXFR, dns.TypeOPT}
	m := new(dns.Msg)
	m.SetQuestion(name, types[r.IntN(len(types))])
	m.Id = uint16(r.IntN(65536))
	m.RecursionDesired = r.IntN(2) == 0
	m.CheckingDisabled = r.IntN(5) == 0
	if r.IntN(20) == 0 {
		m.Question[0].Qclass = dns.ClassCHAOS
	}
	client := cacheRandomClient(r)
	if r.IntN(5) != 0 {
		sizes := []uint16{0, 512, 600, 1232, 4096, 65535}
		m.SetEdns0(sizes[r.IntN(len(sizes))], r.IntN(3) == 0)
		opt := m.IsEdns0()
		if r.IntN(4) != 0 {
			bits := r.IntN(client.BitLen() + 1)
			if r.IntN(3) == 0 {
				bits = min(24, client.BitLen())
			}
			opt.Option = append(opt.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: cacheECSData(client, bits)})
		}
		if r.IntN(5) == 0 {
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		}
	}
	req, err := m.Pack()
	if err != nil {
		panic(err)
	}
	port := uint16(1024 + r.IntN(60000))
	return req, netip.AddrPortFrom(cacheRandomClient(r), port)
}

var geoNames = []string{"geo.gslb.test.", "wt.gslb.test.", "maxrec.gslb.test.", "fo.gslb.test.",
	"all.gslb.test.", "alias.gslb.test.", "x.wild.gslb.test.", "static.gslb.test.", "gslb.test.",
	"nope.gslb.test.", "ns1.gslb.test.", "elsewhere.test."}

// TestCacheDifferential checks that the cached path returns exactly the
// bytes of the uncached path for a varied query set, over UDP and TCP,
// while health changes, and that it really answers from the cache.
func TestCacheDifferential(t *testing.T) {
	cfg, src, router := geoSetup(t, "")
	hc, hu := cacheHandlers(t, cfg, router)
	r := rand.New(rand.NewPCG(7, 9))
	bufC, bufU := make([]byte, 0, 4096), make([]byte, 0, 4096)
	const n = 6000
	for i := range n {
		if i == n/2 {
			// Health changes: cached routed answers must not outlive it.
			s := health.AllHealthy(cfg, time.Unix(0, 0))
			s.Version = 2
			for _, ep := range []string{"east-1", "east-2", "east-3", "east-6"} {
				k := health.EndpointKey{Pool: "web", Endpoint: ep}
				st := s.Endpoints[k]
				st.Healthy = false
				s.Endpoints[k] = st
			}
			src.p.Store(s)
		}
		req, from := cacheRandomQuery(r, geoNames)
		tr := UDP
		if r.IntN(4) == 0 {
			tr = TCP
		}
		got, gotOut := hc.Respond(bufC, req, from, tr)
		want, wantOut := hu.Respond(bufU, req, from, tr)
		if !bytes.Equal(got, want) || gotOut != wantOut {
			var mg, mw dns.Msg
			_ = mg.Unpack(got)
			_ = mw.Unpack(want)
			var mq dns.Msg
			_ = mq.Unpack(req)
			t.Fatalf("query %d from %v over %v:\n%v\ncached (%+v):\n% x\n%v\nuncached (%+v):\n% x\n%v",
				i, from, tr, &mq, gotOut, got, &mg, wantOut, want, &mw)
		}
		if tr == UDP {
			var m dns.Msg
			if err := m.Unpack(want); err == nil && !m.Truncated {
				limit := hc.sizeLimit(UDP, unpacked(req).IsEdns0() != nil, udpSizeOf(req), len(req))
				if len(want) > limit {
					t.Fatalf("query %d: %d-byte UDP answer over the client's %d without TC", i, len(want), limit)
				}
			}
		}
	}

	// Replayed questions are answered from the cache, without deciding.
	type sent struct {
		req  []byte
		from netip.AddrPort
	}
	var replay []sent
	for range 200 {
		req, from := cacheRandomQuery(r, []string{"geo.gslb.test.", "wt.gslb.test.", "maxrec.gslb.test."})
		replay = append(replay, sent{req, from})
	}
	count := func(h *Handler, buf []byte) int64 {
		before := router.n.Load()
		for _, q := range replay {
			h.Respond(buf, q.req, q.from, UDP)
		}
		return router.n.Load() - before
	}
	count(hc, bufC)
	if cached, uncached := count(hc, bufC), count(hu, bufU); cached*4 > uncached {
		t.Errorf("replaying 200 routed queries: %d decisions with the cache, %d without", cached, uncached)
	}
}

// TestCacheSharesScope checks that a routed answer is reused for another
// client of the same network at the decision's scope, and not beyond it.
func TestCacheSharesScope(t *testing.T) {
	cfg, _, router := geoSetup(t, "")
	h, err := NewHandler(cfg, router)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.9:5300")
	ask := func(client string, bits int) (scope uint8, decided int64) {
		req, _ := ecsQuery("geo.gslb.test.", dns.TypeA, cacheECSData(mustAddr(client), bits)).Pack()
		before := router.n.Load()
		resp, _ := h.Respond(nil, req, from, UDP)
		return replySubnet(t, unpacked(resp)).SourceScope, router.n.Load() - before
	}
	// 3.80.0.0/12 is one GeoIP network: the scope is 12.
	if scope, n := ask("3.80.1.0", 24); scope != 12 || n != 1 {
		t.Fatalf("first client: scope %d, %d decisions", scope, n)
	}
	if scope, n := ask("3.91.200.0", 24); scope != 12 || n != 0 {
		t.Fatalf("client in the same /12: scope %d, %d decisions (want a cache hit)", scope, n)
	}
	if _, n := ask("3.96.0.0", 24); n != 1 {
		t.Fatalf("client outside the /12 answered from the cache")
	}
	// The weighted policy hashes the /24 (dns.ecs.max_scope_v4).
	req := func(c string) []byte {
		b, _ := ecsQuery("wt.gslb.test.", dns.TypeA, cacheECSData(mustAddr(c), 32)).Pack()
		return b
	}
	before := router.n.Load()
	a1, _ := h.Respond(nil, req("100.64.1.1"), from, UDP)
	a2, _ := h.Respond(nil, req("100.64.1.77"), from, UDP)
	if n := router.n.Load() - before; n != 1 || fmt.Sprint(rrStrings(unpacked(a1).Answer)) != fmt.Sprint(rrStrings(unpacked(a2).Answer)) {
		t.Fatalf("weighted: two clients of one /24 took %d decisions", n)
	}
}

func unpacked(req []byte) *dns.Msg {
	var m dns.Msg
	_ = m.Unpack(req)
	return &m
}

func udpSizeOf(req []byte) uint16 {
	if o := unpacked(req).IsEdns0(); o != nil {
		return o.UDPSize()
	}
	return 0
}

// TestCacheDifferentialStatic runs the test zone (CNAME chains, wildcards,
// referrals, big answers that truncate) through both paths, every query
// twice so that the second is a hit.
func TestCacheDifferentialStatic(t *testing.T) {
	cfg := testConfig(t, bigTXT(20), "")
	hc, hu := cacheHandlers(t, cfg, engine(cfg))
	names := []string{"www.example.test.", "six.example.test.", "svc.deep.example.test.", "example.test.",
		"ns1.example.test.", "shop.example.test.", "a.example.test.", "loop1.example.test.",
		"ext.example.test.", "dangling.example.test.", "_https._tcp.example.test.", "foo.wild.example.test.",
		"x.wild.example.test.", "q.cn.example.test.", "b.ent.example.test.", "ent.example.test.",
		"host.sub.example.test.", "sub.example.test.", "tolegacy.example.test.", "inner.example.test.",
		"big.example.test.", "nope.example.test.", "example.org.", "."}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4000 {
		req, from := cacheRandomQuery(r, names)
		tr := UDP
		if i%5 == 0 {
			tr = TCP
		}
		for pass := range 2 {
			got, gotOut := hc.Respond(nil, req, from, tr)
			want, wantOut := hu.Respond(nil, req, from, tr)
			if !bytes.Equal(got, want) || gotOut != wantOut {
				t.Fatalf("query %d pass %d (%v over %v): cached and uncached differ:\n%v\n%v", i, pass, unpacked(req).Question, tr, unpacked(got), unpacked(want))
			}
		}
	}
}

// TestCacheHitAllocatesNothing checks the 0-allocation claim of the hit
// path, including the server's metrics.
func TestCacheHitAllocatesNothing(t *testing.T) {
	cfg, _, router := geoSetup(t, "")
	s, err := NewServer(cfg, router, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.9:5300")
	for _, q := range []*dns.Msg{
		query("static.gslb.test.", dns.TypeA, 1232),
		query("STATIC.gslb.test.", dns.TypeA, 0),
		query("nope.gslb.test.", dns.TypeAAAA, 1232),
		ecsQuery("geo.gslb.test.", dns.TypeA, cacheECSData(mustAddr("3.80.1.0"), 24)),
		ecsQuery("wt.gslb.test.", dns.TypeAAAA, cacheECSData(mustAddr("2600:1f18::"), 56)),
		query("geo.gslb.test.", dns.TypeA, 1232),
	} {
		req, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		s.handle(buf, req, src, UDP, false) // miss: fills the cache
		n0 := router.n.Load()
		if allocs := testing.AllocsPerRun(200, func() { s.handle(buf, req, src, UDP, false) }); allocs != 0 {
			t.Errorf("%v: %.1f allocations per cache hit", q.Question[0], allocs)
		}
		if router.n.Load() != n0 {
			t.Errorf("%v: hits made routing decisions", q.Question[0])
		}
	}
}

// TestCacheFollowsHealth checks that a cached routed answer is replaced
// once the health snapshot changes.
func TestCacheFollowsHealth(t *testing.T) {
	cfg, src, router := geoSetup(t, "")
	h, err := NewHandler(cfg, router)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := query("fo.gslb.test.", dns.TypeA, 1232).Pack()
	from := netip.MustParseAddrPort("192.0.2.9:5300")
	answer := func() []string {
		resp, _ := h.Respond(nil, req, from, UDP)
		return rrStrings(unpacked(resp).Answer)
	}
	if got := fmt.Sprint(answer(), answer()); !strings.Contains(got, "192.0.2.11") {
		t.Fatalf("failover answers west first: %v", got)
	}
	s := health.AllHealthy(cfg, time.Unix(0, 0))
	s.Version = 5
	k := health.EndpointKey{Pool: "web", Endpoint: "west-1"}
	st := s.Endpoints[k]
	st.Healthy = false
	s.Endpoints[k] = st
	src.p.Store(s)
	if got := fmt.Sprint(answer()); strings.Contains(got, "192.0.2.11") || !strings.Contains(got, "192.0.2.1") {
		t.Fatalf("after west-1 went down the cached answer stayed: %v", got)
	}
}

// TestParseQueryAgreesWithUnpack checks the hand parser against
// dns.Msg.Unpack on a varied query set.
func TestParseQueryAgreesWithUnpack(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	accepted := 0
	for range 3000 {
		req, _ := cacheRandomQuery(r, geoNames)
		q, ok := parseQuery(req)
		var m dns.Msg
		if err := m.Unpack(req); err != nil {
			if ok {
				t.Fatalf("parseQuery accepted what Unpack rejects (%v): % x", err, req)
			}
			continue
		}
		if !ok {
			if len(m.Extra) <= 1 && !hasOtherOption(&m) {
				t.Fatalf("parseQuery rejected a plain query: %v", &m)
			}
			continue
		}
		accepted++
		checkParsed(t, req, q, &m)
	}
	if accepted < 2000 {
		t.Fatalf("parseQuery accepted only %d of 3000 common queries", accepted)
	}
}

func hasOtherOption(m *dns.Msg) bool {
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			switch e.Option() {
			case dns.EDNS0SUBNET, dns.EDNS0COOKIE, dns.EDNS0NSID, dns.EDNS0PADDING:
			default:
				return true
			}
		}
	}
	return false
}

// checkParsed compares what parseQuery read with the decoded message.
func checkParsed(t *testing.T, req []byte, q wireQuery, m *dns.Msg) {
	t.Helper()
	if len(m.Question) != 1 {
		t.Fatalf("parseQuery accepted %d questions", len(m.Question))
	}
	mq := m.Question[0]
	if got := string(appendLowerName(nil, q.name(req))); !strings.EqualFold(wireToString(q.name(req)), mq.Name) || got != string(appendLowerName(nil, q.name(req))) {
		t.Fatalf("name %q vs %q", wireToString(q.name(req)), mq.Name)
	}
	if q.qtype != mq.Qtype || q.qclass != mq.Qclass || q.flags&(flagRD|flagCD) != binary.BigEndian.Uint16(req[2:])&(flagRD|flagCD) {
		t.Fatalf("question %v vs parsed %+v", mq, q)
	}
	opt := m.IsEdns0()
	if q.hasOPT != (opt != nil) || len(m.Answer)+len(m.Ns) != 0 {
		t.Fatalf("OPT %v vs hasOPT %v", opt, q.hasOPT)
	}
	if opt != nil {
		if q.do != opt.Do() || q.udpSize != opt.UDPSize() || opt.Version() != 0 {
			t.Fatalf("OPT %v vs parsed %+v", opt, q)
		}
		found := false
		for _, o := range opt.Option {
			if s, ok := o.(*dns.EDNS0_SUBNET); ok {
				found = true
				if q.ecs == nil || binary.BigEndian.Uint16(q.ecs) != s.Family || q.ecs[2] != s.SourceNetmask {
					t.Fatalf("ECS %v vs parsed % x", s, q.ecs)
				}
			}
		}
		if found != (q.ecs != nil) {
			t.Fatalf("ECS found %v, parsed % x", found, q.ecs)
		}
	}
}

// wireToString renders a wire name as dns.Msg does (enough for the test
// names: letters, digits, hyphens, underscores, asterisks).
func wireToString(name []byte) string {
	var b strings.Builder
	for off := 0; off < len(name) && name[off] != 0; off += 1 + int(name[off]) {
		b.Write(name[off+1 : off+1+int(name[off])])
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}

// TestAppendECSMatchesMiekg checks the hand-packed ECS option against the
// option dns.Msg packs.
func TestAppendECSMatchesMiekg(t *testing.T) {
	for _, c := range []struct {
		addr  string
		bits  int
		scope int
	}{{"203.0.113.0", 24, 24}, {"203.0.113.0", 23, 0}, {"0.0.0.0", 0, 0}, {"10.1.2.3", 32, 16}, {"2001:db8:1::", 48, 56}, {"2001:db8::", 0, 0}} {
		a := mustAddr(c.addr)
		data := cacheECSData(a, c.bits)
		cs, err := ParseClientSubnet(data)
		if err != nil {
			t.Fatal(err)
		}
		m := query("x.test.", dns.TypeA, 1232)
		m.Response = true
		base, _ := m.Pack()
		m.IsEdns0().Option = append(m.IsEdns0().Option, cs.responseOption(c.scope))
		want, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if got := appendECS(bytes.Clone(base), data, c.scope); !bytes.Equal(got, want) {
			t.Errorf("%s/%d scope %d:\n got % x\nwant % x", c.addr, c.bits, c.scope, got, want)
		}
	}
}

// FuzzParseQuery checks that parseQuery accepts nothing dns.Msg.Unpack
// rejects, and reads what it accepts the same way.
func FuzzParseQuery(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 30 {
		req, _ := cacheRandomQuery(r, geoNames)
		f.Add(req)
	}
	f.Add(cat(rawHeader(1, 0, 1, 0, 0, 0), rawQuestion))
	f.Fuzz(func(t *testing.T, req []byte) {
		q, ok := parseQuery(req)
		if !ok {
			return
		}
		var m dns.Msg
		if err := m.Unpack(req); err != nil {
			t.Fatalf("parseQuery accepted what Unpack rejects: %v", err)
		}
		if len(m.Question) == 1 && strings.ContainsAny(m.Question[0].Name, `\`) {
			return // escaped names: compared by the differential fuzz target
		}
		checkParsed(t, req, q, &m)
	})
}

// FuzzCacheDifferential sends arbitrary messages (from seeds of every
// shape) to a handler with the answer cache, twice, and to one without:
// the responses must be byte-identical.
func FuzzCacheDifferential(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 40 {
		req, _ := cacheRandomQuery(r, geoNames)
		f.Add(req, uint8(r.IntN(256)), false)
	}
	f.Add(cat(rawHeader(1, 0, 1, 0, 0, 0), rawQuestion), uint8(0), true)
	cfg, _, router := geoSetup(f, "")
	hc, hu := cacheHandlers(f, cfg, router)
	f.Fuzz(func(t *testing.T, req []byte, who uint8, overTCP bool) {
		tr := UDP
		if overTCP {
			tr = TCP
		}
		from := netip.AddrPortFrom(cacheRandomClient(rand.New(rand.NewPCG(uint64(who), 0))), 5353)
		want, wantOut := hu.Respond(nil, req, from, tr)
		for range 2 {
			got, gotOut := hc.Respond(nil, req, from, tr)
			if !bytes.Equal(got, want) || gotOut != wantOut {
				t.Fatalf("cached and uncached differ:\n% x\n% x", got, want)
			}
		}
	})
}

// TestValidSubnetAgreesWithParse checks the allocation-free ECS check
// against ParseClientSubnet.
func TestValidSubnetAgreesWithParse(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for range 20000 {
		d := make([]byte, r.IntN(22))
		for i := range d {
			d[i] = byte(r.IntN(256))
		}
		if len(d) >= 4 {
			d[0], d[1], d[3] = 0, byte(r.IntN(4)), byte(r.IntN(2))
			d[2] = byte(r.IntN(140))
			if r.IntN(2) == 0 {
				d = d[:4+min((int(d[2])+7)/8, len(d)-4)]
			}
		}
		_, err := ParseClientSubnet(d)
		if validSubnet(d) != (err == nil) {
			t.Fatalf("% x: validSubnet %v, ParseClientSubnet %v", d, validSubnet(d), err)
		}
	}
}
