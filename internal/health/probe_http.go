package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gslb-dev/gslb/internal/config"
)

// MaxProbeResponseHeaderBytes bounds the response headers an HTTP probe
// reads; a target sending more fails the probe.
const MaxProbeResponseHeaderBytes = 64 << 10

// httpProber holds what an HTTP(S) probe prepares once per check.
type httpProber struct {
	check     config.Check
	scheme    string
	client    *http.Client
	transport *http.Transport
	bodyRE    *regexp.Regexp
	expect    []string
}

func newHTTPProber(check config.Check) (prober, error) {
	h := &httpProber{check: check, scheme: check.Type, expect: check.ExpectStatus}
	if len(h.expect) == 0 {
		h.expect = []string{"2xx"}
	}
	if check.ExpectBodyRegexp != "" {
		re, err := regexp.Compile(check.ExpectBodyRegexp)
		if err != nil {
			return prober{}, fmt.Errorf("compile expect_body_regexp: %w", err)
		}
		h.bodyRE = re
	}
	tr := &http.Transport{
		Proxy:                  nil, // never go through HTTP_PROXY: probe the endpoint itself
		DialContext:            (&net.Dialer{}).DialContext,
		DisableKeepAlives:      true, // every probe opens a fresh connection
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxProbeResponseHeaderBytes,
		ForceAttemptHTTP2:      false,
	}
	if check.Type == "https" {
		tc, err := probeTLSConfig(check)
		if err != nil {
			return prober{}, err
		}
		tr.TLSClientConfig = tc
	}
	h.transport = tr
	h.client = &http.Client{
		Transport: tr,
		// Redirects are not followed: a 3xx is judged against expect_status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return prober{run: h.probe, close: tr.CloseIdleConnections}, nil
}

// probeTLSConfig builds the client TLS config of an https check:
// verification on unless insecure_skip_verify, roots from ca_file when set,
// SNI from sni or else the host header.
func probeTLSConfig(check config.Check) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: check.InsecureSkipVerify, //nolint:gosec // explicit operator choice
	}
	switch {
	case check.SNI != "":
		tc.ServerName = check.SNI
	case check.Host != "":
		tc.ServerName = hostOnly(check.Host)
	}
	if check.CAFile != "" {
		pem, err := os.ReadFile(check.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q holds no PEM certificate", check.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// hostOnly strips a port from a Host header value.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

func (h *httpProber) probe(ctx context.Context, target netip.AddrPort) Result {
	url := h.scheme + "://" + target.String() + h.check.Path
	req, err := http.NewRequestWithContext(ctx, h.check.Method, url, nil)
	if err != nil {
		return Result{Reason: "bad request", Detail: err.Error()}
	}
	req.Header.Set("User-Agent", "gslb-health-check")
	for k, v := range h.check.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if h.check.Host != "" {
		req.Host = h.check.Host
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return failure(ctx, err)
	}
	// Closing without draining is fine: keep-alives are off, so Close
	// drops the connection instead of reading the rest of the body.
	defer resp.Body.Close()
	if !statusMatches(resp.StatusCode, h.expect) {
		return Result{Reason: "status " + strconv.Itoa(resp.StatusCode),
			Detail: fmt.Sprintf("status %d not in %v", resp.StatusCode, h.expect)}
	}
	if h.check.ExpectBody == "" && h.bodyRE == nil {
		return Result{OK: true, Reason: ReasonOK}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max(h.check.BodyLimit, 1)))
	if err != nil {
		return failure(ctx, err)
	}
	if h.check.ExpectBody != "" && !bytes.Contains(body, []byte(h.check.ExpectBody)) {
		return Result{Reason: ReasonBodyMismatch,
			Detail: fmt.Sprintf("%q not found in the first %d bytes of the body", h.check.ExpectBody, len(body))}
	}
	if h.bodyRE != nil && !h.bodyRE.Match(body) {
		return Result{Reason: ReasonBodyMismatch,
			Detail: fmt.Sprintf("/%s/ does not match the first %d bytes of the body", h.bodyRE, len(body))}
	}
	return Result{OK: true, Reason: ReasonOK}
}

// statusMatches reports whether code is one of expect: exact codes ("200")
// or classes ("2xx").
func statusMatches(code int, expect []string) bool {
	for _, e := range expect {
		if len(e) == 3 && strings.HasSuffix(e, "xx") {
			if e[0] >= '1' && e[0] <= '9' && code/100 == int(e[0]-'0') {
				return true
			}
			continue
		}
		if n, err := strconv.Atoi(e); err == nil && n == code {
			return true
		}
	}
	return false
}
