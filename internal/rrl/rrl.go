// Package rrl is DNS response rate limiting in the manner of Knot DNS,
// NSD and BIND: a UDP server answering spoofed queries must not become an
// amplifier aimed at the spoofed address, yet a real client whose
// responses are limited must still be able to get its answers.
//
// Clients are grouped into networks (/24 for IPv4 and /56 for IPv6 by
// default). Each network has a token bucket for ordinary responses and a
// separate, usually smaller one for errors (NXDOMAIN, REFUSED, FORMERR
// and the like), refilled at the configured rate per second and holding
// at most one second's worth. A response over the limit is dropped,
// except every Nth one (the slip ratio), which is sent as a minimal
// truncated reply (TC=1): a real client retries over TCP, which is never
// limited, while a spoofed victim receives no more bytes than were sent.
//
// The buckets live in a fixed-size table: a network hashes to a set of a
// few slots, and a new network takes the slot of the set's least recently
// used one. Check takes one short, uncontended lock and allocates nothing.
package rrl

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// Class is the budget a response is counted against.
type Class uint8

// Classes.
const (
	// Response is an ordinary answer (NOERROR, including NODATA).
	Response Class = iota
	// Error is NXDOMAIN, REFUSED, FORMERR, SERVFAIL and the other errors.
	Error
)

// Action is what to do with a response.
type Action uint8

// Actions.
const (
	// Allow sends the response.
	Allow Action = iota
	// Slip sends a minimal truncated reply (TC=1) instead.
	Slip
	// Drop sends nothing.
	Drop
)

// String returns the action's metric label.
func (a Action) String() string {
	switch a {
	case Slip:
		return "slip"
	case Drop:
		return "drop"
	}
	return "allow"
}

// ways is the number of slots per set of the table.
const ways = 4

// Deps are the Limiter's injected dependencies.
type Deps struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Limiter decides, per client network, whether a UDP response may be
// sent. It is safe for concurrent use.
type Limiter struct {
	rates    [2]int64 // responses per second per class; 0 = unlimited
	slip     uint32
	v4, v6   int
	exempt   []netip.Prefix
	now      func() time.Time
	seed     maphash.Seed
	sets     []set
	setsMask uint64
}

// set is a group of slots guarded by one lock.
type set struct {
	mu    sync.Mutex
	slots [ways]slot
}

// slot is one client network's bucket for one class.
type slot struct {
	net   netip.Addr // the masked network address; invalid when empty
	class Class
	// tat is the bucket's theoretical arrival time (GCRA), in
	// nanoseconds: the bucket is full when tat <= now and empty when
	// tat >= now + one second.
	tat int64
	// last is the time of the last response checked.
	last int64
	// limited counts the responses limited since the bucket was taken.
	limited uint32
}

// New returns a Limiter for cfg, or nil when RRL is disabled (a nil
// Limiter allows everything). Limits the config leaves at 0 are
// unlimited; prefix lengths and table size fall back to the defaults.
func New(cfg config.RRLConfig, deps Deps) *Limiter {
	if !cfg.RRLEnabled() {
		return nil
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	l := &Limiter{
		rates: [2]int64{int64(max(cfg.ResponsesPerSecond, 0)), int64(max(cfg.ErrorsPerSecond, 0))},
		slip:  uint32(max(cfg.Slip, 0)),
		v4:    cfg.IPv4PrefixLength,
		v6:    cfg.IPv6PrefixLength,
		now:   deps.Now,
		seed:  maphash.MakeSeed(),
	}
	if l.v4 <= 0 || l.v4 > 32 {
		l.v4 = config.DefaultRRLIPv4Prefix
	}
	if l.v6 <= 0 || l.v6 > 128 {
		l.v6 = config.DefaultRRLIPv6Prefix
	}
	for _, p := range cfg.Exempt {
		l.exempt = append(l.exempt, p.Prefix)
	}
	size := cfg.TableSize
	if size <= 0 {
		size = config.DefaultRRLTableSize
	}
	n := uint64(1)
	for n*ways < uint64(size) {
		n <<= 1
	}
	l.sets = make([]set, n)
	l.setsMask = n - 1
	return l
}

// Check counts one response of class to client and says what to do with
// it. A nil Limiter allows everything.
func (l *Limiter) Check(client netip.Addr, class Class) Action {
	if l == nil || class > Error || l.rates[class] == 0 || !client.IsValid() {
		return Allow
	}
	client = client.Unmap()
	for _, p := range l.exempt {
		if p.Contains(client) {
			return Allow
		}
	}
	bits := l.v6
	if client.Is4() {
		bits = l.v4
	}
	p, err := client.Prefix(bits)
	if err != nil {
		return Allow
	}
	network := p.Addr()
	now := l.now().UnixNano()

	h := l.hash(network, class)
	s := &l.sets[h&l.setsMask]
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.find(network, class)
	if sl == nil {
		sl = s.oldest()
		*sl = slot{net: network, class: class, tat: now}
	}
	sl.last = now

	// GCRA: each response costs one interval; the bucket holds one
	// second's worth (rate responses).
	interval := int64(time.Second) / l.rates[class]
	tat := max(sl.tat, now)
	if tat+interval-now <= int64(time.Second) {
		sl.tat = tat + interval
		return Allow
	}
	sl.limited++
	if l.slip > 0 && sl.limited%l.slip == 0 {
		return Slip
	}
	return Drop
}

// hash spreads (network, class) over the table.
func (l *Limiter) hash(network netip.Addr, class Class) uint64 {
	var b [17]byte
	a := network.As16()
	copy(b[:], a[:])
	b[16] = byte(class)
	return maphash.Bytes(l.seed, b[:])
}

// find returns the slot of (network, class), or nil.
func (s *set) find(network netip.Addr, class Class) *slot {
	for i := range s.slots {
		if sl := &s.slots[i]; sl.net == network && sl.class == class {
			return sl
		}
	}
	return nil
}

// oldest returns an empty slot, else the least recently used one.
func (s *set) oldest() *slot {
	best := &s.slots[0]
	for i := range s.slots {
		sl := &s.slots[i]
		if !sl.net.IsValid() {
			return sl
		}
		if sl.last < best.last {
			best = sl
		}
	}
	return best
}

// ClassOf returns the budget a response with the given rcode counts
// against.
func ClassOf(rcode int) Class {
	if rcode == 0 {
		return Response
	}
	return Error
}
