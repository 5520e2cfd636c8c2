package proxy

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestAbortHook: afterCancel on a context with an abortHook behaves as
// context.AfterFunc — the function runs once on cancellation, not after
// stop, and at once when the context is cancelled already — and a second
// registration while one is set falls back to context.AfterFunc.
func TestAbortHook(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := withAbortHook(parent)

	var runs atomic.Int32
	fn := func() { runs.Add(1) }

	// Set and stopped before cancellation: never runs.
	stop := afterCancel(ctx, fn)
	if !stop() {
		t.Fatal("stop before cancellation reported the function started")
	}

	// Two at once: the second is a plain AfterFunc; both run on cancel.
	done1 := make(chan struct{})
	stop1 := afterCancel(ctx, func() { runs.Add(1); close(done1) })
	done2 := make(chan struct{})
	stop2 := afterCancel(ctx, func() { runs.Add(1); close(done2) })
	cancel()
	<-done1
	<-done2
	if got := runs.Load(); got != 2 {
		t.Fatalf("after cancel: %d runs, want 2", got)
	}
	if stop1() || stop2() {
		t.Fatal("stop after the function ran reported it not started")
	}

	// Set after cancellation: runs at once; stop reports it started.
	stop3 := afterCancel(ctx, fn)
	if got := runs.Load(); got != 3 {
		t.Fatalf("set on a cancelled context: %d runs, want 3", got)
	}
	if stop3() {
		t.Fatal("stop reported a function run at set as not started")
	}
}

// TestAfterCancelWithoutHook: a context without an abortHook gets
// context.AfterFunc.
func TestAfterCancelWithoutHook(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	stop := afterCancel(ctx, func() { close(done) })
	cancel()
	<-done
	if stop() {
		t.Fatal("stop after the function ran reported it not started")
	}
}

// TestAfterCancelDerivedContext: a context derived from the one an
// abortHook watches, with its own deadline, gets its function run when
// that deadline passes (context.AfterFunc, not the hook, which would run
// it only on the parent's cancellation). Review of bb48305.
func TestAfterCancelDerivedContext(t *testing.T) {
	conn := withAbortHook(context.Background())
	ctx, cancel := context.WithTimeout(conn, 10*time.Millisecond)
	defer cancel()
	ran := make(chan struct{})
	stop := afterCancel(ctx, func() { close(ran) })
	defer stop()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("function not run after the derived context's deadline passed")
	}
}
