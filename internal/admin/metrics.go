package admin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gslb-dev/gslb/internal/promreg"
)

// metrics are the admin API's own collectors.
type metrics struct {
	requests *prometheus.CounterVec
	actions  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_admin_requests_total",
			Help: "Admin HTTP requests by route pattern and status code.",
		}, []string{"path", "code"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gslb_admin_actions_total",
			Help: "Mutating admin calls (drain, undrain, reload) by action and result.",
		}, []string{"action", "result"}),
	}
	var err error
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.actions, err = promreg.Register(reg, m.actions); err != nil {
		return nil, err
	}
	return m, nil
}

// routeLabel turns a ServeMux pattern such as
// "POST /api/v1/regions/{region}/drain" into its bounded path label.
// Requests that matched no route are labelled "unmatched".
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

// statusRecorder remembers the status code written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument counts every request by the route pattern the mux matched.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(routeLabel(r.Pattern), strconv.Itoa(code)).Inc()
	})
}
