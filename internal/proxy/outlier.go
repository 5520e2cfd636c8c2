package proxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/health"
)

// HealthFeed receives the proxy's passive outlier verdicts so that the
// shared health view (and so DNS answers) can steer away from an endpoint
// the proxy has ejected. health.Checker implements it. SetEjected must not
// block for long; it is called once per ejection and once per recovery.
type HealthFeed interface {
	SetEjected(pool, endpoint string, ejected bool, reason string)
}

// maxEjectionMultiplier caps the ejection-time multiplier so that
// BaseEjectionTime × multiplier cannot overflow.
const maxEjectionMultiplier = 1 << 16

// outlier is passive outlier detection in the style of Envoy and Istio:
// ConsecutiveErrors 5xx responses or gateway errors in a row eject an
// endpoint for BaseEjectionTime × (times ejected), capped by
// MaxEjectionTime; the multiplier decays by one for every Interval the
// endpoint stays in. At most MaxEjectionPercent of a pool's endpoints (but
// at least one) are ejected at once.
type outlier struct {
	cfg  config.ProxyOutlier
	now  func() time.Time
	feed HealthFeed // nil unless FeedHealth
	// health, when set, ends an ejection early once an active health check
	// has seen the endpoint go down and come back up since it was ejected
	// (as Envoy un-ejects a host on a passing active health check).
	health health.Source
	log    *zap.Logger
	m      *metrics
}

// success records a non-5xx response from u.
func (o *outlier) success(u *upstream) {
	if u.fails.Load() != 0 {
		u.fails.Store(0)
	}
}

// failure records a 5xx response or gateway error from u and ejects it once
// the threshold is reached.
func (o *outlier) failure(u *upstream, reason string) {
	n := u.fails.Add(1)
	if int(n) < o.cfg.ConsecutiveErrors || u.ejectedUntil.Load() != 0 {
		return
	}
	o.eject(u, reason)
}

// maxEjected is how many of n endpoints may be ejected at once.
func maxEjected(n, percent int) int {
	if n <= 0 || percent <= 0 {
		return 0
	}
	m := n * percent / 100
	if m < 1 {
		m = 1
	}
	return m
}

func (o *outlier) eject(u *upstream, reason string) {
	p := u.pool.Load()
	now := o.now()
	p.mu.Lock()
	if u.ejectedUntil.Load() != 0 {
		p.mu.Unlock()
		return
	}
	ejected := 0
	for _, h := range p.hosts {
		if h.ejected(now) {
			ejected++
		}
	}
	if ejected >= maxEjected(len(p.hosts), o.cfg.MaxEjectionPercent) {
		p.mu.Unlock()
		o.log.Debug("outlier ejection skipped: max ejection percent reached",
			zap.String("pool", u.poolName), zap.String("endpoint", u.endpoint), zap.Int("ejected", ejected))
		return
	}
	u.mu.Lock()
	if !u.lastEjectEnd.IsZero() && o.cfg.Interval > 0 {
		decay := int(now.Sub(u.lastEjectEnd) / o.cfg.Interval)
		u.ejections = max(0, u.ejections-decay)
	}
	if u.ejections < maxEjectionMultiplier {
		u.ejections++
	}
	d := o.cfg.BaseEjectionTime * time.Duration(u.ejections)
	if o.cfg.MaxEjectionTime > 0 && d > o.cfg.MaxEjectionTime {
		d = o.cfg.MaxEjectionTime
	}
	times := u.ejections
	u.mu.Unlock()
	u.ejectedAt.Store(now.UnixNano())
	u.ejectedUntil.Store(now.Add(d).UnixNano())
	p.mu.Unlock()

	o.m.ejections.WithLabelValues(u.poolName, u.endpoint).Inc()
	o.log.Warn("endpoint ejected by outlier detection",
		zap.String("pool", u.poolName), zap.String("endpoint", u.endpoint), zap.String("region", u.region),
		zap.String("reason", reason), zap.Duration("for", d), zap.Int("times", times))
	if o.feed != nil {
		o.feed.SetEjected(u.poolName, u.endpoint, true, reason)
	}
}

// recoverIfDue returns u to service when its ejection time has passed.
func (o *outlier) recoverIfDue(u *upstream, now time.Time) {
	until := u.ejectedUntil.Load()
	if until == 0 || now.UnixNano() < until {
		return
	}
	o.release(u, until, now, "ejection time elapsed")
}

// release ends u's ejection (if it is still the one that ends at until).
func (o *outlier) release(u *upstream, until int64, now time.Time, reason string) {
	if !u.ejectedUntil.CompareAndSwap(until, 0) {
		return
	}
	u.fails.Store(0)
	u.mu.Lock()
	u.lastEjectEnd = now
	u.mu.Unlock()
	o.log.Info("endpoint returned from outlier ejection",
		zap.String("pool", u.poolName), zap.String("endpoint", u.endpoint), zap.String("region", u.region),
		zap.String("reason", reason))
	if o.feed != nil {
		o.feed.SetEjected(u.poolName, u.endpoint, false, reason)
	}
}

// sweep recovers every upstream of r whose ejection has elapsed, so that
// recovery is reported even when no traffic reaches the endpoint (with
// FeedHealth, DNS and the router stop sending it any).
func (o *outlier) sweep(r *registry) {
	now := o.now()
	var snap *health.Snapshot
	if o.health != nil {
		snap = o.health.Snapshot()
	}
	for _, u := range r.byKey {
		until := u.ejectedUntil.Load()
		if until == 0 {
			continue
		}
		if snap != nil {
			st, ok := snap.Endpoint(u.poolName, u.endpoint)
			if ok && st.Healthy && !st.Drained && st.Since.UnixNano() > u.ejectedAt.Load() {
				o.release(u, until, now, "active health check passed")
				continue
			}
		}
		o.recoverIfDue(u, now)
	}
}
