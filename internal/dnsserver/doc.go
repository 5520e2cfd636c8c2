// Package dnsserver is gslb's authoritative DNS server: zone data built from
// the config, a pure lookup over it (lookup.go), the wire handling of one
// message (handler.go, ecs.go), and the UDP and TCP listeners with their
// limits (server.go, udp.go, tcp.go).
//
// The layers are separate so that each can be tested without the next:
// Zones.Lookup is a pure function of (zone data, name, type, client) and is
// table-tested; Handler.Respond turns request bytes into response bytes and
// is tested with raw packets; Server owns sockets and is tested over
// loopback with real clients.
package dnsserver
