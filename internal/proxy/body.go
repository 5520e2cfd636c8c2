package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
)

// requestBody is a request body prepared for one or more attempts: either
// buffered (replayable, so a retry can resend it) or streamed once.
type requestBody struct {
	replayable bool
	buf        []byte        // the whole body when replayable
	stream     io.ReadCloser // the body when not replayable
	hasBody    bool
}

// prepareBody buffers r's body when it is at most limit bytes; a larger (or
// longer than announced) body is streamed and cannot be retried.
func prepareBody(r *http.Request, limit int64) (requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return requestBody{replayable: true}, nil
	}
	if r.ContentLength > limit || limit <= 0 {
		return requestBody{stream: r.Body, hasBody: true}, nil
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	var b bytes.Buffer
	b.Grow(int(size) + 1)
	if _, err := b.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return requestBody{}, err
	}
	if int64(b.Len()) <= limit {
		return requestBody{replayable: true, buf: b.Bytes(), hasBody: true}, nil
	}
	// Too long to buffer: send what was read, then the rest, once.
	return requestBody{
		stream: struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b.Bytes()), r.Body), r.Body},
		hasBody: true,
	}, nil
}

// attach sets out's body for one attempt.
func (b *requestBody) attach(out *http.Request) {
	switch {
	case !b.hasBody:
		return
	case !b.replayable:
		out.Body = b.stream
	default:
		buf := b.buf
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.ContentLength = int64(len(buf))
		out.TransferEncoding = nil
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		if len(buf) == 0 {
			out.Body = http.NoBody
		}
	}
}

// neverReached reports whether err proves the request never reached the
// upstream: the connection could not be established (refused, no route,
// dial timeout), so even a non-idempotent request may be sent elsewhere.
func neverReached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isTimeout reports whether err is a timeout (dial, response header).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorReason names an upstream error briefly for logs and the health view.
func errorReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "gateway error"
}
