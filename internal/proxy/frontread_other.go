//go:build !linux

package proxy

import "errors"

// frontReadsRaw: the front end is built for Linux (its non-blocking reads
// and the client watch's peek, connpeek_linux.go); elsewhere Run leaves
// the plain listeners to net/http.
const frontReadsRaw = false

func readNow(uintptr, []byte) (int, bool, error) {
	return 0, false, errors.ErrUnsupported
}
