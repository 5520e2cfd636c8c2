package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/routing"
)

// statusClientClosed is logged and counted (never sent) when the client
// went away before a response was written, as nginx does.
const statusClientClosed = 499

// exchange is the bookkeeping of one client request.
type exchange struct {
	start    time.Time
	rec      *recorder
	req      *http.Request
	route    string
	region   string
	endpoint string
	attempts int
	status   int // the status of the last attempt (101 after an upgrade)
}

// ServeHTTP proxies one request. It implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.rt.Load()
	px := rt.px
	x := exchange{start: s.now(), rec: &recorder{ResponseWriter: w}, req: r, route: "unknown", region: "none"}
	defer s.finish(rt, &x)

	s.m.pending.Inc()
	defer s.m.pending.Dec()
	n := s.pending.Add(1)
	defer s.pending.Add(-1)
	if px.Limits.MaxPending > 0 && n > int64(px.Limits.MaxPending) {
		s.fail(x.rec, http.StatusServiceUnavailable, "too many pending requests")
		return
	}

	route := rt.routes.match(r.Host, r.URL.Path)
	if route == nil {
		// RFC 9110 §15.5.20: this server does not answer for that authority.
		s.fail(x.rec, http.StatusMisdirectedRequest, "no route for host")
		return
	}
	x.route = route.label
	if r.Method == http.MethodConnect {
		x.rec.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
		s.fail(x.rec, http.StatusMethodNotAllowed, "CONNECT is not proxied")
		return
	}
	if rt.limiter != nil {
		if ok, wait := rt.limiter.allow(rt.trusted.clientIP(r), x.start); !ok {
			s.m.rateLimited.WithLabelValues(route.label).Inc()
			x.rec.Header().Set("Retry-After", retryAfter(wait))
			s.fail(x.rec, http.StatusTooManyRequests, "rate limit exceeded")
			return
		}
	}
	if lim := px.Limits.MaxBodyBytes; lim > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > lim {
			s.fail(x.rec, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, lim)
	}
	body, err := prepareBody(r, px.Retries.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(x.rec, http.StatusRequestEntityTooLarge, "request body too large")
		} else {
			s.fail(x.rec, http.StatusBadRequest, "cannot read request body")
		}
		return
	}
	dec := rt.router.Upstreams(route.service, px.LocalRegion)
	s.forward(rt, route, &x, &dec, &body)
}

