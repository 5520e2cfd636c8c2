package health

import (
	"context"
	"net"
	"net/netip"
)

// probeTCP succeeds when a TCP connection to target is established within
// the deadline of ctx; the connection is closed at once.
func probeTCP(ctx context.Context, target netip.AddrPort) Result {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return failure(ctx, err)
	}
	_ = conn.Close()
	return Result{OK: true, Reason: ReasonOK}
}
