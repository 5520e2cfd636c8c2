package proxy

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// frontHeadEnd returns the length of the request head at the start of buf
// (blank line included) when buf holds a complete head whose every line
// ends in CRLF; 0 while the head is incomplete. bareLF reports a LF that no
// CR precedes: such a head is net/http's to read (it accepts bare LF line
// endings), not the front end's. buf[:from] was searched already and
// holds no LF that ends the head or is bare, so the search starts at from
// (a head that arrives in pieces is not searched from its start each
// time).
func frontHeadEnd(buf []byte, from int) (n int, bareLF bool) {
	for i := from; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0, false
		}
		j += i
		if j == 0 || buf[j-1] != '\r' {
			return 0, true
		}
		if j >= 3 && buf[j-2] == '\n' && buf[j-3] == '\r' {
			return j + 1, false
		}
		i = j + 1
	}
}

// parseFrontRequest reads a request head (as delimited by frontHeadEnd)
// that the front end serves itself, and builds the request exactly as
// net/http's server would. It accepts only the plainest requests — GET or
// HEAD, HTTP/1.1, an origin-form target, exactly one valid Host, CRLF
// line endings, token field names, no obs-fold, no control characters in
// values, and no Content-Length, Transfer-Encoding, Upgrade or Expect —
// and reports false for anything else, which is then left to net/http:
// every request the front end serves is one net/http reads the same way
// (FuzzFrontRequestMatchesNetHTTP checks this), and every ambiguous one is
// read by net/http alone.
//
// The strings of the request share one copy of the head. The request is
// returned as a value: the caller's copy with its context (WithContext)
// is then the only one on the heap.
func parseFrontRequest(head []byte) (http.Request, bool) {
	if len(head) < 4 {
		return http.Request{}, false
	}
	hs := string(head[:len(head)-4]) // without the final CRLF CRLF
	line, rest, _ := strings.Cut(hs, "\r\n")
	var method string
	switch {
	case strings.HasPrefix(line, "GET "):
		method, line = http.MethodGet, line[4:]
	case strings.HasPrefix(line, "HEAD "):
		method, line = http.MethodHead, line[5:]
	default:
		return http.Request{}, false
	}
	target, proto, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return http.Request{}, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return http.Request{}, false
	}

	// Count the fields first: one backing array holds every value, as
	// net/textproto does.
	lines := 0
	if rest != "" {
		lines = strings.Count(rest, "\r\n") + 1
	}
	hdr := make(http.Header, lines)
	vals := make([]string, 0, lines)
	host, hosts := "", 0
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(field, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return http.Request{}, false // includes obs-fold (a leading SP or HTAB)
		}
		value = strings.Trim(value, " \t")
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			host, hosts = value, hosts+1
			continue // net/http moves it to Request.Host
		case "Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Http2-Settings":
			return http.Request{}, false // framing and protocol switches: net/http's
		}
		vals = append(vals, value)
		v := vals[len(vals)-1 : len(vals) : len(vals)]
		if old, ok := hdr[key]; ok {
			hdr[key] = append(old, v...)
		} else {
			hdr[key] = v
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return http.Request{}, false // net/http answers 400
	}
	// As net/http does for HTTP/1.0 caches (RFC 7234 §5.4).
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Body:       http.NoBody,
		Host:       host,
		Close:      httpguts.HeaderValuesContainsToken(hdr["Connection"], "close"),
		RequestURI: target,
	}, true
}
