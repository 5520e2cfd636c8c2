//go:build linux

package proxy

import "syscall"

// frontReadsRaw: the front end runs here (see frontConn.run; Run starts it
// only where this is true).
const frontReadsRaw = true

// readNow reads from fd without blocking; again reports that nothing was
// there to read.
func readNow(fd uintptr, p []byte) (n int, again bool, err error) {
	for {
		n, err = syscall.Read(int(fd), p)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, true, nil
		}
		return n, false, err
	}
}
