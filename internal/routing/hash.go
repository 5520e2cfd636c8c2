package routing

import (
	"math"
	"net/netip"
)

// Hashing for the weighted policy and for choosing endpoints when
// MaxRecords truncates an answer. The hashes are fixed functions (FNV-1a
// and the SplitMix64 finaliser), not seeded per process, so every gslb
// instance serving a zone gives a client network the same answer.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString is FNV-1a 64 of s.
func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// clientKey hashes the client's network: addr masked to bits. An invalid
// address hashes to a constant.
func clientKey(addr netip.Addr, bits int) uint64 {
	if !addr.IsValid() {
		return fnvOffset
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return fnvOffset
	}
	b := p.Addr().As16()
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	h ^= uint64(bits)
	h *= fnvPrime
	return h
}

// mix combines a client key with a member's seed (SplitMix64 finaliser).
func mix(key, seed uint64) uint64 {
	z := key ^ (seed * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hrwScore is the weighted rendezvous-hashing score of a member: the
// member with the highest score wins, each with probability proportional
// to its weight, and removing a member only moves the clients it had.
func hrwScore(key, seed uint64, weight float64) float64 {
	u := (float64(mix(key, seed)>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
	return weight / -math.Log(u)
}
