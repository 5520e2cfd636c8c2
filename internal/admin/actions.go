package admin

import (
	"sync"
	"time"
)

// DefaultRecentActions is how many admin mutations the status keeps.
const DefaultRecentActions = 50

// Action is one mutating admin call: who asked what, when, and how it went.
type Action struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"` // drain_region, undrain_region, drain_endpoint, undrain_endpoint, reload
	Target string    `json:"target,omitempty"`
	Reason string    `json:"reason,omitempty"`
	// Result is "ok", "not_found", "invalid" or "error".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// actionLog is a bounded list of recent actions, oldest first.
type actionLog struct {
	mu    sync.Mutex
	max   int
	items []Action
}

func newActionLog(max int) *actionLog {
	if max <= 0 {
		max = DefaultRecentActions
	}
	return &actionLog{max: max}
}

func (l *actionLog) add(a Action) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) >= l.max {
		copy(l.items, l.items[1:])
		l.items = l.items[:len(l.items)-1]
	}
	l.items = append(l.items, a)
}

// recent returns the actions, newest first.
func (l *actionLog) recent() []Action {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Action, len(l.items))
	for i, a := range l.items {
		out[len(l.items)-1-i] = a
	}
	return out
}