// forward runs the attempt loop: pick an upstream, proxy, and on a
// retryable failure try another endpoint, within Retries.Attempts extra
// attempts and the Retries.Budget time.
func (s *Server) forward(rt *runtime, route *route, x *exchange, dec *routing.Decision, body *requestBody) {
	r := x.req
	px := rt.px
	idempotent := isIdempotent(r.Method)
	fastPath := fastEligible(rt, r, body, idempotent)
	maxAttempts := 1 + px.Retries.Attempts
	deadline := x.start.Add(px.Retries.Budget)
	var triedBuf [11]*upstream
	tried := triedBuf[:0]
	var failedBuf [4]string
	failedRegions := failedBuf[:0]
	var lastErr error
	for i := 0; i < maxAttempts; i++ {
		now := x.start
		if i > 0 || body.hasBody { // a body may have taken long to read
			now = s.now()
		}
		up, why, more := rt.pick(dec.Targets, tried, failedRegions, now)
		if up == nil {
			switch {
			case lastErr != nil:
				s.failUpstream(x, lastErr)
			case why == allBusy:
				s.fail(x.rec, http.StatusServiceUnavailable, "all upstreams at their concurrency limit")
			default:
				s.fail(x.rec, http.StatusServiceUnavailable, "no upstream available")
			}
			return
		}
		tried = append(tried, up)
		if i > 0 {
			s.m.retries.WithLabelValues(route.label).Inc()
		}
		a := &attempt{
			rt: rt, route: route, up: up, w: x.rec, start: now, deadline: deadline, fastPath: fastPath,
			mayRetry: i+1 < maxAttempts && idempotent && body.replayable && more,
		}
		x.attempts = i + 1
		x.region, x.endpoint = up.region, up.endpoint
		s.try(a, r, body)
		x.status = a.status
		lastErr = a.err
		if a.err == nil {
			return // the response went to the client
		}
		if x.rec.status != 0 || r.Context().Err() != nil {
			return // too late to retry, or nobody is listening
		}
		if a.retryStatus {
			lastErr = errors.New("upstream status " + strconv.Itoa(a.status))
		}
		var mbe *http.MaxBytesError
		if errors.As(a.err, &mbe) {
			s.fail(x.rec, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		retry := a.retryStatus ||
			(body.replayable && (idempotent || neverReached(a.err)))
		if !retry || !s.now().Before(deadline) {
			break
		}
		failedRegions = append(failedRegions, up.region)
	}
	s.failUpstream(x, lastErr)
}

// try proxies one attempt and records its outcome for outlier detection.
func (s *Server) try(a *attempt, r *http.Request, body *requestBody) {
	defer a.up.release()
	if a.fastPath {
		s.tryFast(a, r)
	} else {
		// The hooks find the attempt in the request's context: a copy on
		// the heap, so that a (the fast path's) can stay on the stack.
		ha := new(attempt)
		*ha = *a
		out := r.WithContext(context.WithValue(r.Context(), attemptKey{}, ha))
		body.attach(out)
		s.rp.ServeHTTP(ha.w, out)
		*a = *ha
	}
	switch {
	case a.retryStatus:
		a.rt.outlier.failure(a.up, "status "+strconv.Itoa(a.status))
	case a.err != nil:
		var mbe *http.MaxBytesError
		if r.Context().Err() != nil || errors.As(a.err, &mbe) {
			return // the client's doing, not the upstream's
		}
		a.rt.outlier.failure(a.up, errorReason(a.err))
	case a.status >= 500:
		a.rt.outlier.failure(a.up, "status "+strconv.Itoa(a.status))
	default:
		a.rt.outlier.success(a.up)
	}
}

// failUpstream answers for a request whose last attempt failed with err.
func (s *Server) failUpstream(x *exchange, err error) {
	if x.rec.status != 0 {
		return
	}
	if x.req.Context().Err() != nil {
		x.rec.status = statusClientClosed // nothing can be sent
		return
	}
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	s.fail(x.rec, code, "upstream unavailable")
}

// fail writes a short plain-text error response.
func (s *Server) fail(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// finish counts the request and writes the sampled access log entry.
func (s *Server) finish(rt *runtime, x *exchange) {
	status := x.rec.status
	if status == 0 {
		switch {
		case x.status == http.StatusSwitchingProtocols:
			status = x.status
		case x.req.Context().Err() != nil:
			status = statusClientClosed
		default:
			status = http.StatusOK
		}
	}
	code := statusText(status)
	s.m.request(x.route, code, x.region).Inc()
	px := rt.px
	if !px.AccessLog {
		return
	}
	if n := s.logSeq.Add(1); px.AccessLogSample > 1 && n%uint64(px.AccessLogSample) != 0 {
		return
	}
	s.log.Info("access",
		zap.String("method", x.req.Method),
		zap.String("host", x.req.Host),
		zap.String("path", x.req.URL.Path),
		zap.String("proto", x.req.Proto),
		zap.Int("status", status),
		zap.Int64("bytes", x.rec.bytes),
		zap.String("route", x.route),
		zap.String("region", x.region),
		zap.String("endpoint", x.endpoint),
		zap.Int("attempts", x.attempts),
		zap.Duration("duration", s.now().Sub(x.start)),
		zap.String("client", x.req.RemoteAddr),
	)
}

// statusText formats a status code for the code label; codes outside
// 100..599 are folded into "other" so the label stays bounded.
func statusText(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	if s := commonCodes[code]; s != "" {
		return s
	}
	return strconv.Itoa(code)
}

var commonCodes = func() map[int]string {
	m := map[int]string{}
	for _, c := range []int{101, 200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 413, 421, 429, 431, 499, 500, 502, 503, 504} {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

// isIdempotent reports whether a request with method may be sent twice
// (RFC 9110 §9.2.2); POST and PATCH may not.
func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}
