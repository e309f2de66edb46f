package remote

import (
	"net"
	"time"
)

// spareKeep is how long the connection of a port check that passed is
// kept for the HTTP check that usually follows it, to the same address.
const spareKeep = 2 * time.Second

// spareConn is a connection CheckPort opened, kept for CheckHTTP: the
// health check then needs no channel of its own (an open and a close on
// the SSH connection, and a TCP connection on the target, fewer per host).
type spareConn struct {
	addr  string
	conn  net.Conn
	timer *time.Timer
}

// keepSpare keeps conn, which CheckPort opened to addr, for takeSpare. It
// is closed after spareKeep unless taken, or when another replaces it.
func (c *Conn) keepSpare(addr string, conn net.Conn) {
	s := &spareConn{addr: addr, conn: conn}
	c.mu.Lock()
	old := c.spare
	c.spare = s
	s.timer = time.AfterFunc(spareKeep, func() { c.dropSpare(s) })
	c.mu.Unlock()
	if old != nil {
		old.timer.Stop()
		old.conn.Close()
	}
}

// dropSpare closes s unless it was taken or replaced.
func (c *Conn) dropSpare(s *spareConn) {
	c.mu.Lock()
	kept := c.spare == s
	if kept {
		c.spare = nil
	}
	c.mu.Unlock()
	if kept {
		s.conn.Close()
	}
}

// takeSpare returns the connection kept for addr, if any; it is the
// caller's to close.
func (c *Conn) takeSpare(addr string) net.Conn {
	c.mu.Lock()
	s := c.spare
	if s == nil || s.addr != addr {
		c.mu.Unlock()
		return nil
	}
	c.spare = nil
	c.mu.Unlock()
	s.timer.Stop()
	return s.conn
}
