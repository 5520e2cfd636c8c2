package proxy

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Buffering of the front end's responses.
const (
	// frontBodyHold is how much body a response holds back before sending
	// its head: a response that ends within it goes out in one write, with
	// a Content-Length, as net/http does.
	frontBodyHold = 16 << 10
	// frontFlushAt is the buffered size at which the writer writes out.
	frontFlushAt = 32 << 10
	// frontKeptBuffer bounds each buffer a connection keeps between
	// requests (larger responses allocate theirs).
	frontKeptBuffer = 8 << 10
)

// frontWriter is the http.ResponseWriter of a request served by the front
// end. It frames the response as net/http's HTTP/1.1 server does: the
// handler's Content-Length when set (a longer body is refused with
// http.ErrContentLength, a shorter one closes the connection), else a
// computed one when the body ended before anything was flushed, else
// chunked encoding with trailers; no body for HEAD, 1xx, 204 and 304;
// interim 1xx responses written at once; a Date when the handler set none;
// Connection: close when the connection ends after the response. It
// never sniffs a Content-Type (net/http does, unless told not to: see
// keepNoContentType).
type frontWriter struct {
	fc     *frontConn
	header http.Header
	method string
	status int // the final status; 0 until written

	headSent   bool
	noBody     bool  // HEAD, 1xx, 204, 304
	chunked    bool  // Transfer-Encoding: chunked
	clen       int64 // the announced Content-Length; -1: none
	written    int64 // body bytes the handler wrote
	closeAfter bool  // the connection ends after this response
	hasDate    bool  // the handler set a Date
	saidClose  bool  // the handler's Connection field lists close
	trailers   []string

	// The head's status line and fields are formatted into out when the
	// status is written (later header changes are trailers, as in
	// net/http); the framing fields and blank line follow when the head
	// is sent. body holds body bytes before the head is sent; out the
	// bytes ready for the connection.
	body []byte
	out  []byte
	err  error // the first write error: later writes fail with it
}

// reset prepares w for request r.
func (w *frontWriter) reset(r *http.Request) {
	clear(w.header)
	w.method = r.Method
	w.status = 0
	w.headSent, w.noBody, w.chunked = false, false, false
	w.clen, w.written = -1, 0
	w.closeAfter = r.Close
	w.hasDate, w.saidClose = false, false
	w.trailers = w.trailers[:0]
	w.body, w.out = w.body[:0], w.out[:0]
	w.err = nil
}

// Header implements http.ResponseWriter.
func (w *frontWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *frontWriter) WriteHeader(code int) {
	if w.status != 0 {
		return // superfluous, as net/http ignores it
	}
	if code < 100 || code > 999 {
		panic("proxy: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.status = code
	h := w.header
	w.noBody = w.method == http.MethodHead || !bodyAllowedForStatus(code)
	if !bodyAllowedForStatus(code) {
		// RFC 9110 §8.6: no Content-Length with 1xx or 204; as net/http,
		// which also drops Content-Type from a 304.
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
		if code == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 && len(cl) == 1 {
			w.clen = n
		} else {
			delete(h, "Content-Length") // as net/http drops an invalid one
		}
	}
	_, w.hasDate = h["Date"]
	w.saidClose = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	w.closeAfter = w.closeAfter || w.saidClose
	for _, v := range h["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = textproto.TrimString(k); k != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
			}
		}
	}
	w.out = appendStatusLine(w.out, code)
	w.out = appendHeaderFields(w.out, h, false)
}

// writeRawHeader writes the final status code as WriteHeader does, with
// header fields given as wire lines rather than in the header map (which
// must be empty): the end-to-end field lines of upstream response head
// (see appendEndToEndLines; they include its one Content-Length, clen,
// and no framing or hop-by-hop field), then "name: value" pairs of
// fields the proxy adds. The response has a body: the request is not
// HEAD and code allows one.
func (w *frontWriter) writeRawHeader(code int, clen int64, head []byte, sh *simpleHead, extra ...string) {
	w.status = code
	w.clen = clen
	w.hasDate = sh.date
	w.out = appendStatusLine(w.out, code)
	w.out = appendEndToEndLines(w.out, head, sh.hop)
	for i := 0; i+1 < len(extra); i += 2 {
		w.out = appendSafeField(w.out, extra[i], extra[i+1])
	}
}

// bodyAllowedForStatus reports whether a response with status code may
// have a body (RFC 9110 §6.4.1).
func bodyAllowedForStatus(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified &&
		code != http.StatusSwitchingProtocols
}

// writeInterim sends a 1xx informational response with the current
// header at once.
func (w *frontWriter) writeInterim(code int) {
	w.out = appendStatusLine(w.out, code)
	w.out = appendHeaderFields(w.out, w.header, true)
	w.out = append(w.out, "\r\n"...)
	w.flushOut()
}

