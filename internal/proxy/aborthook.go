package proxy

import (
	"context"
	"sync"
)

// abortHook runs one function, set per use, when a context is cancelled:
// the fast path's cheap stand-in for context.AfterFunc on the context of a
// front-end connection, whose requests run one at a time. It registers
// with the context once, when the connection starts; each request then
// sets and clears the function it wants run, without allocating and
// without touching the context's list of children (context.AfterFunc per
// request cost about 5% of the proxy's CPU per request).
type abortHook struct {
	// ctxDone is the Done channel of the context the hook watches: a
	// context derived from it (with its own deadline or cancel) is not
	// served by the hook.
	ctxDone <-chan struct{}

	mu    sync.Mutex
	fn    func() // what to run on cancellation; nil: nothing set
	done  bool   // the context is cancelled
	fired bool   // fn was started since it was set
	// stopFn is stop, bound once.
	stopFn func() bool
}

// abortHookKey is the context key of a request's abortHook.
type abortHookKey struct{}

// withAbortHook returns ctx carrying a new abortHook registered on it.
func withAbortHook(ctx context.Context) context.Context {
	h := &abortHook{ctxDone: ctx.Done()}
	h.stopFn = h.stop
	context.AfterFunc(ctx, h.cancelled)
	return context.WithValue(ctx, abortHookKey{}, h)
}

// afterCancel arranges for fn to run when ctx is cancelled, as
// context.AfterFunc, and returns the function that undoes it (false: fn
// was started). It uses ctx's abortHook when ctx is the context the hook
// watches (not one derived from it) and the hook is free.
func afterCancel(ctx context.Context, fn func()) (stop func() bool) {
	if h, ok := ctx.Value(abortHookKey{}).(*abortHook); ok && ctx.Done() == h.ctxDone && h.set(fn) {
		return h.stopFn
	}
	return context.AfterFunc(ctx, fn)
}

// set makes fn the function to run on cancellation, at once if the
// context is cancelled already (as context.AfterFunc does). It reports
// false, changing nothing, while another function is set.
func (h *abortHook) set(fn func()) bool {
	h.mu.Lock()
	if h.fn != nil || h.fired {
		h.mu.Unlock()
		return false
	}
	if h.done {
		h.fired = true
		h.mu.Unlock()
		fn()
		return true
	}
	h.fn = fn
	h.mu.Unlock()
	return true
}

// stop clears the function set, reporting false if it was started.
func (h *abortHook) stop() bool {
	h.mu.Lock()
	fired := h.fired
	h.fn, h.fired = nil, false
	h.mu.Unlock()
	return !fired
}

// cancelled runs on the context's cancellation.
func (h *abortHook) cancelled() {
	h.mu.Lock()
	h.done = true
	fn := h.fn
	if fn != nil {
		h.fn, h.fired = nil, true
	}
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
}
