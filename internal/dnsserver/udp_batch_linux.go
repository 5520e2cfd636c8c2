//go:build linux

package dnsserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// batchSize is the most datagrams one recvmmsg reads and one sendmmsg
// writes.
const batchSize = 32

// batchReadSize is the receive buffer of one datagram of a batch. A query
// is a question and an OPT record; a longer datagram is cut by the kernel
// and answered FORMERR (answerOversize).
const batchReadSize = 4096

// maxBatchesPerWait bounds the batches one RawConn.Read serves without
// waiting (see serveInWait), so that a socket that never runs dry still
// lets the loop see that it was closed.
const maxBatchesPerWait = 64

// sockaddrSize fits a sockaddr_in6 and a sockaddr_in.
const sockaddrSize = unix.SizeofSockaddrInet6

// udpBatch is one UDP loop's reusable state for recvmmsg and sendmmsg:
// headers, buffers and source addresses, allocated once, so that reading,
// answering and replying allocates nothing per datagram.
type udpBatch struct {
	rc      syscall.RawConn
	pktinfo bool

	rhdrs [batchSize]unix.Mmsghdr
	riovs [batchSize]unix.Iovec
	names [batchSize][sockaddrSize]byte
	in    [batchSize][]byte
	oob   [batchSize][]byte
	out   [batchSize][]byte // response buffers, one per received slot

	shdrs [batchSize]unix.Mmsghdr
	siovs [batchSize]unix.Iovec
	resps [batchSize][]byte // what shdrs point at, kept alive until sent
	soob  [batchSize][]byte
	// sources makes the reply control messages (with pktinfo).
	sources replySources

	// Results of the last system call made through rc.
	n     int
	errno syscall.Errno
	// sendOff and sendN: the part of shdrs being written.
	sendOff, sendN int
	// drained: the last recvmmsg read fewer than batchSize datagrams, so
	// it found the socket empty after them.
	drained bool
	// maxBatches bounds the batches served in one wait
	// (maxBatchesPerWait; tests set fewer).
	maxBatches int

	// sendF and serveF (set by serveUDPBatch) are bound once: no closure
	// per call.
	sendF, serveF func(fd uintptr) bool
}

func newUDPBatch(rc syscall.RawConn, pktinfo bool) *udpBatch {
	b := &udpBatch{rc: rc, pktinfo: pktinfo, maxBatches: maxBatchesPerWait}
	for i := range batchSize {
		b.in[i] = make([]byte, batchReadSize)
		b.out[i] = make([]byte, 0, 4096)
		b.riovs[i].Base = &b.in[i][0]
		b.riovs[i].SetLen(batchReadSize)
		h := &b.rhdrs[i].Hdr
		h.Name = &b.names[i][0]
		h.Iov = &b.riovs[i]
		h.SetIovlen(1)
		if pktinfo {
			b.oob[i] = make([]byte, oobSize)
			h.Control = &b.oob[i][0]
		}
	}
	b.sendF = b.sendmmsg
	return b
}

// recvmmsg reads up to batchSize datagrams into the batch, returning
// false (wait for the socket) when there is none.
//
// recvmmsg and sendmmsg never block (MSG_DONTWAIT; the netpoller does
// the waiting), so they are raw system calls: with Syscall6 the runtime
// marks the goroutine as in a system call, and with one P sysmon retakes
// that P from nearly every sendmmsg (delivering a batch on loopback takes
// longer than its 20 µs threshold) and is woken on every call, which cost
// a third of the server's CPU under load.
func (b *udpBatch) recvmmsg(fd uintptr) bool {
	for {
		switch e := b.recv(fd, unix.MSG_DONTWAIT, false); e {
		case 0:
			b.errno = 0
			b.drained = b.n < batchSize
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			b.errno = e
			return true
		}
	}
}

// recv makes one recvmmsg system call on fd with flags, reading up to
// batchSize datagrams into the batch (b.n, 0 on error), and returns its
// error number. It is a raw system call, unseen by the scheduler, unless
// seen is set: then it is one the scheduler sees, for a wait that may be
// long, during which the goroutine's P goes to other work.
func (b *udpBatch) recv(fd uintptr, flags int, seen bool) syscall.Errno {
	for i := range b.rhdrs {
		h := &b.rhdrs[i]
		h.Len = 0
		h.Hdr.Namelen = sockaddrSize
		h.Hdr.Flags = 0
		if b.pktinfo {
			h.Hdr.SetControllen(oobSize)
		}
	}
	var n uintptr
	var e syscall.Errno
	if seen {
		n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdrs[0])), batchSize,
			uintptr(flags), 0, 0)
	} else {
		n, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdrs[0])), batchSize,
			uintptr(flags), 0, 0)
	}
	b.n = 0
	if e == 0 {
		b.n = int(n)
	}
	return e
}

// sendmmsg is the RawConn.Write callback: it writes shdrs[sendOff:sendN],
// returning false (wait for the socket) when the socket buffer is full.
// A datagram the kernel refuses is skipped, as a failed WriteTo would be.
func (b *udpBatch) sendmmsg(fd uintptr) bool {
	for b.sendOff < b.sendN {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdrs[b.sendOff])),
			uintptr(b.sendN-b.sendOff), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.sendOff += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			b.sendOff++ // this datagram cannot be sent; go on with the rest
		}
	}
	return true
}