// Write implements http.ResponseWriter.
func (w *frontWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.noBody {
		return len(p), nil // HEAD: counted (see sendHead), not sent
	}
	if !w.headSent {
		if len(w.body)+len(p) <= frontBodyHold {
			w.body = append(w.body, p...)
			return len(p), nil
		}
		w.sendHead(false)
	}
	w.appendBody(p)
	if len(w.out) >= frontFlushAt {
		w.flushOut()
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush implements http.Flusher.
func (w *frontWriter) Flush() { _ = w.FlushError() }

// FlushError sends what is buffered (http.ResponseController uses it).
func (w *frontWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.flushOut()
	return w.err
}

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController; a zero time lifts the server's write timeout
// for this response, as event streams need).
func (w *frontWriter) SetWriteDeadline(t time.Time) error {
	w.fc.wdl = t
	return w.fc.c.SetWriteDeadline(t)
}

// SetReadDeadline is accepted for http.ResponseController and does
// nothing: requests served by the front end have no body to read, and the
// connection's read deadlines are the front end's own.
func (w *frontWriter) SetReadDeadline(time.Time) error { return nil }

// sendHead completes the response head in out (after the fields
// formatted by WriteHeader) and appends the body held back. final reports
// that the handler is done, so that a body not yet sent has a known
// length.
func (w *frontWriter) sendHead(final bool) {
	w.headSent = true
	if w.fc.f.closing.Load() {
		w.closeAfter = true
	}
	b := w.out
	switch {
	case w.clen >= 0:
	case w.noBody:
		// A HEAD response the handler wrote a body for says how long the
		// body would be, as net/http does.
		if final && w.written > 0 && len(w.trailers) == 0 && bodyAllowedForStatus(w.status) {
			b = appendContentLength(b, w.written)
		}
	case final && len(w.trailers) == 0:
		w.clen = int64(len(w.body))
		b = appendContentLength(b, w.clen)
	default: // trailers need chunking
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !w.hasDate {
		b = append(b, "Date: "...)
		b = append(b, w.fc.f.date()...)
		b = append(b, "\r\n"...)
	}
	if w.closeAfter && !w.saidClose {
		b = append(b, "Connection: close\r\n"...)
	}
	w.out = append(b, "\r\n"...)
	if len(w.body) > 0 {
		w.appendBody(w.body)
		w.body = w.body[:0]
	}
}

// appendBody appends body bytes to out, framed as a chunk when chunked.
func (w *frontWriter) appendBody(p []byte) {
	if len(p) == 0 {
		return
	}
	if w.chunked {
		w.out = strconv.AppendInt(w.out, int64(len(p)), 16)
		w.out = append(w.out, "\r\n"...)
		w.out = append(w.out, p...)
		w.out = append(w.out, "\r\n"...)
		return
	}
	w.out = append(w.out, p...)
}

// finish completes the response after the handler returned: the head if
// not sent yet, the last chunk and trailers. What is left to write stays
// in out for the caller. It reports whether the connection can carry
// another request.
func (w *frontWriter) finish() (keep bool) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
	}
	if w.chunked {
		w.out = append(w.out, "0\r\n"...)
		for _, k := range w.trailers {
			if httpguts.ValidTrailerHeader(k) {
				for _, v := range w.header[k] {
					w.out = appendSafeField(w.out, k, v)
				}
			}
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(name) {
				for _, v := range vv {
					w.out = appendSafeField(w.out, http.CanonicalHeaderKey(name), v)
				}
			}
		}
		w.out = append(w.out, "\r\n"...)
	}
	if !w.noBody && w.clen >= 0 && w.written < w.clen {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	return !w.closeAfter && w.err == nil
}

// flushOut writes out to the connection.
func (w *frontWriter) flushOut() {
	if len(w.out) == 0 || w.err != nil {
		return
	}
	_, w.err = w.fc.c.Write(w.out)
	w.out = w.out[:0]
}

// trim drops buffers grown beyond what a connection keeps.
func (w *frontWriter) trim() {
	if cap(w.out) > frontKeptBuffer {
		w.out = nil
	}
	if cap(w.body) > frontKeptBuffer {
		w.body = nil
	}
	if len(w.header) > 64 {
		w.header = make(http.Header)
	}
}

// appendStatusLine appends "HTTP/1.1 code reason\r\n", with net/http's
// reason phrases.
func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendHeaderFields appends the fields of h except Transfer-Encoding (the
// writer frames the body itself), trailers declared with
// http.TrailerPrefix and, in an interim response, Content-Length.
func appendHeaderFields(b []byte, h http.Header, interim bool) []byte {
	for k, vv := range h {
		if k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) ||
			(interim && k == "Content-Length") {
			continue
		}
		for _, v := range vv {
			b = appendSafeField(b, k, v)
		}
	}
	return b
}

// appendSafeField appends "k: v\r\n", dropping a field whose name is not a
// token and turning CR and LF in the value into spaces (as net/http does),
// so that no field can end the head or add another.
func appendSafeField(b []byte, k, v string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	b = append(b, k...)
	b = append(b, ": "...)
	start := len(b)
	b = append(b, textproto.TrimString(v)...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return append(b, "\r\n"...)
}

// appendContentLength appends a Content-Length field of n.
func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}
