//go:build linux

package dnsserver

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpThreadsSupported is true where a UDP socket can be read by a thread
// of its own (udp_reader: thread).
const udpThreadsSupported = true

// threadWakeInterval is the receive timeout of a busy thread reader's
// socket (see serveUDPThread): its recvmmsg returns at least this often.
// What it is for: with a receive timeout set, a signal interrupts
// recvmmsg (EINTR) instead of restarting it, so that the Go runtime's
// preemption signal (a garbage collection stopping the world, a goroutine
// that has held its P for 10 ms) brings the reader, which holds its P in
// a raw system call, back into Go at once.
const threadWakeInterval = 100 * time.Millisecond

// threadSendTimeout bounds how long a thread reader waits for send
// buffer space; replies that still do not fit are dropped, as a full
// socket buffer drops datagrams.
const threadSendTimeout = 100 * time.Millisecond

// udpThread is a UDP socket read the way C servers read one: a thread
// blocks in recvmmsg until datagrams arrive, answers them and replies
// with sendmmsg, with no runtime poller between the kernel and the loop.
//
// Waiting through the poller costs each wake-up two epoll_pwait calls and
// a park and wake of the goroutine by the scheduler: about 2 µs of CPU
// per query more than gdnsd at 40000 queries/s on one CPU (bench/README.md
// "Where the time goes"). While queries flow, the thread instead waits
// with RawSyscall6, which the runtime does not see: the reader keeps its
// P while it waits, so GOMAXPROCS is raised by one for it (reserveProcs)
// and the rest of the program keeps the Ps it had. (A blocking Syscall6
// on every wait would let sysmon retake the P 20 µs into it and hand it
// back after, which measured 12.8 µs per query.)
type udpThread struct {
	fd      int
	closing atomic.Bool
	// wake is the receive timeout while busy (threadWakeInterval).
	wake unix.Timeval
}

// newUDPThread takes u's socket from the runtime's poller for a thread
// reader: it duplicates the descriptor and closes u, which removes the
// socket from the poller's epoll set (else every datagram would also
// wake the poller), then makes the copy blocking, with the send timeout
// above; wait is its receive timeout while busy (threadWakeInterval). The
// socket stays bound, in its SO_REUSEPORT group, with its options
// (pktinfo). u is closed even on error.
func newUDPThread(u *net.UDPConn, wait time.Duration) (*udpThread, error) {
	defer u.Close()
	rc, err := u.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp thread reader: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("udp thread reader: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("udp thread reader: duplicate socket: %w", dupErr)
	}
	send := unix.NsecToTimeval(threadSendTimeout.Nanoseconds())
	for _, step := range []struct {
		what string
		err  error
	}{
		{"set blocking", unix.SetNonblock(fd, false)},
		{"set SO_SNDTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &send)},
	} {
		if step.err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp thread reader: %s: %w", step.what, step.err)
		}
	}
	return &udpThread{fd: fd, wake: unix.NsecToTimeval(wait.Nanoseconds())}, nil
}

// stop makes the reader return: it marks the thread closing and shuts the
// socket's receive side, which wakes a recvmmsg waiting on it.
func (t *udpThread) stop() {
	t.closing.Store(true)
	_ = unix.Shutdown(t.fd, unix.SHUT_RD)
}

// close closes the socket; call it after the reader has returned.
func (t *udpThread) close() { _ = unix.Close(t.fd) }

// threadIdleAfter is how long a thread reader goes without a datagram
// before it counts as idle.
const threadIdleAfter = time.Second

// serveUDPThread reads and answers t's datagrams until t is stopped: one
// blocking recvmmsg reads every datagram waiting (up to batchSize), they
// are answered inline as by serveUDPBatch, and one sendmmsg replies.
//
// While queries flow the reader is busy: it waits with a raw system call,
// keeping its P, for which GOMAXPROCS is one higher (reserveProcs), and
// the socket has a receive timeout (threadWakeInterval). After
// s.threadIdle (threadIdleAfter) without a datagram it is idle: it gives
// the P back (GOMAXPROCS one lower again), clears the timeout and waits
// with a system call the scheduler sees. An idle reader then costs
// nothing; one that kept its P would be signalled every 10 ms (the runtime
// preempts a goroutine that has held its P that long), which cost 0.5% of
// a CPU per socket. Keeping the extra P while idle instead would let the
// process run its other goroutines on more Ps than it has CPUs whenever
// DNS is quiet, which raised the proxy's p99 latency under load from 2.6
// to 4-9 ms. The first datagram after an idle spell pays for one change of
// GOMAXPROCS (a stop of the world, tens of microseconds).
func (s *Server) serveUDPThread(t *udpThread, pktinfo bool) {
	b := newUDPBatch(nil, pktinfo)
	fd := uintptr(t.fd)
	var smp sampler
	var release func() // non-nil while busy
	defer func() {
		if release != nil {
			release()
		}
	}()
	var lastData int64
	for !t.closing.Load() {
		switch e := b.recv(fd, unix.MSG_WAITFORONE, release == nil); e {
		case 0:
			if b.n == 0 {
				continue // shut down
			}
			lastData = s.clock.nanos()
			if release == nil {
				release = t.busy()
			}
		case unix.EAGAIN, unix.EINTR:
			// The receive timeout, or a signal (the runtime's preemption).
			if release != nil && s.clock.nanos()-lastData >= int64(s.threadIdle) {
				t.idle()
				release()
				release = nil
			}
			continue
		default:
			// Transient (e.g. no buffer space): do not spin on it.
			time.Sleep(time.Millisecond)
			continue
		}
		s.answerBatch(b, &smp)
		b.sendWaiting(fd)
	}
}

// busy readies t for raw waits: it reserves a P and sets the receive
// timeout, returning the function that gives the P back, or nil (the
// reader stays idle) if the timeout cannot be set.
func (t *udpThread) busy() (release func()) {
	if unix.SetsockoptTimeval(t.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &t.wake) != nil {
		return nil
	}
	return reserveProcs(1)
}

// idle clears t's receive timeout, for waits the scheduler sees.
func (t *udpThread) idle() {
	_ = unix.SetsockoptTimeval(t.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
}

// sendWaiting writes the queued datagrams on the blocking descriptor fd,
// waiting for buffer space up to the send timeout, then forgets them. A
// datagram the kernel refuses is skipped; after a timeout the rest are
// dropped.
func (b *udpBatch) sendWaiting(fd uintptr) {
	for b.sendOff < b.sendN {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdrs[b.sendOff])),
			uintptr(b.sendN-b.sendOff), 0, 0, 0)
		switch e {
		case 0:
			b.sendOff += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			b.sendOff = b.sendN
		default:
			b.sendOff++
		}
	}
	b.sent()
}
