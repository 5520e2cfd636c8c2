//go:build !unix

package proxy

import "syscall"

// watchClient does not watch on this platform: a client's close is seen
// when its response is written.
func watchClient(syscall.RawConn, func() bool, func()) {}
