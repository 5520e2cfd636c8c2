package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// The fast path forwards the common request — no body, an idempotent
// method, no protocol upgrade, plain-HTTP upstreams — over a pooled
// keep-alive HTTP/1.1 connection driven from the handler goroutine itself:
// write the request head, read the response, copy it to the client. It
// does what httputil.ReverseProxy does for such a request (hop-by-hop
// headers removed both ways, X-Forwarded-For/Host/Proto and Via set,
// trailers and streaming kept, 1xx forwarded) without the
// http.Transport's per-connection reader and writer goroutines, channel
// hand-offs and extra reads. Everything else (request bodies, upgrades,
// HTTPS upstreams) goes through the ReverseProxy.

// max1xxResponses bounds the informational responses forwarded before the
// final one, as http.Transport does.
const max1xxResponses = 5

// maxUpstreamHeaderBytes bounds an upstream response head (each 1xx and
// the final one), on the fast path and in the ReverseProxy's transport:
// an upstream sending more gets its response refused with a 502.
const maxUpstreamHeaderBytes = 1 << 20

var errTooMany1xx = errors.New("proxy: upstream sent too many 1xx responses")

// errUnexpected101 answers an upstream that switches protocols without
// having been asked to.
var errUnexpected101 = errors.New("proxy: upstream answered 101 to a request without Upgrade")

// errBadStatus: an upstream status below 100, which http.ReadResponse
// accepts and no ResponseWriter may write.
var errBadStatus = errors.New("proxy: upstream answered a status below 100")

// fastEligible reports whether r, of an idempotent method or not, may
// take the fast path (CONNECT never reaches the proxy's forwarding).
func fastEligible(rt *runtime, r *http.Request, body *requestBody, idempotent bool) bool {
	return rt.tr.plain != nil && !body.hasBody && idempotent && len(r.Header["Upgrade"]) == 0
}

// fastResponse is an upstream response head read by the fast path:
// either a simple head still in uc's buffer (res == nil) or a response
// parsed by http.ReadResponse.
type fastResponse struct {
	uc   *upConn
	stop func() bool // ends the client-cancel watch; false if it fired
	res  *http.Response
	head []byte // with res == nil: the unconsumed head
	sh   simpleHead
}

func (f *fastResponse) code() int {
	if f.res != nil {
		return f.res.StatusCode
	}
	return f.sh.code
}

// discard drops the response and its connection.
func (f *fastResponse) discard() {
	f.stop()
	f.uc.close()
}

// release returns the connection to the upstream's pool when the
// response was read exactly to its end and both sides keep it open.
func (f *fastResponse) release(u *upstream, maxIdle int, upstreamClose bool) {
	if !f.stop() || upstreamClose || f.uc.br.Buffered() != 0 {
		f.uc.close()
		return
	}
	u.conns.put(f.uc, maxIdle, time.Now())
}

// reusable reports whether a pooled connection may carry a request: it
// holds no unread bytes, and a peek finds that none arrived since its last
// response and that the upstream did not close it. The peek is one system
// call per request (about 7% of the proxy's CPU per request here); it
// stays, because bytes an upstream sends after the end of a response (a
// body after a HEAD response, a body longer than its Content-Length)
// would otherwise be read as the response to the next request on the
// connection, which is another client's.
func (c *upConn) reusable() bool {
	return c.br.Buffered() == 0 && c.peek.clean()
}

// tryFast runs one attempt over the fast path, with the same outcomes in a
// as the ReverseProxy hooks record.
func (s *Server) tryFast(a *attempt, r *http.Request) {
	f, err := s.roundTripFast(r.Context(), a, r)
	if err != nil {
		a.err = err
		s.observe(a)
		return
	}
	a.status = f.code()
	s.observe(a)
	if s.retryOnStatus(a) {
		a.err = errRetryStatus
		f.discard()
		return
	}
	if f.res == nil {
		s.finishSimple(a, f)
	} else {
		s.finishGeneral(a, f)
	}
}

// startResponse adds Via and the region header, lifts the server's
// timeouts for event streams, and reports whether the response streams.
func (s *Server) startResponse(a *attempt, protoMajor int) (stream bool) {
	hdr := a.w.Header()
	hdr.Add("Via", via(protoMajor))
	hdr.Set(RegionHeader, a.up.region)
	if isEventStream(hdr) {
		liftServerTimeouts(a.w)
		return true
	}
	return false
}

