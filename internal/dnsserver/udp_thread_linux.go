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

// threadWakeInterval is the receive timeout of a thread reader's socket:
// a blocked recvmmsg returns at least this often. What it is for: with a
// receive timeout set, a signal interrupts recvmmsg (EINTR) instead of
// restarting it, so that the Go runtime's preemption signal (a garbage
// collection stopping the world, a goroutine that has held its P for
// 10 ms) brings the reader, which holds its P in a raw system call, back
// into Go at once.
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
// "Where the time goes"). The thread instead makes its blocking calls
// with RawSyscall6, which the runtime does not see: the reader keeps its
// P while it waits, so Run raises GOMAXPROCS by one per thread reader
// (reserveProcs) and the rest of the program keeps the Ps it had. (A
// blocking Syscall6 instead would let sysmon retake the P 20 µs into each
// wait and hand it back after, which measured 12.8 µs per query.)
type udpThread struct {
	fd      int
	closing atomic.Bool
}

// newUDPThread takes u's socket from the runtime's poller for a thread
// reader: it duplicates the descriptor and closes u, which removes the
// socket from the poller's epoll set (else every datagram would also
// wake the poller), then makes the copy blocking, with wait as its
// receive timeout (threadWakeInterval) and the send timeout above. The
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
	wake := unix.NsecToTimeval(wait.Nanoseconds())
	send := unix.NsecToTimeval(threadSendTimeout.Nanoseconds())
	for _, step := range []struct {
		what string
		err  error
	}{
		{"set blocking", unix.SetNonblock(fd, false)},
		{"set SO_RCVTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &wake)},
		{"set SO_SNDTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &send)},
	} {
		if step.err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp thread reader: %s: %w", step.what, step.err)
		}
	}
	return &udpThread{fd: fd}, nil
}

// stop makes the reader return: it marks the thread closing and shuts the
// socket's receive side, which wakes a recvmmsg waiting on it.
func (t *udpThread) stop() {
	t.closing.Store(true)
	_ = unix.Shutdown(t.fd, unix.SHUT_RD)
}

// close closes the socket; call it after the reader has returned.
func (t *udpThread) close() { _ = unix.Close(t.fd) }

// serveUDPThread reads and answers t's datagrams until t is stopped: one
// blocking recvmmsg reads every datagram waiting (up to batchSize), they
// are answered inline as by serveUDPBatch, and one sendmmsg replies.
//
// The reader keeps its P while it waits, busy or idle. Idle, that costs
// a signal every 10 ms, by which the runtime preempts a goroutine that has
// held its P that long (0.3% of a CPU per socket here). Giving the P
// back while idle (waiting with Syscall6) was tried: the process then ran
// its other goroutines on more Ps than it has CPUs whenever DNS was quiet,
// and the proxy's p99 latency under load rose from 2.6 to 4-9 ms.
func (s *Server) serveUDPThread(t *udpThread, pktinfo bool) {
	b := newUDPBatch(nil, pktinfo)
	fd := uintptr(t.fd)
	var smp sampler
	for !t.closing.Load() {
		switch e := b.recv(fd, unix.MSG_WAITFORONE); e {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			continue // receive timeout or signal: see whether to stop
		default:
			// Transient (e.g. no buffer space): do not spin on it.
			time.Sleep(time.Millisecond)
			continue
		}
		s.answerBatch(b, &smp)
		b.sendWaiting(fd)
	}
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
