package rrl

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, cfg config.RRLConfig) (*Limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	if cfg.IPv4PrefixLength == 0 {
		cfg.IPv4PrefixLength = 24
	}
	if cfg.IPv6PrefixLength == 0 {
		cfg.IPv6PrefixLength = 56
	}
	l := New(cfg, Deps{Now: clk.Now})
	if l == nil {
		t.Fatal("New returned nil for an enabled config")
	}
	return l, clk
}

// count checks n responses and tallies the actions.
func count(l *Limiter, client string, class Class, n int) map[Action]int {
	got := map[Action]int{}
	a := netip.MustParseAddr(client)
	for range n {
		got[l.Check(a, class)]++
	}
	return got
}

func TestBurstIsLimitedWithSlip(t *testing.T) {
	l, _ := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 10, ErrorsPerSecond: 5, Slip: 2})
	got := count(l, "198.51.100.7", Response, 30)
	// 10 allowed (one second's worth), then 20 limited: every 2nd slips.
	if got[Allow] != 10 || got[Slip] != 10 || got[Drop] != 10 {
		t.Fatalf("burst of 30 at 10/s, slip 2: %v, want 10 allowed, 10 slipped, 10 dropped", got)
	}
	// The same /24, another address: the same bucket, still empty.
	if a := l.Check(netip.MustParseAddr("198.51.100.200"), Response); a == Allow {
		t.Fatalf("another address of the limited /24 was allowed")
	}
	// Another /24 is unaffected.
	if got := count(l, "198.51.101.7", Response, 10); got[Allow] != 10 {
		t.Fatalf("another /24: %v, want 10 allowed", got)
	}
}

func TestRefillsAtTheRate(t *testing.T) {
	l, clk := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 10, Slip: 1})
	if got := count(l, "192.0.2.1", Response, 10); got[Allow] != 10 {
		t.Fatalf("first burst: %v", got)
	}
	if a := l.Check(netip.MustParseAddr("192.0.2.1"), Response); a != Slip {
		t.Fatalf("11th response: %v, want slip (slip 1 truncates all)", a)
	}
	clk.Advance(300 * time.Millisecond) // 3 tokens
	if got := count(l, "192.0.2.1", Response, 5); got[Allow] != 3 || got[Slip] != 2 {
		t.Fatalf("after 300ms at 10/s: %v, want 3 allowed, 2 slipped", got)
	}
	clk.Advance(10 * time.Second) // full again, never more than a second's worth
	if got := count(l, "192.0.2.1", Response, 12); got[Allow] != 10 {
		t.Fatalf("after a long pause: %v, want 10 allowed", got)
	}
}

func TestErrorsHaveTheirOwnBudget(t *testing.T) {
	l, _ := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 10, ErrorsPerSecond: 3, Slip: 0})
	if got := count(l, "203.0.113.9", Error, 5); got[Allow] != 3 || got[Drop] != 2 {
		t.Fatalf("errors: %v, want 3 allowed, 2 dropped (slip 0 drops all)", got)
	}
	if got := count(l, "203.0.113.9", Response, 10); got[Allow] != 10 {
		t.Fatalf("responses after the errors budget ran out: %v, want 10 allowed", got)
	}
	if got := count(l, "203.0.113.9", Response, 1); got[Drop] != 1 {
		t.Fatalf("11th response: %v, want dropped", got)
	}
}

func TestExemptAndUnlimited(t *testing.T) {
	l, _ := newLimiter(t, config.RRLConfig{
		ResponsesPerSecond: 2, ErrorsPerSecond: 0, Slip: 2,
		Exempt: []config.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, {Prefix: netip.MustParsePrefix("2001:db8::/32")}},
	})
	for _, c := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1"} {
		if got := count(l, c, Response, 100); got[Allow] != 100 {
			t.Fatalf("exempt %s: %v", c, got)
		}
	}
	if got := count(l, "192.0.2.1", Error, 100); got[Allow] != 100 {
		t.Fatalf("errors_per_second 0 is unlimited: %v", got)
	}
	if got := count(l, "192.0.2.1", Response, 3); got[Allow] != 2 {
		t.Fatalf("non-exempt client: %v, want 2 allowed", got)
	}
}

func TestIPv6Prefix(t *testing.T) {
	l, _ := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 5, Slip: 0})
	if got := count(l, "2001:db8:0:ff::1", Response, 5); got[Allow] != 5 {
		t.Fatal(got)
	}
	// Same /56 (2001:db8:0:00xx::): limited.
	if a := l.Check(netip.MustParseAddr("2001:db8:0:1::9"), Response); a != Drop {
		t.Fatalf("same /56: %v, want drop", a)
	}
	// Another /56: its own bucket.
	if a := l.Check(netip.MustParseAddr("2001:db8:0:100::1"), Response); a != Allow {
		t.Fatalf("another /56: %v, want allow", a)
	}
}

func TestDisabledAndNil(t *testing.T) {
	off := false
	if l := New(config.RRLConfig{Enabled: &off, ResponsesPerSecond: 1}, Deps{}); l != nil {
		t.Fatal("disabled RRL built a limiter")
	}
	var l *Limiter
	if a := l.Check(netip.MustParseAddr("192.0.2.1"), Response); a != Allow {
		t.Fatalf("nil limiter: %v", a)
	}
}

func TestTableIsBoundedAndEvictsOldest(t *testing.T) {
	l, clk := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 1, Slip: 0, TableSize: 8})
	if n := len(l.sets) * ways; n != 8 {
		t.Fatalf("table of %d slots, want 8", n)
	}
	victim := netip.MustParseAddr("192.0.2.1")
	if l.Check(victim, Response) != Allow || l.Check(victim, Response) != Drop {
		t.Fatal("victim's bucket not limited")
	}
	// Many other networks, all newer, push the victim out of the table.
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		l.Check(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), Response)
	}
	used := 0
	for i := range l.sets {
		for _, sl := range l.sets[i].slots {
			if sl.net.IsValid() {
				used++
			}
		}
	}
	if used > 8 {
		t.Fatalf("%d slots used in a table of 8", used)
	}
	// Evicted, the victim starts with a full bucket (it paid 1 s ago at most).
	if a := l.Check(victim, Response); a != Allow {
		t.Fatalf("evicted network: %v, want a fresh bucket", a)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	l, _ := newLimiter(t, config.RRLConfig{ResponsesPerSecond: 1000, ErrorsPerSecond: 100, Slip: 2,
		Exempt: []config.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}})
	a := netip.MustParseAddr("192.0.2.1")
	if n := testing.AllocsPerRun(1000, func() { l.Check(a, Response) }); n != 0 {
		t.Fatalf("Check allocates %.1f times", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	l := New(config.RRLConfig{ResponsesPerSecond: 1 << 30, ErrorsPerSecond: 1 << 30, Slip: 2,
		IPv4PrefixLength: 24, IPv6PrefixLength: 56, TableSize: 100000}, Deps{})
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a, Response)
	}
}
