//go:build !unix

package proxy

import "errors"

// frontReadsRaw: without non-blocking reads of a descriptor, the front end
// hands every connection to net/http.
const frontReadsRaw = false

func readNow(uintptr, []byte) (int, bool, error) {
	return 0, false, errors.ErrUnsupported
}
