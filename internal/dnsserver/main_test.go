package dnsserver

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// listener, reader and connection goroutine must end with Run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
