package proxy

// sendAndAwait writes the request head in c.wbuf to the upstream and
// returns once the upstream's answer (or its close) can be read, or when
// the read deadline passes.
//
// Written the usual way — Write, then Read — every request costs one read
// system call that finds nothing, because the upstream cannot have answered
// yet, before the goroutine waits for the socket. Here the head is written
// from inside the wait for readability (syscall.RawConn.Read), after the
// runtime has armed it, so the wait comes first and the first read finds
// the answer.
func (c *upConn) sendAndAwait() error {
	err := c.send.sendAndAwait(c.conn, c.wbuf)
	if cap(c.wbuf) > maxKeptWriteBuffer {
		c.wbuf = make([]byte, 0, upConnWriteBuffer)
	}
	return err
}
