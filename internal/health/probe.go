package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/gslb-dev/gslb/internal/config"
)

// Result is the outcome of one probe.
type Result struct {
	// OK is true when the probe succeeded.
	OK bool
	// Reason is a short human verdict: "ok", "status 503", "timeout",
	// "connection refused", "connection reset", "body mismatch",
	// "tls: certificate signed by unknown authority", ...
	Reason string
	// Detail is the full error text of a failed probe ("" when OK).
	Detail string
	// Duration is how long the probe took.
	Duration time.Duration
}

// Reasons reported by probes besides error classifications.
const (
	ReasonOK           = "ok"
	ReasonNoCheck      = "no check"
	ReasonTimeout      = "timeout"
	ReasonBodyMismatch = "body mismatch"
)

// probeFunc runs one probe of target. ctx carries the probe's deadline.
// Implementations live one per file (probe_http.go, probe_tcp.go,
// probe_dns.go) and never outlive ctx.
type probeFunc func(ctx context.Context, target netip.AddrPort) Result

// prober is a ready-to-run probe for one check: everything that can be
// prepared once (TLS config, regular expression, HTTP transport) is.
type prober struct {
	run   probeFunc
	close func()
}

// newProber prepares the probe of check. A check that cannot be prepared
// (for example an unreadable ca_file) yields a prober that always fails
// with that reason, so the endpoint is reported down instead of silently
// unchecked.
func newProber(check config.Check) prober {
	var (
		p   prober
		err error
	)
	switch check.Type {
	case "http", "https":
		p, err = newHTTPProber(check)
	case "tcp":
		p = prober{run: probeTCP}
	case "dns":
		p, err = newDNSProber(check)
	case "none", "":
		p = prober{run: func(context.Context, netip.AddrPort) Result {
			return Result{OK: true, Reason: ReasonNoCheck}
		}}
	default:
		err = fmt.Errorf("unknown check type %q", check.Type)
	}
	if err != nil {
		reason, detail := "config: "+err.Error(), err.Error()
		return prober{run: func(context.Context, netip.AddrPort) Result {
			return Result{Reason: reason, Detail: detail}
		}, close: func() {}}
	}
	if p.close == nil {
		p.close = func() {}
	}
	return p
}

// probeTarget returns the address probed for ep under check: the
// endpoint's address and port, or check.Port when set.
func probeTarget(check config.Check, ep *config.Endpoint) netip.AddrPort {
	port := ep.Port
	if check.Port != 0 {
		port = check.Port
	}
	return netip.AddrPortFrom(ep.Address.Addr, port)
}

// Probe runs check once against ep with check.Timeout and returns the
// result. It serves `gslb check` and the admin API's manual checks.
func Probe(ctx context.Context, check config.Check, ep *config.Endpoint) Result {
	p := newProber(check)
	defer p.close()
	return runProbe(ctx, p, check.Timeout, probeTarget(check, ep))
}

// runProbe runs p with timeout (none when <= 0) and measures it.
func runProbe(ctx context.Context, p prober, timeout time.Duration, target netip.AddrPort) Result {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	r := p.run(ctx, target)
	r.Duration = time.Since(start)
	if r.OK {
		r.Detail = ""
	} else if r.Reason == "" {
		r.Reason = "failed"
	}
	return r
}

// failure builds a failed Result from err, classified into a short reason.
func failure(ctx context.Context, err error) Result {
	return Result{Reason: classify(ctx, err), Detail: err.Error()}
}

// classify turns a probe error into a short, human reason.
func classify(ctx context.Context, err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		certErr   *tls.CertificateVerificationError
		alert     tls.AlertError
		recHdr    tls.RecordHeaderError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &unknownCA):
		return "tls: certificate signed by unknown authority"
	case errors.As(err, &hostErr):
		return "tls: certificate name mismatch"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "tls: certificate expired or not yet valid"
		}
		return "tls: invalid certificate"
	case errors.As(err, &certErr):
		return "tls: certificate verification failed"
	case errors.As(err, &alert), errors.As(err, &recHdr):
		return "tls: handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	}
	return "error"
}
