package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestSendAndAwait(t *testing.T) {
	t.Run("answer", func(t *testing.T) {
		client, server := tcpPair(t)
		uc := newUpConn(client)
		uc.wbuf = append(uc.wbuf[:0], "GET / HTTP/1.1\r\nHost: a\r\n\r\n"...)
		go func() {
			buf := make([]byte, 64)
			n, _ := server.Read(buf)
			time.Sleep(20 * time.Millisecond) // the sender is waiting by now
			server.Write([]byte("got " + string(buf[:4]) + "|" + string(rune('0'+n%10))))
		}()
		if err := uc.sendAndAwait(); err != nil {
			t.Fatal(err)
		}
		if got, err := uc.br.Peek(6); err != nil || string(got) != "got GE" {
			t.Fatalf("answer %q, %v", got, err)
		}
	})

	t.Run("head larger than the socket buffers", func(t *testing.T) {
		client, server := tcpPair(t)
		_ = client.(*net.TCPConn).SetWriteBuffer(4096)
		uc := newUpConn(client)
		head := bytes.Repeat([]byte("x"), 1<<20) // more than both buffers hold before the upstream reads
		uc.wbuf = append(uc.wbuf[:0], head...)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // let the sender fill the buffers
			b, _ := io.ReadAll(io.LimitReader(server, int64(len(head))))
			got <- b
			server.Write([]byte("ok"))
		}()
		if err := uc.sendAndAwait(); err != nil {
			t.Fatal(err)
		}
		if b := <-got; !bytes.Equal(b, head) {
			t.Fatalf("upstream received %d bytes, want the %d sent", len(b), len(head))
		}
		if b, err := uc.br.Peek(2); err != nil || string(b) != "ok" {
			t.Fatalf("answer %q, %v", b, err)
		}
		if cap(uc.wbuf) > maxKeptWriteBuffer {
			t.Errorf("a %d-byte buffer was kept", cap(uc.wbuf))
		}
	})

	t.Run("upstream closes", func(t *testing.T) {
		client, server := tcpPair(t)
		uc := newUpConn(client)
		uc.wbuf = append(uc.wbuf[:0], "GET / HTTP/1.1\r\n\r\n"...)
		go func() {
			buf := make([]byte, 64)
			server.Read(buf)
			server.Close()
		}()
		if err := uc.sendAndAwait(); err != nil {
			t.Fatal(err)
		}
		if _, err := uc.br.Peek(1); err != io.EOF {
			t.Fatalf("read after the close: %v, want EOF", err)
		}
	})

	t.Run("no answer before the deadline", func(t *testing.T) {
		client, _ := tcpPair(t)
		uc := newUpConn(client)
		uc.wbuf = append(uc.wbuf[:0], "GET / HTTP/1.1\r\n\r\n"...)
		uc.armDeadline(time.Now(), 50*time.Millisecond)
		err := uc.sendAndAwait()
		if !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
			t.Fatalf("err = %v, want a deadline exceeded timeout", err)
		}
	})

	t.Run("aborted by the client", func(t *testing.T) {
		client, _ := tcpPair(t)
		uc := newUpConn(client)
		uc.wbuf = append(uc.wbuf[:0], "GET / HTTP/1.1\r\n\r\n"...)
		time.AfterFunc(20*time.Millisecond, uc.abort)
		if err := uc.sendAndAwait(); err == nil {
			t.Fatal("sendAndAwait returned nil after abort")
		}
	})
}
