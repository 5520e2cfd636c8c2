package dnsserver

import (
	"bytes"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// The answer cache keeps packed responses so that a repeated question is
// answered by copying bytes and patching the ID, the question's case, the
// RD and CD bits and the ECS option, with no decoding, lookup, routing
// decision or packing, and no allocation.
//
// A key is the question (name folded to lower case, type, class) and the
// EDNS shape (OPT present, DO bit). The client's UDP size is not part of
// it: an entry holds the whole answer and is used only when that answer
// (with the ECS option) fits the client's limit; otherwise the full path
// answers, truncating.
//
// Names answered by a routing decision get two kinds of entries. A
// marker under the plain key records that the answer is routed and which
// ECS scopes its decisions have had. The answers themselves are stored
// under the plain key extended with the client network at the decision's
// scope (the client address masked to Decision.Scope bits; "unknown" for
// a query with no usable client address). Every client in that network
// gets the same decision (that is what the scope means), so a lookup
// tries, for each scope the marker has seen, the client's network at that
// scope. Routed entries remember the health snapshot version they were
// decided from and are not used once it changed, nor after
// routedMaxAge (the GeoIP database may be reloaded in place). A reload
// builds a new Handler and with it a new, empty cache.
//
// The table is set-associative: a key hashes to a set of cacheWays slots
// holding immutable entries behind atomic pointers. Readers take no lock;
// a writer replaces a stale or empty slot of the set, or a pseudo-random
// one (so the cache never holds more than its size).

// cacheWays is the number of slots per set.
const cacheWays = 4

// maxCachedResponse bounds the size of a cached response; larger answers
// always take the full path. It bounds the cache's memory to about
// size × maxCachedResponse.
const maxCachedResponse = 1232

// routedMaxAge bounds how long a routed answer is reused (nanoseconds).
const routedMaxAge = int64(10e9)

// Kinds of the last part of a cache key.
const (
	keyPlain   = 0xFF // static answers and routed markers
	keyUnknown = 0    // routed answer for a client without an address
	keyV4      = 4
	keyV6      = 6
)

// maxKeyLen is the longest key: name, type, class, EDNS shape, kind,
// scope and an IPv6 address.
const maxKeyLen = 255 + 2 + 2 + 1 + 1 + 1 + 16

// entry is one cached response or routed marker. It is immutable once
// stored, except for the marker's scope sets.
type entry struct {
	hash uint64
	key  []byte
	// resp is the packed response with ID 0, RD and CD clear, the
	// question name in lower case and, when it has an OPT record, that
	// record last and without options.
	resp  []byte
	zone  string
	rcode int
	// routed is set on routed answers; scope is their decision's scope.
	routed bool
	scope  int
	// version is the health snapshot version of a routed answer and
	// expires (Handler.nanos) the end of its use.
	version uint64
	expires int64

	// marker is set on a routed marker; scopes4/scopes6 are the sets of
	// scopes seen (bit n = /n).
	marker  bool
	scopes4 atomic.Uint64
	scopes6 [3]atomic.Uint64

	// counter is the query counter of this answer, resolved by the
	// Server on first use.
	counter atomic.Pointer[counterRef]
}

// answerCache is the table of entries.
type answerCache struct {
	seed  maphash.Seed
	mask  uint64 // sets - 1
	slots []atomic.Pointer[entry]
	tick  atomic.Uint32 // varies the victim chosen in full sets
}

// newAnswerCache returns a cache of at least size entries (rounded up to
// a power of two), or nil when size is 0 or less.
func newAnswerCache(size int) *answerCache {
	if size <= 0 {
		return nil
	}
	sets := uint64(1)
	if need := uint64((size + cacheWays - 1) / cacheWays); need > 1 {
		sets = 1 << bits.Len64(need-1)
	}
	return &answerCache{
		seed:  maphash.MakeSeed(),
		mask:  sets - 1,
		slots: make([]atomic.Pointer[entry], sets*cacheWays),
	}
}

// hash returns the hash of a key.
func (c *answerCache) hash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

// get returns the entry stored under key (with hash h), or nil.
func (c *answerCache) get(h uint64, key []byte) *entry {
	set := c.slots[(h&c.mask)*cacheWays:][:cacheWays]
	for i := range set {
		if e := set[i].Load(); e != nil && e.hash == h && bytes.Equal(e.key, key) {
			return e
		}
	}
	return nil
}

// put stores e, replacing an entry with the same key, else an empty slot
// of its set, else a pseudo-random one.
func (c *answerCache) put(e *entry) {
	set := c.slots[(e.hash&c.mask)*cacheWays:][:cacheWays]
	free := -1
	for i := range set {
		old := set[i].Load()
		if old == nil {
			if free < 0 {
				free = i
			}
			continue
		}
		if old.hash == e.hash && bytes.Equal(old.key, e.key) {
			set[i].Store(e)
			return
		}
	}
	if free < 0 {
		free = int((uint32(e.hash>>32) + c.tick.Add(1)) % cacheWays)
	}
	set[free].Store(e)
}

// marker returns the routed marker stored under key (with hash h),
// storing a new one when there is none.
func (c *answerCache) marker(h uint64, key []byte) *entry {
	if e := c.get(h, key); e != nil && e.marker {
		return e
	}
	e := &entry{hash: h, key: bytes.Clone(key), marker: true}
	c.put(e)
	return e
}

// addScope records that a decision for family (keyV4 or keyV6) had the
// given scope.
func (e *entry) addScope(kind byte, scope int) {
	if kind == keyV4 {
		if scope >= 0 && scope <= 32 {
			e.scopes4.Or(1 << scope)
		}
		return
	}
	if scope >= 0 && scope <= 128 {
		e.scopes6[scope/64].Or(1 << (scope % 64))
	}
}
