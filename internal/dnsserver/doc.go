// Package dnsserver is gslb's authoritative DNS server: zone data built from
// the config, a pure lookup over it (lookup.go), the wire handling of one
// message (handler.go, ecs.go), the answer cache in front of it (wire.go,
// cache.go, answer.go), and the UDP and TCP listeners with their limits and
// response rate limiting (server.go, listen.go, udp.go, tcp.go).
//
// The layers are separate so that each can be tested without the next:
// Zones.Lookup is a pure function of (zone data, name, type, client) and is
// table-tested; Handler.Respond turns request bytes into response bytes and
// is tested with raw packets, and its cached path is tested byte for byte
// against the full path; Server owns sockets and is tested over loopback
// with real clients.
//
// The hot path: each listen address has dns.udp_sockets UDP sockets bound
// with SO_REUSEPORT, each read by one goroutine that answers inline. On
// Linux that goroutine reads every datagram waiting (up to 32) with one
// recvmmsg and writes the replies with one sendmmsg, through buffers
// allocated once per socket (udp_batch_linux.go). By default
// (dns.udp_reader: thread, udp_thread_linux.go) it does so on a socket
// taken out of the runtime's poller, sleeping in a blocking recvmmsg as
// C servers do, and holds its P meanwhile while queries come (GOMAXPROCS
// is one higher for it until it has been idle for a second); with
// netpoll it waits in the poller between non-blocking calls. Both
// bypass the scheduler's system call bookkeeping, which on one CPU cost
// more than the calls themselves (a P retaken by sysmon on nearly every
// call). Elsewhere it reads one datagram per call. A query
// of the common shape is parsed by hand (no dns.Msg), and a repeated
// question is answered by copying its cached packed answer and patching the
// ID, RD/CD bits, question case and ECS option, allocating nothing. Routed
// (GSLB) answers are cached per client network at the decision's ECS scope
// and health snapshot version. UDP responses then pass the response rate
// limiter (internal/rrl), which may drop them or send them truncated.
package dnsserver
