package proxy

import "net/http"

// recorder wraps the client's ResponseWriter to learn the status and size
// of the response. Unwrap lets http.ResponseController (used by the
// ReverseProxy for flushing, hijacking and deadlines) reach the original.
type recorder struct {
	http.ResponseWriter
	status int // 0 until a final status is written
	bytes  int64
}

// WriteHeader implements http.ResponseWriter. Informational 1xx statuses
// (other than 101) may precede the final one and are not recorded. A
// final response without a Content-Type keeps none (keepNoContentType):
// every forwarded response, of the fast path or the ReverseProxy, is
// written here, and only the client's header can carry the nil value that
// stops net/http's sniffing (the ReverseProxy copies values, not keys).
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	if code >= 200 {
		keepNoContentType(r.Header())
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the wrapped ResponseWriter.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
