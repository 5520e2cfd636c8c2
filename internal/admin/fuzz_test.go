package admin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/config"
)

// FuzzAdminRequest feeds untrusted drain bodies and explain query strings
// both to the decoders and through the real handler: nothing panics, the
// answer is always a client error or success (never a 5xx), and what
// reaches the backend is bounded, printable text.
func FuzzAdminRequest(f *testing.F) {
	f.Add([]byte(`{"reason":"maintenance"}`), "name=www.ecommerce.example.com&type=A&client=198.51.100.7")
	f.Add([]byte(``), "name=www.ecommerce.example.com.&format=text")
	f.Add([]byte(`{"reason":"\u0000"}`), "name=%zz")
	f.Add([]byte(`{"reason":"a"}{"reason":"b"}`), "name=x&name=y")
	f.Add([]byte(`[1,2,3]`), "client=::ffff:1.2.3.4&name=a.b&type=aaaa")

	fb := newFakeBackend(f)
	s, err := New(config.AdminConfig{Listen: "127.0.0.1:0", Token: testToken, MaxBodyBytes: 256}, fb, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()

	f.Fuzz(func(t *testing.T, body []byte, query string) {
		if req, err := decodeDrainRequest(bytes.NewReader(body)); err == nil {
			if len(req.Reason) > MaxReasonLength || !utf8.ValidString(req.Reason) || checkReason(req.Reason) != nil {
				t.Fatalf("accepted bad reason %q", req.Reason)
			}
		}
		if er, err := parseExplainQuery(query); err == nil {
			if er.Name == "" || !strings.HasSuffix(er.Name, ".") || er.Name != strings.ToLower(er.Name) {
				t.Fatalf("accepted bad name %q", er.Name)
			}
			if er.Client.IsValid() && er.Client.Is4In6() {
				t.Fatalf("client not unmapped: %v", er.Client)
			}
		}

		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/pools/storefront/endpoints/east-1/drain", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("drain body %q: status %d: %s", body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK && len(body) > 256 {
			t.Fatalf("body of %d bytes accepted over the 256-byte limit", len(body))
		}

		rec = httptest.NewRecorder()
		req = httptest.NewRequest("GET", "/api/v1/explain", nil)
		req.URL.RawQuery = query
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("explain %q: status %d: %s", query, rec.Code, rec.Body)
		}
	})
}