// queue adds resp, addressed to the source of received slot i, to the
// datagrams of the next flush.
func (b *udpBatch) queue(i int, resp []byte) {
	k := b.sendN
	b.resps[k] = resp
	b.siovs[k].Base = &resp[0]
	b.siovs[k].SetLen(len(resp))
	h := &b.shdrs[k].Hdr
	*h = unix.Msghdr{Name: &b.names[i][0], Namelen: b.rhdrs[i].Hdr.Namelen, Iov: &b.siovs[k]}
	h.SetIovlen(1)
	if b.pktinfo {
		nn := int(b.rhdrs[i].Hdr.Controllen)
		if c := b.sources.of(b.oob[i][:min(nn, len(b.oob[i]))]); len(c) > 0 {
			b.soob[k] = c
			h.Control = &c[0]
			h.SetControllen(len(c))
		}
	}
	b.sendN++
}

// send writes the queued datagrams on fd without waiting, and reports
// whether all went (false: the socket buffer is full; flush finishes).
func (b *udpBatch) send(fd uintptr) bool {
	if b.sendN == 0 {
		return true
	}
	b.sendOff = 0
	if !b.sendmmsg(fd) {
		return false
	}
	b.sent()
	return true
}

// flush writes the queued datagrams not written yet, waiting for the
// socket as needed.
func (b *udpBatch) flush() error {
	if b.sendOff >= b.sendN {
		b.sent()
		return nil
	}
	err := b.rc.Write(b.sendF)
	b.sent()
	return err
}

// sent forgets the queued datagrams.
func (b *udpBatch) sent() {
	clear(b.resps[:b.sendN])
	clear(b.soob[:b.sendN])
	b.sendN, b.sendOff = 0, 0
}

// serveUDPBatch serves u with recvmmsg and sendmmsg: it reads every
// datagram waiting (up to batchSize) in one system call, answers each
// inline into its own buffer, subject to response rate limiting, and
// writes the replies in one system call. It returns false, having read
// nothing, when the kernel lacks recvmmsg; otherwise it returns when u is
// closed.
func (s *Server) serveUDPBatch(u *net.UDPConn, pktinfo bool) bool {
	rc, err := u.SyscallConn()
	if err != nil {
		return false
	}
	b := newUDPBatch(rc, pktinfo)
	var smp sampler
	b.serveF = func(fd uintptr) bool { return s.serveInWait(b, fd, &smp) }
	for {
		b.n, b.errno, b.drained = 0, 0, false
		err := rc.Read(b.serveF)
		if errors.Is(err, net.ErrClosed) {
			return true
		}
		if b.sendN > 0 { // the socket buffer filled: wait to send the rest
			if err := b.flush(); errors.Is(err, net.ErrClosed) {
				return true
			}
		}
		switch {
		case b.errno == unix.ENOSYS:
			return false
		case err != nil, b.errno != 0:
			// Transient (e.g. no buffer space): do not spin on it.
			time.Sleep(time.Millisecond)
		}
	}
}

// serveInWait is the callback of one RawConn.Read in which the loop reads,
// answers and replies batch after batch. RawConn.Read arms the runtime's
// readiness tracking once, before the first call, and datagrams that
// arrive while a batch is answered end the next wait at once: so after a
// recvmmsg that left the socket empty (drained), the loop waits (returns
// false) without another recvmmsg, which would only find nothing. That
// spares one system call per wake-up (9% of the system calls at 27000
// queries/s, 4% of the CPU per query; bench/README.md). It returns true,
// ending the Read, after b.maxBatches batches
// without a wait (the serve loop then sees a close), on an error (in
// b.errno), or with replies left to send when the socket buffer is full.
func (s *Server) serveInWait(b *udpBatch, fd uintptr, smp *sampler) bool {
	for range b.maxBatches {
		if b.drained {
			b.drained = false
			return false
		}
		if !b.recvmmsg(fd) {
			return false
		}
		if b.errno != 0 {
			return true
		}
		s.answerBatch(b, smp)
		if !b.send(fd) {
			return true
		}
	}
	return true
}

// answerBatch answers the datagrams of the batch, queueing the replies.
func (s *Server) answerBatch(b *udpBatch, smp *sampler) {
	for i := range b.n {
		h := &b.rhdrs[i]
		src, ok := sockaddrAddrPort(b.names[i][:min(int(h.Hdr.Namelen), sockaddrSize)])
		if !ok {
			continue
		}
		req := b.in[i][:h.Len]
		var resp []byte
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			resp = s.answerOversize(b.out[i], req, src)
		} else {
			resp = s.answerUDP(b.out[i], req, src, smp)
		}
		if resp == nil {
			continue
		}
		if cap(resp) > cap(b.out[i]) && cap(resp) <= maxUDPMessage {
			b.out[i] = resp[:0] // keep the larger buffer
		}
		b.queue(i, resp)
	}
}

// answerOversize answers a datagram longer than batchReadSize, of which
// req is the start: FORMERR (no query is that long), subject to response
// rate limiting like any answer.
func (s *Server) answerOversize(out, req []byte, src netip.AddrPort) []byte {
	if src.Port() == 0 || len(req) < headerSize || binary.BigEndian.Uint16(req[2:])&flagQR != 0 {
		return nil
	}
	s.m.observe(Outcome{Rcode: dns.RcodeFormatError})
	return s.limitUDP(headerReply(out, req, dns.RcodeFormatError), src, dns.RcodeFormatError)
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 as the kernel
// wrote it. The IPv6 zone is left out: answers depend on the address
// only, and the reply goes to the sockaddr as received.
func sockaddrAddrPort(sa []byte) (netip.AddrPort, bool) {
	if len(sa) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET:
		if len(sa) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:])), true
	case unix.AF_INET6:
		if len(sa) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), binary.BigEndian.Uint16(sa[2:])), true
	}
	return netip.AddrPort{}, false
}
