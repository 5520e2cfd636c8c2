package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gslb-dev/gslb/internal/config"
)

// MaxTokenFileBytes bounds the size of an admin token file.
const MaxTokenFileBytes = 4096

// MaxActorLength bounds the X-Gslb-Actor header kept in the audit trail.
const MaxActorLength = 64

// ActorHeader names the optional request header saying which operator acts.
const ActorHeader = "X-Gslb-Actor"

// token is the admin bearer token, kept only as its SHA-256 digest so the
// comparison takes the same time whatever the lengths.
type token struct {
	set    bool
	digest [sha256.Size]byte
	source string // "file", "inline" or "none"; never the token itself
}

// loadToken reads the token from cfg.TokenFile (whitespace trimmed) or
// cfg.Token. A configured but empty or unreadable token file is an error.
func loadToken(cfg config.AdminConfig) (token, error) {
	if cfg.TokenFile != "" {
		f, err := os.Open(cfg.TokenFile)
		if err != nil {
			return token{}, fmt.Errorf("read admin token file: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxTokenFileBytes+1))
		if err != nil {
			return token{}, fmt.Errorf("read admin token file %q: %w", cfg.TokenFile, err)
		}
		if len(data) > MaxTokenFileBytes {
			return token{}, fmt.Errorf("read admin token file %q: larger than %d bytes", cfg.TokenFile, MaxTokenFileBytes)
		}
		t := strings.TrimSpace(string(data))
		if t == "" {
			return token{}, fmt.Errorf("read admin token file %q: file is empty", cfg.TokenFile)
		}
		return token{set: true, digest: sha256.Sum256([]byte(t)), source: "file"}, nil
	}
	if t := strings.TrimSpace(cfg.Token); t != "" {
		return token{set: true, digest: sha256.Sum256([]byte(t)), source: "inline"}, nil
	}
	return token{source: "none"}, nil
}

// matches reports in constant time whether presented is the token.
func (t token) matches(presented string) bool {
	if !t.set {
		return false
	}
	d := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// who names the caller of a mutating request for logs and the audit
// trail: "admin-api@<remote ip>", prefixed by a sanitised X-Gslb-Actor.
func who(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	id := "admin-api@" + host
	if actor := sanitizeActor(r.Header.Get(ActorHeader)); actor != "" {
		return actor + " via " + id
	}
	return id
}

// sanitizeActor keeps a short, printable actor name: letters, digits and
// a few punctuation marks; anything else is dropped.
func sanitizeActor(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= MaxActorLength {
			break
		}
		if r == utf8.RuneError {
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@+:/", r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
