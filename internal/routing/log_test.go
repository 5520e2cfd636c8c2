package routing_test

import (
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gslb-dev/gslb/internal/routing"
)

func TestAllDownLoggedOncePerTransition(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	core, logs := observer.New(zapcore.InfoLevel)
	e := routing.NewWithDeps(cfg, src, nil, routing.Deps{Logger: zap.New(core)})
	down := []string{"web/east-1", "web/east-2", "web/west-1", "web/eu-1"}
	src.p.Store(snapshot(cfg, 1, down, nil))
	for range 5 {
		e.Decide("fo", q("3.80.1.2", A))
	}
	e.Decide("fo", q("3.80.1.2", AAAA)) // IPv6 is still up: no event
	src.p.Store(snapshot(cfg, 2, nil, nil))
	for range 5 {
		e.Decide("fo", q("3.80.1.2", A))
	}
	var msgs []string
	for _, l := range logs.All() {
		msgs = append(msgs, l.Level.String()+": "+l.Message)
	}
	want := []string{"warn: no healthy region for service", "info: service has a healthy region again"}
	if len(msgs) != len(want) || msgs[0] != want[0] || msgs[1] != want[1] {
		t.Errorf("logs = %q, want %q", msgs, want)
	}
}

func TestDecideConcurrentWithSnapshotChanges(t *testing.T) {
	cfg := testConfig(t)
	src := &source{}
	src.p.Store(snapshot(cfg, 1, nil, nil))
	e := routing.New(cfg, src, newLocator(t, cfg, "geoip2"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				d := e.Decide([]string{"geo", "wt", "all", "fo"}[g], q("13.56.1.1", A))
				if len(d.Targets) == 0 {
					t.Errorf("iteration %d: no targets", i)
					return
				}
			}
		}()
	}
	for v := range 50 {
		var down []string
		if v%2 == 1 {
			down = []string{"web/west-1"}
		}
		src.p.Store(snapshot(cfg, uint64(v+2), down, nil))
	}
	wg.Wait()
}
