package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesTheIdenticalCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "gslb_test_total", Help: "test"}
	first := MustRegister(reg, prometheus.NewCounterVec(opts, []string{"x"}))
	second := MustRegister(reg, prometheus.NewCounterVec(opts, []string{"x"}))
	if first != second {
		t.Fatal("a rebuilt part got a second, unexported collector")
	}
	second.WithLabelValues("a").Inc()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
}

func TestRegisterReportsAConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "gslb_conflict_total", Help: "a"}))
	c, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "gslb_conflict_total", Help: "b"}))
	if err == nil || c == nil {
		t.Fatalf("want a conflict error and the unregistered gauge, got %v", err)
	}
}
