package proxy

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// Server, listener, upstream connection and stream must end with its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if upstreamCert.dir != "" {
			os.RemoveAll(upstreamCert.dir)
		}
	}))
}
