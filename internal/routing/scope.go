package routing

import (
	"net/netip"

	"github.com/gslb-dev/gslb/internal/geo"
)

// ECS scope (Decision.Scope, RFC 7871 SCOPE PREFIX-LENGTH).
//
// The scope is the number of leading bits of the client address that
// decided the answer: every client sharing them gets the same answer, so a
// resolver may cache it for that whole network, and no wider. The engine
// takes the largest of the lengths that each input of the decision
// depended on:
//
//   - a geo_map cidr rule that matched: its prefix length;
//   - a geo_map cidr rule tried before and not matched: one bit more than
//     the client shares with the rule's network (all addresses sharing
//     that many bits miss the rule too);
//   - the client's Location (country/continent rules, CIDR-map region,
//     nearest region, or "not located"): the length of Location.Network,
//     which the geo Resolver reports as the widest prefix located the same
//     way (for a Locator that gives no Network, the client's source
//     prefix);
//   - a hash of the client network (the weighted policy, or choosing
//     among more endpoints than max_records): the hash prefix length,
//     dns.ecs.max_scope_v4/v6 (24/56 by default).
//
// Inputs a decision did not consult do not count: a cidr rule that decided
// needs no location; the failover and all policies, and answers made when
// every region is down, depend on health only and have scope 0. A
// decision that ended in the only eligible region that every client's
// order reaches is client-independent too (scope 0), unless a hash then
// chose among its endpoints. Health is the same for every client, so
// skipping a down region never widens or narrows the scope.
//
// The scope may exceed the query's source prefix (RFC 7871 §7.2.1 allows
// it); the DNS server caps it.

// locationBits is the scope a decision that used loc depends on.
func locationBits(loc geo.Location, client netip.Addr) int {
	switch {
	case loc.Network.IsValid():
		return loc.Network.Bits()
	case loc.Found():
		return client.BitLen()
	}
	return 0
}

// NormalizeClient returns the client address a decision for q is made
// for: unmapped, masked to the query's source prefix, invalid when the
// client is unknown (no address, or an unspecified one). Two queries
// with the same normalized client, type and service get the same
// Decision from the same snapshot; within Decision.Scope bits of it,
// the same targets.
func NormalizeClient(q Query) netip.Addr { return normalizeClient(q) }

// normalizeClient unmaps the client and masks it to its source prefix. An
// invalid or unspecified address is returned invalid (unknown client).
func normalizeClient(q Query) netip.Addr {
	a := q.Client
	if !a.IsValid() {
		return netip.Addr{}
	}
	src := q.SourcePrefix
	if a.Is4In6() {
		a = a.Unmap()
		src -= 96
	}
	a = a.WithZone("")
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	if src > 0 && src < a.BitLen() {
		p, _ := a.Prefix(src)
		a = p.Addr()
		if a.IsUnspecified() {
			return netip.Addr{}
		}
	}
	return a
}
