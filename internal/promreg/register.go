// Package promreg holds gslb's one rule for registering Prometheus
// collectors on an injected registry: parts are rebuilt on reload (and in
// tests) against the same registry, so a collector already registered with
// the same descriptors is reused rather than reported as a conflict.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the identical
// collector already registered. Any other registration error is returned
// with c, which then counts without being exported.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

// MustRegister is Register for collectors whose failure to export must not
// stop the part that owns them: a conflicting registration leaves c counting
// unexported.
func MustRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, _ = Register(reg, c)
	return c
}
