package proxy

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// viaValue is added to the Via header of requests and responses received
// over HTTP/1.x, viaValue2 for HTTP/2 (RFC 9110 §7.6.3: the protocol
// version of the message received).
const (
	viaValue  = "1.1 gslb"
	viaValue2 = "2.0 gslb"
)

func via(protoMajor int) string {
	if protoMajor == 2 {
		return viaValue2
	}
	return viaValue
}

// RegionHeader is the response header naming the region of the upstream
// that answered (e.g. "X-Gslb-Region: east"). It lets an operator (or curl)
// see failover happen; it reveals only configured region names.
const RegionHeader = "X-Gslb-Region"

// errRetryStatus is how ModifyResponse turns a retryable upstream status
// into an error so that the ReverseProxy discards the response and the
// attempt loop can try another endpoint.
var errRetryStatus = errors.New("proxy: retryable upstream status")

// attempt is the state of one upstream attempt, carried to the
// ReverseProxy hooks through the request context.
type attempt struct {
	rt    *runtime
	route *route
	up    *upstream
	w     http.ResponseWriter
	start time.Time
	// mayRetry allows ModifyResponse to discard a 502/503/504 before
	// deadline because another attempt is possible.
	mayRetry bool
	deadline time.Time
	// fastPath sends the attempt over the fast path (fastEligible).
	fastPath bool

	// Results, written by the hooks on the handler goroutine.
	status      int
	err         error
	retryStatus bool
	observed    bool

	// fast is the response of a fast-path attempt (kept here to spare an
	// allocation).
	fast fastResponse
}

type attemptKey struct{}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// observe records the attempt's upstream latency once.
func (s *Server) observe(a *attempt) {
	if a.observed {
		return
	}
	a.observed = true
	s.m.upstreamDuration(a.up.region).Observe(s.now().Sub(a.start).Seconds())
}

// rewrite is the ReverseProxy Rewrite hook: it points the outbound request
// at the attempt's upstream, keeps the client's Host (ingresses route by
// it), and sets X-Forwarded-For/Host/Proto and Via. An inbound
// X-Forwarded-For is kept only from a trusted proxy.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	a := attemptFrom(pr.In.Context())
	pr.SetURL(a.up.target)
	pr.Out.URL.RawQuery = escapeTarget(pr.Out.URL.RawQuery) // as the fast path does
	pr.Out.Host = pr.In.Host
	if len(a.rt.trusted) > 0 && a.rt.trusted.contains(remoteAddr(pr.In)) {
		if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 {
			pr.Out.Header["X-Forwarded-For"] = xff
		}
	}
	pr.SetXForwarded()
	pr.Out.Header.Add("Via", via(pr.In.ProtoMajor))
}

// modifyResponse is the ReverseProxy ModifyResponse hook.
func (s *Server) modifyResponse(res *http.Response) error {
	a := attemptFrom(res.Request.Context())
	if res.StatusCode < 100 {
		return errBadStatus // net/http's Transport passes it on as a final status
	}
	a.status = res.StatusCode
	s.observe(a)
	if s.retryOnStatus(a) {
		return errRetryStatus
	}
	res.Header.Add("Via", via(res.ProtoMajor))
	res.Header.Set(RegionHeader, a.up.region)
	if res.StatusCode == http.StatusSwitchingProtocols || isEventStream(res.Header) {
		liftServerTimeouts(a.w)
	}
	return nil
}

// retryOnStatus reports, and records in a, that a's response status is
// to be discarded for another attempt: the status is retryable, another
// attempt is possible and the retry budget is not spent.
func (s *Server) retryOnStatus(a *attempt) bool {
	a.retryStatus = a.mayRetry && retryableStatus(a.status) && s.now().Before(a.deadline)
	return a.retryStatus
}

// liftServerTimeouts clears the server's read and write deadlines of a
// long-lived response (an upgrade or an event stream), which they must
// not cut.
func liftServerTimeouts(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
}

// errorHandler is the ReverseProxy ErrorHandler hook. It writes nothing:
// the attempt loop decides between retrying and answering with an error.
func (s *Server) errorHandler(_ http.ResponseWriter, req *http.Request, err error) {
	a := attemptFrom(req.Context())
	a.err = err
	s.observe(a)
}

// attemptTransport sends each outbound request with the transport of the
// attempt's config generation and route host.
type attemptTransport struct{}

func (attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptFrom(req.Context())
	if a == nil {
		return nil, errors.New("proxy: request without attempt")
	}
	return a.rt.tr.forHost(a.route.host).RoundTrip(req)
}

func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	const es = "text/event-stream"
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false // cheap: no parsing for the common case
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// bufferPool recycles the ReverseProxy's copy buffers.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}}
}

func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		buf = buf[:copyBufferSize]
		b.p.Put(&buf)
	}
}

// keepNoContentType stops net/http from sniffing a Content-Type for a
// response the upstream sent without one: a proxy passes on what the
// upstream said (a nil value suppresses the sniffing and is not sent).
func keepNoContentType(h http.Header) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}