// finishSimple forwards a simple response (see simpleHead).
func (s *Server) finishSimple(a *attempt, f *fastResponse) {
	uc := f.uc
	stream := false
	if !writeSimpleHeadRaw(a, f) {
		copySimpleHeaders(a.w.Header(), f.head, f.sh.lines)
		stream = s.startResponse(a, 1)
		a.w.WriteHeader(f.sh.code)
	}
	_, _ = uc.br.Discard(f.sh.size)
	var err error
	if n := f.sh.length; n > 0 {
		if n <= int64(uc.br.Buffered()) {
			b, _ := uc.br.Peek(int(n))
			_, err = a.w.Write(b)
			_, _ = uc.br.Discard(int(n))
		} else {
			uc.clearDeadline() // the upstream timeout bounds the head only
			err = s.bufs.copyBody(a.w, io.NopCloser(io.LimitReader(uc.br, n)), stream, n)
		}
		if err == nil && stream {
			_ = http.NewResponseController(a.w).Flush()
		}
	}
	if err != nil {
		f.discard()
		panic(http.ErrAbortHandler) // the client must see the response cut
	}
	f.release(a.up, a.rt.tr.idlePerHost, f.sh.close)
}

// writeSimpleHeadRaw writes the head of a simple response to the front
// end's writer by copying the upstream's field lines as they are, with
// Via and the region header added, as startResponse and WriteHeader
// would write them from the header map (case and order of field names
// aside): building the map only to format it again cost about 4% of the
// proxy's CPU per request. It reports false, writing nothing, for any
// other writer or a response that needs the general way: a HEAD request,
// a status without a body, an event stream, a region header from the
// upstream, header fields set already.
func writeSimpleHeadRaw(a *attempt, f *fastResponse) bool {
	rec, ok := a.w.(*recorder)
	if !ok || rec.status != 0 {
		return false
	}
	fw, ok := rec.ResponseWriter.(*frontWriter)
	sh := &f.sh
	if !ok || fw.status != 0 || len(fw.header) != 0 || fw.method == http.MethodHead ||
		!bodyAllowedForStatus(sh.code) || sh.stream || sh.region {
		return false
	}
	rec.status = sh.code
	fw.writeRawHeader(sh.code, sh.length, f.head, sh, "Via", via(1), RegionHeader, a.up.region)
	return true
}

// finishGeneral forwards a response parsed by http.ReadResponse, as the
// ReverseProxy does: trailers kept, bodies of unknown length flushed as
// they come.
func (s *Server) finishGeneral(a *attempt, f *fastResponse) {
	res := f.res
	hdr := a.w.Header()
	removeHopByHop(res.Header)
	copyHeader(hdr, res.Header)
	stream := s.startResponse(a, res.ProtoMajor)
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		hdr.Add("Trailer", strings.Join(keys, ", "))
	}
	a.w.WriteHeader(res.StatusCode)
	if err := s.bufs.copyBody(a.w, res.Body, stream || res.ContentLength == -1, res.ContentLength); err != nil {
		f.discard()
		panic(http.ErrAbortHandler) // the client must see the response cut
	}
	if len(res.Trailer) > 0 {
		// Force chunking so that the trailers can follow.
		_ = http.NewResponseController(a.w).Flush()
		if len(res.Trailer) == announced {
			copyHeader(hdr, res.Trailer)
		} else {
			for k, vv := range res.Trailer {
				for _, v := range vv {
					hdr.Add(http.TrailerPrefix+k, v)
				}
			}
		}
	}
	f.release(a.up, a.rt.tr.idlePerHost, res.Close)
}

// roundTripFast sends r's head to a's upstream and reads the response
// head. A pooled connection the upstream has closed meanwhile (nothing
// came back) is replaced by a new one once, as http.Transport does.
func (s *Server) roundTripFast(ctx context.Context, a *attempt, r *http.Request) (*fastResponse, error) {
	for round := 0; ; round++ {
		var uc *upConn
		now := time.Now()
		if round == 0 {
			uc = a.up.conns.get()
			for uc != nil && !uc.reusable() {
				uc.close() // closed by the upstream, or bytes nobody asked for
				uc = a.up.conns.get()
			}
		}
		reused := uc != nil
		if uc == nil {
			c, err := a.rt.tr.dialer.DialContext(ctx, "tcp", a.up.target.Host)
			if err != nil {
				return nil, err
			}
			uc = newUpConn(c)
			now = time.Now()
		}
		f := &a.fast
		*f = fastResponse{uc: uc, stop: afterCancel(ctx, uc.abortFn)}
		got, err := s.exchange(f, a, r, now)
		if err == nil {
			return f, nil
		}
		f.discard()
		if reused && !got && ctx.Err() == nil && !isTimeout(err) {
			continue // a stale keep-alive connection: try a fresh one
		}
		return nil, err
	}
}

