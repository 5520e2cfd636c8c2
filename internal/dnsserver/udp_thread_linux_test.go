//go:build linux

package dnsserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
)

// TestUDPReaders checks both ways of reading the UDP sockets: 32 clients
// with 8 queries in flight each get every answer, right, over the
// server's two SO_REUSEPORT sockets.
func TestUDPReaders(t *testing.T) {
	for _, mode := range []string{config.UDPReaderThread, config.UDPReaderNetpoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t, nil, "  udp_reader: "+mode+"\n  rrl: {enabled: false}\n")
			s := startServer(t, cfg, engine(cfg))
			if s.threads != (mode == config.UDPReaderThread) {
				t.Fatalf("udp_reader %s: threads = %v", mode, s.threads)
			}
			addr := s.Addrs()[0].String()
			const clients, inFlight = 32, 8
			want := []string{"c.example.test. 300 IN A 192.0.2.3"}
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Go(func() {
					conn, err := net.Dial("udp", addr)
					if err != nil {
						errs <- err
						return
					}
					defer conn.Close()
					_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
					for i := range inFlight {
						m := query("c.example.test.", dns.TypeA, 1232)
						m.Id = uint16(c*inFlight + i)
						buf, _ := m.Pack()
						if _, err := conn.Write(buf); err != nil {
							errs <- err
							return
						}
					}
					seen := map[uint16]bool{}
					buf := make([]byte, 1232)
					for len(seen) < inFlight {
						n, err := conn.Read(buf)
						if err != nil {
							errs <- fmt.Errorf("client %d after %d answers: %w", c, len(seen), err)
							return
						}
						var r dns.Msg
						err = r.Unpack(buf[:n])
						if got := rrStrings(r.Answer); err != nil || !slices.Equal(got, want) {
							errs <- fmt.Errorf("client %d: answer %v (%v)", c, r.Answer, err)
							return
						}
						seen[r.Id] = true
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// askFromMany sends a query to addr from 64 client sockets (64 source
// ports, so that SO_REUSEPORT spreads them over every socket of the
// group) and fails the test unless each is answered.
func askFromMany(t *testing.T, addr string) {
	t.Helper()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if r := exchange(t, "udp", addr, query("c.example.test.", dns.TypeA, 0)); len(r.Answer) != 1 {
				t.Errorf("answer %v", r)
			}
		})
	}
	wg.Wait()
}

// TestUDPThreadsReserveProcs checks that thread readers, which keep their
// P while they wait for queries, get one more P each while queries come,
// and none while the server is idle or stopped. (Not parallel: GOMAXPROCS
// is process-wide.)
func TestUDPThreadsReserveProcs(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	cfg := testConfig(t, nil, "")
	cfg.DNS.Listen = []string{"127.0.0.1:0", "127.0.0.2:0"} // 2 sockets each
	s := runServer(t, cfg, engine(cfg), 2, func(s *Server) { s.threadIdle = time.Hour })
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Errorf("GOMAXPROCS before any query = %d, want %d", got, base)
	}
	for _, a := range s.Addrs() {
		askFromMany(t, a.String())
	}
	if got := runtime.GOMAXPROCS(0); got != base+4 {
		t.Errorf("GOMAXPROCS with 4 thread readers receiving = %d, want %d", got, base+4)
	}
	cfg2 := testConfig(t, nil, "")
	cfg2.DNS.UDPSockets = 0
	s2, err := NewServer(cfg2, engine(cfg2), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.sockets != base {
		t.Errorf("default udp_sockets while Ps are reserved: %d, want one per unreserved P, %d", s2.sockets, base)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Errorf("GOMAXPROCS after the server stopped = %d, want %d", got, base)
	}
}

// TestUDPThreadsIdleGiveBackProcs checks that thread readers give their
// P back once no query has come for the idle time, and answer afterwards.
func TestUDPThreadsIdleGiveBackProcs(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	cfg := testConfig(t, nil, "") // 2 sockets
	s := runServer(t, cfg, engine(cfg), 1, func(s *Server) { s.threadIdle = 50 * time.Millisecond })
	for round := range 2 {
		askFromMany(t, s.addr)
		deadline := time.Now().Add(10 * time.Second)
		for runtime.GOMAXPROCS(0) != base {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: GOMAXPROCS %d 10 s after the last query, want %d", round, runtime.GOMAXPROCS(0), base)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestUDPThreadWaitInterrupted checks, with thread readers whose receive
// timeout never expires in the test, that garbage collections (which stop
// every goroutine, the readers included, by signalling the threads of
// those that hold a P) finish while the readers wait, that
// they answer afterwards, and that the server stops. A reader that the signal did not interrupt would
// freeze the whole process, timers included, so the check runs in a child
// process that the test kills after a minute.
func TestUDPThreadWaitInterrupted(t *testing.T) {
	if os.Getenv("GSLB_TEST_THREAD_WAIT_CHILD") != "" {
		testUDPThreadWaitInterrupted(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestUDPThreadWaitInterrupted$", "-test.v")
	cmd.Env = append(os.Environ(), "GSLB_TEST_THREAD_WAIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the process froze (killed after a minute):\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUDPThreadWaitInterrupted") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func testUDPThreadWaitInterrupted(t *testing.T) {
	cfg := testConfig(t, nil, "")
	s := runServer(t, cfg, engine(cfg), 1, func(s *Server) { s.threadWake = time.Hour })
	addr := s.Addrs()[0].String()
	// Collections right after an answer and after idle spells.
	for i := range 50 {
		runtime.GC()
		if i%10 == 9 {
			time.Sleep(30 * time.Millisecond)
		}
		if r := exchange(t, "udp", addr, query("c.example.test.", dns.TypeA, 0)); len(r.Answer) != 1 {
			t.Fatalf("answer after GC %d: %v", i, r)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The socket is closed: a query gets no answer.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, _ := query("c.example.test.", dns.TypeA, 0).Pack()
	_, _ = c.Write(m)
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		t.Errorf("a %d-byte answer after the server stopped", n)
	}
}
