package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// errorBody is the JSON body of every API error.
type errorBody struct {
	Error  string        `json:"error"`
	Errors []ConfigError `json:"errors,omitempty"`
}

// ActionResponse is the JSON body of a successful drain, undrain or reload.
type ActionResponse struct {
	OK     bool        `json:"ok"`
	Action string      `json:"action"`
	Target string      `json:"target,omitempty"`
	By     string      `json:"by"`
	Reason string      `json:"reason,omitempty"`
	At     time.Time   `json:"at"`
	Config *ConfigInfo `json:"config,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, `{"error":"encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ok, reason := s.backend.Ready()
	if !ok {
		if reason == "" {
			reason = "not ready"
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) status() StatusDocument {
	ok, reason := s.backend.Ready()
	return buildStatus(s.backend.Status(), ok, reason, s.actions.recent(), s.now())
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) {
	req, err := parseExplainQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	d, err := s.backend.Explain(req.Name, req.QType, req.Client)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
		return
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "explain %s: %v", req.Name, err)
		return
	}
	if req.Text {
		var b strings.Builder
		if err := routing.FormatExplain(&b, d); err != nil {
			writeError(w, http.StatusInternalServerError, "format explanation: %v", err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// mutation is what a mutating handler is given after authentication and
// body decoding.
type mutation struct {
	who    string
	reason string
	at     time.Time
}

// mutating authenticates the caller with the bearer token, bounds and
// decodes the optional {"reason": ...} body, and then calls h.
func (s *Server) mutating(h func(http.ResponseWriter, *http.Request, mutation)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		set := s.settings.Load()
		if !set.token.set {
			writeError(w, http.StatusForbidden, "mutating calls are disabled: no admin token is configured (set admin.token_file)")
			return
		}
		presented, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gslb-admin"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		if !set.token.matches(presented) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gslb-admin", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		if r.ContentLength > set.maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", set.maxBody)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, set.maxBody)
		req, err := decodeDrainRequest(r.Body)
		if errors.Is(err, errBodyTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", set.maxBody)
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		h(w, r, mutation{who: who(r), reason: req.Reason, at: s.now()})
	}
}

// record logs a mutation, counts it, keeps it in the recent actions and
// answers the caller.
func (s *Server) record(w http.ResponseWriter, m mutation, action, target string, err error) {
	target = truncate(target, 128)
	a := Action{At: m.at.UTC(), Who: m.who, Action: action, Target: target, Reason: m.reason, Result: "ok"}
	code := http.StatusOK
	switch {
	case errors.Is(err, ErrNotFound):
		a.Result, code = "not_found", http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		a.Result, code = "invalid", http.StatusBadRequest
	case err != nil:
		a.Result, code = "error", http.StatusInternalServerError
		if configErrors(err) != nil {
			a.Result, code = "invalid", http.StatusUnprocessableEntity
		}
	}
	if err != nil {
		a.Error = err.Error()
	}
	s.actions.add(a)
	s.metrics.actions.WithLabelValues(action, a.Result).Inc()
	fields := []zap.Field{
		zap.String("who", a.Who), zap.String("action", action), zap.String("target", target),
		zap.String("reason", a.Reason), zap.String("result", a.Result), zap.Time("at", a.At),
	}
	if err != nil {
		s.log.Warn("admin action failed", append(fields, zap.Error(err))...)
		writeJSON(w, code, errorBody{Error: fmt.Sprintf("%s %s: %v", action, target, err), Errors: configErrors(err)})
		return
	}
	s.log.Info("admin action", fields...)
	resp := ActionResponse{OK: true, Action: action, Target: target, By: a.Who, Reason: a.Reason, At: a.At}
	if action == "reload" {
		st := s.backend.Status()
		resp.Config = &ConfigInfo{Version: st.ConfigVersion, LoadedAt: st.LoadedAt.UTC()}
		if st.Config != nil {
			resp.Config.Source, resp.Config.Demo = st.Config.Source, st.Config.Demo
		}
	}
	writeJSON(w, code, resp)
}

// currentConfig returns the running config, or nil when none is known.
func (s *Server) currentConfig() *config.Config { return s.backend.Config() }

func (s *Server) handleDrainRegion(w http.ResponseWriter, r *http.Request, m mutation) {
	region := r.PathValue("region")
	err := s.checkRegion(region)
	if err == nil {
		err = s.backend.DrainRegion(region, health.Override{By: m.who, Reason: m.reason, At: m.at})
	}
	s.record(w, m, "drain_region", region, err)
}

func (s *Server) handleUndrainRegion(w http.ResponseWriter, r *http.Request, m mutation) {
	region := r.PathValue("region")
	err := s.checkRegion(region)
	if err == nil {
		err = s.backend.UndrainRegion(region, m.who)
	}
	s.record(w, m, "undrain_region", region, err)
}

func (s *Server) handleDrainEndpoint(w http.ResponseWriter, r *http.Request, m mutation) {
	pool, ep := r.PathValue("pool"), r.PathValue("endpoint")
	err := s.checkEndpoint(pool, ep)
	if err == nil {
		err = s.backend.DrainEndpoint(pool, ep, health.Override{By: m.who, Reason: m.reason, At: m.at})
	}
	s.record(w, m, "drain_endpoint", pool+"/"+ep, err)
}

func (s *Server) handleUndrainEndpoint(w http.ResponseWriter, r *http.Request, m mutation) {
	pool, ep := r.PathValue("pool"), r.PathValue("endpoint")
	err := s.checkEndpoint(pool, ep)
	if err == nil {
		err = s.backend.UndrainEndpoint(pool, ep, m.who)
	}
	s.record(w, m, "undrain_endpoint", pool+"/"+ep, err)
}

func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request, m mutation) {
	s.record(w, m, "reload", "", s.backend.Reload())
}

// checkRegion reports an unknown region as ErrNotFound (the backend
// checks again against the config it applies the drain to).
func (s *Server) checkRegion(region string) error {
	cfg := s.currentConfig()
	if cfg != nil && cfg.Regions[region] == nil {
		return fmt.Errorf("region %q: %w", truncate(region, 64), ErrNotFound)
	}
	return nil
}

// checkEndpoint reports an unknown pool or endpoint as ErrNotFound.
func (s *Server) checkEndpoint(pool, endpoint string) error {
	cfg := s.currentConfig()
	if cfg == nil {
		return nil
	}
	p := cfg.Pools[pool]
	if p == nil {
		return fmt.Errorf("pool %q: %w", truncate(pool, 64), ErrNotFound)
	}
	for _, e := range p.Endpoints {
		if e.Name == endpoint {
			return nil
		}
	}
	return fmt.Errorf("endpoint %q of pool %q: %w", truncate(endpoint, 64), pool, ErrNotFound)
}
