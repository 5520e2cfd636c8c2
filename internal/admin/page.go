package admin

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"
)

//go:embed templates/status.html.tmpl
var templateFS embed.FS

// PageRefreshSeconds is how often the status page reloads itself.
const PageRefreshSeconds = 5

// pageRenderer renders the status page.
type pageRenderer struct {
	tmpl *template.Template
}

// pageData is what the status page template is given.
type pageData struct {
	StatusDocument
	Now     time.Time
	Refresh int
}

func newPageRenderer() (*pageRenderer, error) {
	t, err := template.New("status.html.tmpl").Funcs(template.FuncMap{
		"ago":      ago,
		"clock":    clock,
		"stateCls": stateClass,
	}).ParseFS(templateFS, "templates/status.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse status page template: %w", err)
	}
	return &pageRenderer{tmpl: t}, nil
}

func (p *pageRenderer) render(d pageData) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render status page: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *Server) handlePage(w http.ResponseWriter, _ *http.Request) {
	now := s.now()
	body, err := s.page.render(pageData{StatusDocument: s.status(), Now: now, Refresh: PageRefreshSeconds})
	if err != nil {
		s.log.Error("status page", zap.Error(err))
		http.Error(w, "cannot render status page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(body)
}

// stateClass maps a state to the CSS class of its colour.
func stateClass(state string) string {
	switch state {
	case StateUp, StateDown, StateDrained, StateEjected, StateDegraded:
		return "st-" + state
	default:
		return "st-unknown"
	}
}

// clock formats a time for the page (UTC, seconds).
func clock(t any) string {
	tt, ok := asTime(t)
	if !ok {
		return "—"
	}
	return tt.UTC().Format("2006-01-02 15:04:05Z")
}

// ago formats how long before now t was: "12s", "3m", "5h", "2d".
func ago(now time.Time, t any) string {
	tt, ok := asTime(t)
	if !ok {
		return ""
	}
	d := now.Sub(tt)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}
