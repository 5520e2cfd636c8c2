// Command backend is the benchmark's shared HTTP upstream: a tiny, fast
// HTTP/1.1 responder that answers every request with 200 "ok\n".
//
// It speaks just enough HTTP/1.1 for proxies and health checks (keep-alive,
// pipelining, Content-Length bodies, Connection: close) so that the upstream
// costs as little CPU as possible and the proxies in front of it are what the
// benchmark measures. It is not a general HTTP server.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 1 << 20
)

var (
	respOK  = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
	respBad = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "comma-separated host:port addresses to listen on")
	flag.Parse()
	for _, addr := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("listen %s: %v", addr, err)
		}
		fmt.Fprintf(os.Stderr, "backend listening on %s\n", ln.Addr())
		go serve(ln)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("accept: %v", err)
			continue
		}
		go handle(c)
	}
}

// handle answers requests on one connection until the peer closes it, asks
// for Connection: close, or sends something this server does not support.
func handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	for {
		keep, err := readRequest(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.Write(respBad)
				w.Flush()
			}
			return
		}
		w.Write(respOK)
		// Flush once per batch of pipelined requests.
		if !keep || r.Buffered() == 0 {
			if w.Flush() != nil || !keep {
				return
			}
		}
	}
}

// readRequest consumes one request head and its body and reports whether the
// connection stays open.
func readRequest(r *bufio.Reader) (keep bool, err error) {
	keep = true
	var bodyLen int64
	first := true
	read := 0
	for {
		line, err := r.ReadSlice('\n')
		read += len(line)
		if err != nil {
			if first && len(line) == 0 {
				return false, io.EOF
			}
			return false, fmt.Errorf("read head: %w", err)
		}
		if read > maxHeaderBytes {
			return false, errors.New("head too large")
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			if bytes.HasSuffix(line, []byte("HTTP/1.0")) {
				keep = false
			}
			first = false
			continue
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, errors.New("malformed header")
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || n > maxBodyBytes {
				return false, errors.New("bad content-length")
			}
			bodyLen = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return false, errors.New("transfer-encoding not supported")
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	if bodyLen > 0 {
		if _, err := r.Discard(int(bodyLen)); err != nil {
			return false, fmt.Errorf("read body: %w", err)
		}
	}
	return keep, nil
}
