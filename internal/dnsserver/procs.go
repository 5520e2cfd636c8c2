package dnsserver

import (
	"runtime"
	"sync"
)

// procReservations counts the Ps that running servers' thread readers
// hold (udpThread), on top of the GOMAXPROCS the process had before the
// first reservation. GOMAXPROCS is one setting for the whole process, so
// this is the package's one piece of shared state: it serialises the
// servers' changes to it (tests run several servers at once).
var procReservations struct {
	sync.Mutex
	base, reserved int
}

// reserveProcs raises GOMAXPROCS by n, one P for each thread reader about
// to start, so that the rest of the program keeps the Ps it had; the
// function it returns gives them back. (A change of GOMAXPROCS made
// elsewhere while reservations are held is overridden.)
func reserveProcs(n int) (release func()) {
	if n <= 0 {
		return func() {}
	}
	r := &procReservations
	r.Lock()
	if r.reserved == 0 {
		r.base = runtime.GOMAXPROCS(0)
	}
	r.reserved += n
	runtime.GOMAXPROCS(r.base + r.reserved)
	r.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.Lock()
			r.reserved -= n
			runtime.GOMAXPROCS(r.base + r.reserved)
			r.Unlock()
		})
	}
}

// unreservedProcs is GOMAXPROCS less the Ps held for thread readers: the
// CPUs the process has to itself, which sets the default number of UDP
// sockets.
func unreservedProcs() int {
	r := &procReservations
	r.Lock()
	defer r.Unlock()
	if r.reserved > 0 {
		return r.base
	}
	return runtime.GOMAXPROCS(0)
}
