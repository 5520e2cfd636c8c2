package dnsserver

import (
	"context"
	"sync/atomic"
	"time"
)

// coarseTick is how often the coarse clock advances.
const coarseTick = 5 * time.Millisecond

// coarseClock is a clock the hot path reads without asking the kernel
// (reading the time costs tens of nanoseconds on common virtual machines,
// as much as answering from the cache). Rate limiting and the age of
// cached routed answers need no better than a few milliseconds.
type coarseClock struct{ ns atomic.Int64 }

func newCoarseClock() *coarseClock {
	c := &coarseClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

// Now returns the time at the last tick.
func (c *coarseClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// nanos returns the time at the last tick in Unix nanoseconds.
func (c *coarseClock) nanos() int64 { return c.ns.Load() }

// run advances the clock until ctx is done.
func (c *coarseClock) run(ctx context.Context) {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.ns.Store(time.Now().UnixNano())
		}
	}
}

// wallNanos is the precise clock of a Handler used without a Server.
func wallNanos() int64 { return time.Now().UnixNano() }
