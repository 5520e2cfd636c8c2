package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
)

// simpleHead is an upstream response head the fast path handles without
// net/http's general parser: HTTP/1.1, a final status other than 101,
// CRLF line endings, no obs-fold, no control characters (bare CR or LF,
// NUL...) in the reason or field values, no Transfer-Encoding or Trailer,
// and a body delimited by one Content-Length (or none, for HEAD, 204 and
// 304).
// Anything else (chunked or close-delimited bodies, trailers, 1xx, odd
// syntax) is left unread for http.ReadResponse.
type simpleHead struct {
	size   int   // bytes of the head, blank line included
	code   int   // status code
	length int64 // body bytes
	close  bool  // Connection: close
	lines  int   // header field lines kept
	// For copying the head's field lines as they are (see
	// writeSimpleHeadRaw): it has a Date, a Content-Type of
	// text/event-stream, the proxy's RegionHeader, a hop-by-hop field.
	date, stream, region, hop bool
}

// peekHead returns the buffered bytes of a complete response head without
// consuming them, or nil when the head does not fit in br's buffer, does
// not end in CRLF CRLF, or cannot be read.
func peekHead(br *bufio.Reader) []byte {
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+4]
		}
		if bytes.Contains(buf, []byte("\n\n")) || br.Buffered() >= br.Size() {
			return nil // bare LF endings or a large head: the general parser
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return nil
		}
	}
}

// parseSimpleHead validates head for the fast path (see simpleHead). For a
// HEAD request or a 204/304 the body is empty whatever Content-Length says.
func parseSimpleHead(head []byte, method string) (simpleHead, bool) {
	h := simpleHead{size: len(head), length: -1}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	// "HTTP/1.1 200 OK": version, three-digit status, optional reason.
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') ||
		!validFieldValue(line[12:]) {
		return h, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, false
		}
		h.code = h.code*10 + int(c-'0')
	}
	if h.code < 200 || h.code > 999 {
		return h, false
	}
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !validFieldName(name) {
			return h, false // includes obs-fold (leading space)
		}
		if !validFieldValue(value) {
			// A bare LF may end the line for net/http's parser (and the
			// head, before a CRLF): its reading is the one that counts.
			return h, false
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseLength(value)
			if !ok || h.length >= 0 {
				return h, false // duplicates are folded (or refused) by net/http
			}
			h.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Trailer")):
			return h, false
		case bytes.EqualFold(name, []byte("Date")):
			h.date = true
		case bytes.EqualFold(name, []byte("Content-Type")):
			h.stream = h.stream || len(value) >= len("text/event-stream") &&
				bytes.EqualFold(value[:len("text/event-stream")], []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte(RegionHeader)):
			h.region = true
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					h.close = true
				case len(tok) == 0, bytes.EqualFold(tok, []byte("keep-alive")):
				default:
					return h, false // names other headers to drop
				}
			}
		}
		if hopByHopName(name) {
			h.hop = true
		} else {
			h.lines++
		}
	}
	switch {
	case method == http.MethodHead || h.code == http.StatusNoContent || h.code == http.StatusNotModified:
		h.length = 0
	case h.length < 0:
		return h, false // close-delimited body
	}
	return h, true
}

// copySimpleHeaders adds the end-to-end fields of a head accepted by
// parseSimpleHead to dst.
func copySimpleHeaders(dst http.Header, head []byte, lines int) {
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	vals := make([]string, 0, lines) // one backing array, as net/textproto does
	for len(rest) > 2 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, _ := bytes.Cut(line, []byte(":"))
		if hopByHopName(name) {
			continue
		}
		key, ok := commonResponseHeaders[string(name)]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		vals = append(vals, string(bytes.Trim(value, " \t")))
		v := vals[len(vals)-1 : len(vals) : len(vals)]
		if old, ok := dst[key]; ok {
			dst[key] = append(old, v...)
		} else {
			dst[key] = v
		}
	}
}

// appendEndToEndLines appends the field lines of a head accepted by
// parseSimpleHead, as they are, except the hop-by-hop ones (hop: there
// are some).
func appendEndToEndLines(b, head []byte, hop bool) []byte {
	i := bytes.Index(head, []byte("\r\n")) + 2
	fields := head[i : len(head)-2] // without the status line and blank line
	if !hop {
		return append(b, fields...)
	}
	for len(fields) > 0 {
		j := bytes.Index(fields, []byte("\r\n")) + 2
		line := fields[:j]
		if name, _, _ := bytes.Cut(line, []byte(":")); !hopByHopName(name) {
			b = append(b, line...)
		}
		fields = fields[j:]
	}
	return b
}

// hopByHopName reports whether a response field is hop-by-hop (RFC 9110
// §7.6.1) and so not forwarded.
func hopByHopName(name []byte) bool {
	for _, h := range hopHeaders {
		if bytes.EqualFold(name, []byte(h)) {
			return true
		}
	}
	return false
}

// commonResponseHeaders interns frequent canonical response field names
// (read-only).
var commonResponseHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Cache-Control", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Location", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Vary", "X-Content-Type-Options", "X-Frame-Options", "X-Request-Id",
	} {
		m[k] = k
	}
	return m
}()

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validFieldName reports whether b is an HTTP token (RFC 9110 §5.6.2).
func validFieldName(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

// validFieldValue reports whether b holds no control character other than
// HTAB (RFC 9110 §5.5: field-vchar, SP, HTAB and obs-text), as net/textproto
// requires of field values.
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// tokenChar marks the ASCII characters allowed in a token (read-only).
var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
