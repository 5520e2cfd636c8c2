//go:build linux

package dnsserver

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpThreadsSupported is true where a UDP socket can be read by a thread
// of its own (udp_reader: thread).
const udpThreadsSupported = true

// threadWakeInterval is the receive timeout of a thread reader's socket
// while queries flow (an idle one has none; see serveUDPThread). What it
// is for: with a receive timeout set, a signal interrupts recvmmsg (EINTR)
// instead of restarting it, so that the Go runtime's preemption signal (a
// garbage collection stopping the world, a goroutine that has held its P
// for 10 ms) brings the reader, which holds its P in a raw system call,
// back into Go at once.
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
	// busyTimeout is the receive timeout while queries flow
	// (threadWakeInterval).
	busyTimeout unix.Timeval
}

// newUDPThread takes u's socket from the runtime's poller for a thread
// reader: it duplicates the descriptor and closes u, which removes the
// socket from the poller's epoll set (else every datagram would also
// wake the poller), then makes the copy blocking, with the send timeout
// above. The socket stays bound, in its SO_REUSEPORT group, with its
// options (pktinfo). u is closed even on error. wait is the receive
// timeout while queries flow (threadWakeInterval).
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
	return &udpThread{fd: fd, busyTimeout: unix.NsecToTimeval(wait.Nanoseconds())}, nil
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
// While queries flow, it waits with a raw system call, keeping its P, and
// with the receive timeout set (see threadWakeInterval). A wait that ends
// with nothing (the timeout, or the signal by which the runtime preempts
// a goroutine that has held its P for 10 ms) means the server is idle:
// the socket's receive timeout is cleared and the next wait is a system
// call the scheduler sees, so that the P goes to other work and the
// reader is not signalled every 10 ms while nothing comes, which cost
// 0.3% of a CPU per socket. The first datagram after that pays once for
// getting a P back and setting the timeout again.
func (s *Server) serveUDPThread(t *udpThread, pktinfo bool) {
	b := newUDPBatch(nil, pktinfo)
	fd := uintptr(t.fd)
	var smp sampler
	idle := true // no receive timeout: wait seen by the scheduler
	for !t.closing.Load() {
		var e syscall.Errno
		if idle {
			e = b.recvSeen(fd, unix.MSG_WAITFORONE)
		} else {
			e = b.recv(fd, unix.MSG_WAITFORONE)
		}
		switch e {
		case 0:
			if b.n == 0 {
				continue // shut down
			}
			if idle && unix.SetsockoptTimeval(t.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &t.busyTimeout) == nil {
				idle = false
			}
		case unix.EAGAIN, unix.EINTR:
			if !idle {
				_ = unix.SetsockoptTimeval(t.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
				idle = true
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
