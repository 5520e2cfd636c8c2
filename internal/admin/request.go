package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// MaxReasonLength bounds the reason of a drain, in bytes.
const MaxReasonLength = 512

// drainRequest is the optional JSON body of a drain call.
type drainRequest struct {
	Reason string `json:"reason"`
}

// errBodyTooLarge is returned when a body exceeds the configured limit.
var errBodyTooLarge = errors.New("request body too large")

// decodeDrainRequest decodes an optional {"reason": "..."} body read
// through an http.MaxBytesReader. An empty body is a drain without reason.
func decodeDrainRequest(body io.Reader) (drainRequest, error) {
	var req drainRequest
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, errBodyTooLarge
		}
		return req, fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return drainRequest{}, fmt.Errorf("decode body: want {\"reason\": \"...\"}: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return drainRequest{}, errors.New("decode body: unexpected data after the JSON object")
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if err := checkReason(req.Reason); err != nil {
		return drainRequest{}, err
	}
	return req, nil
}

// checkReason accepts short, printable, valid UTF-8 text.
func checkReason(s string) error {
	if len(s) > MaxReasonLength {
		return fmt.Errorf("reason longer than %d bytes", MaxReasonLength)
	}
	if !utf8.ValidString(s) {
		return errors.New("reason is not valid UTF-8")
	}
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return errors.New("reason contains control or invalid characters")
		}
	}
	return nil
}

// explainRequest is a parsed explain query.
type explainRequest struct {
	Name   string     // fully qualified, lower case
	QType  uint16     // dns.TypeA, dns.TypeAAAA or 0 for both
	Client netip.Addr // invalid when not given
	Text   bool       // format=text
}

// parseExplainQuery parses name=, type=, client= and format= from a raw
// URL query.
func parseExplainQuery(rawQuery string) (explainRequest, error) {
	var req explainRequest
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return req, fmt.Errorf("parse query: %w", err)
	}
	for k, v := range q {
		switch k {
		case "name", "type", "client", "format":
			if len(v) > 1 {
				return req, fmt.Errorf("parameter %q given %d times", k, len(v))
			}
		default:
			return req, fmt.Errorf("unknown parameter %q (want name, type, client, format)", truncate(k, 32))
		}
	}
	name := strings.TrimSpace(q.Get("name"))
	if name == "" {
		return req, errors.New("parameter name is required")
	}
	if len(name) > 255 {
		return req, errors.New("parameter name is longer than 255 bytes")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return req, fmt.Errorf("parameter name %q is not a domain name", truncate(name, 64))
	}
	req.Name = strings.ToLower(dns.Fqdn(name))
	switch t := strings.ToUpper(strings.TrimSpace(q.Get("type"))); t {
	case "", "ANY":
		req.QType = 0
	case "A":
		req.QType = dns.TypeA
	case "AAAA":
		req.QType = dns.TypeAAAA
	default:
		return req, fmt.Errorf("parameter type %q: want A, AAAA or ANY", truncate(t, 16))
	}
	if c := strings.TrimSpace(q.Get("client")); c != "" {
		a, err := netip.ParseAddr(c)
		if err != nil || a.Zone() != "" {
			return req, fmt.Errorf("parameter client %q is not an IP address", truncate(c, 64))
		}
		req.Client = a.Unmap()
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "text":
		req.Text = true
	default:
		return req, fmt.Errorf("parameter format %q: want json or text", truncate(f, 16))
	}
	return req, nil
}

// truncate shortens s for an error message, keeping valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
