package proxy

// peekState is what a connection has to read, as a non-blocking peek sees
// it (peeker.state).
type peekState int

const (
	peekNothing peekState = iota // nothing yet: the peer is there and quiet
	peekData                     // bytes
	peekClosed                   // the peer's close, or a dead connection
)