// exchange writes the request head on f.uc and reads the response head,
// forwarding 1xx informational responses. got reports whether any byte of
// a response arrived.
func (s *Server) exchange(f *fastResponse, a *attempt, r *http.Request, now time.Time) (got bool, err error) {
	uc := f.uc
	uc.wbuf = appendRequestHead(uc.wbuf[:0], a, r)
	uc.armDeadline(now, a.rt.px.Timeouts.Upstream)
	if err := uc.sendAndAwait(); err != nil {
		return false, err
	}
	uc.limitHead(maxUpstreamHeaderBytes)
	defer uc.limitHead(0)
	if _, err := uc.br.Peek(1); err != nil {
		return false, err
	}
	if head := peekHead(uc.br); head != nil {
		if sh, ok := parseSimpleHead(head, r.Method); ok {
			f.head, f.sh = head, sh
			return true, nil
		}
	}
	for n := 0; ; n++ {
		if n > max1xxResponses {
			return true, errTooMany1xx
		}
		// Each head gets the whole limit, as in http.Transport; what the
		// buffer holds already was counted against the previous one.
		uc.limitHead(maxUpstreamHeaderBytes)
		res, err := http.ReadResponse(uc.br, r)
		if err != nil {
			return true, err
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return true, errUnexpected101
		}
		if res.StatusCode < 100 {
			return true, errBadStatus
		}
		if res.StatusCode >= 200 {
			f.res = res
			break
		}
		// 1xx informational (103 Early Hints...): pass it on, keep reading.
		h := a.w.Header()
		for k, vv := range res.Header {
			h[k] = vv
		}
		a.w.WriteHeader(res.StatusCode)
		for k := range res.Header {
			delete(h, k)
		}
	}
	uc.clearDeadline() // the body may stream for as long as it needs
	return true, nil
}

// appendRequestHead appends the outbound request head for r to upstream
// a.up: the client's method, target and Host, its end-to-end headers, and
// X-Forwarded-For (the client's chain kept from trusted proxies only),
// X-Forwarded-Host, X-Forwarded-Proto and Via.
func appendRequestHead(b []byte, a *attempt, r *http.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, escapeTarget(r.URL.RequestURI())...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if skipRequestHeader(k) || (len(conn) > 0 && listedIn(conn, k)) {
			continue
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	if listedIn(r.Header["Te"], "trailers") {
		b = appendField(b, "Te", "trailers")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// As net/http sends it for a bodiless request of other methods.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = append(b, "X-Forwarded-For: "...)
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 && len(a.rt.trusted) > 0 && a.rt.trusted.contains(remoteAddr(r)) {
			for _, p := range prior {
				b = append(b, p...)
				b = append(b, ", "...)
			}
		}
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	b = appendField(b, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		b = append(b, "X-Forwarded-Proto: https\r\n"...)
	} else {
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	}
	b = appendField(b, "Via", via(r.ProtoMajor))
	b = append(b, "\r\n"...)
	return b
}

// escapeTarget percent-encodes the bytes of a request-target that an
// HTTP/1.1 request line cannot carry (RFC 9112 §3.2): SP, '#' and
// non-ASCII. net/url keeps them raw in a query that arrived in an HTTP/2
// :path; sent as they are, they would change how the upstream splits the
// request line.
func escapeTarget(s string) string {
	i := 0
	for i < len(s) && !badTargetByte(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+8)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c := s[i]; badTargetByte(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func badTargetByte(c byte) bool { return c <= ' ' || c == '#' || c >= 0x7f }

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// skipRequestHeader reports whether an inbound header is not forwarded as
// is: hop-by-hop headers (RFC 9110 §7.6.1), those the proxy sets itself,
// and framing headers (the fast path sends no body).
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"Host", "Content-Length":
		return true
	}
	return false
}

// hopHeaders are removed from responses (RFC 9110 §7.6.1).
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes hop-by-hop headers and those the Connection
// header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

// listedIn reports whether the comma-separated header values list name
// token k (case-insensitive).
func listedIn(list []string, k string) bool {
	for _, f := range list {
		for sf := range strings.SplitSeq(f, ",") {
			if strings.EqualFold(textproto.TrimString(sf), k) {
				return true
			}
		}
	}
	return false
}

// copyHeader adds src's values to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
}

// copyBody copies an upstream response body of size bytes (-1: unknown)
// to the client, flushing after every write when flush is set (event
// streams and bodies of unknown length, as the ReverseProxy does).
func (b *bufferPool) copyBody(w http.ResponseWriter, body io.ReadCloser, flush bool, size int64) error {
	defer body.Close()
	if body == http.NoBody || size == 0 {
		return nil
	}
	bp := b.p.Get().(*[]byte)
	defer b.p.Put(bp)
	buf := *bp
	var copied int64
	for {
		n, rerr := body.Read(buf)
		copied += int64(n)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
		}
		if rerr == io.EOF {
			if size > 0 && copied < size {
				return io.ErrUnexpectedEOF // the upstream closed early
			}
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
