package routing

import "fmt"

// tracer collects the human-readable steps of a decision. Decide passes a
// nil tracer, and every call site checks for nil before formatting, so
// the per-query path formats nothing.
type tracer struct {
	lines []string
}

func (t *tracer) add(format string, args ...any) {
	if t != nil {
		t.lines = append(t.lines, fmt.Sprintf(format, args...))
	}
}
