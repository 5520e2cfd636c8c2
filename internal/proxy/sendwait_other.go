//go:build !unix

package proxy

import "net"

// sender writes a request head and leaves the waiting to the reader.
type sender struct{}

func (s *sender) init(net.Conn) {}

func (s *sender) sendAndAwait(c net.Conn, b []byte) error {
	_, err := c.Write(b)
	return err
}
