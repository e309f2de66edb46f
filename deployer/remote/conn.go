package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"deploybot/config"
)

// Conn is an SSH connection to one target, meant to be reused for every
// step of a deploy. It is safe for concurrent use. A keepalive goroutine
// closes it when the peer stops answering; Done and Err tell.
type Conn struct {
	client *ssh.Client
	host   config.Host
	d      *Dialer

	sessions atomic.Int64 // sessions opened
	channels atomic.Int64 // direct-tcpip channels opened

	mu     sync.Mutex
	err    error // why the connection ended
	done   chan struct{}
	closed bool
	ka     *time.Timer // the next keepalive
	spare  *spareConn  // a port check's connection, for the HTTP check
}

// Sessions returns how many SSH sessions (remote commands) c has opened:
// every session costs the target a process and tens of milliseconds of
// CPU, so callers can report and tests can assert it.
func (c *Conn) Sessions() int64 { return c.sessions.Load() }

// Channels returns how many TCP connections from the target (the port
// and HTTP checks) c has opened, each a channel of the SSH connection.
func (c *Conn) Channels() int64 { return c.channels.Load() }

// Host returns the host c is connected to.
func (c *Conn) Host() config.Host { return c.host }

// Done is closed when the connection has ended (Close, or a dead peer).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up, then why it ended.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; sessions in progress fail with a
// "connection lost" HostError. Closing twice is not an error.
func (c *Conn) Close() error {
	c.fail(errors.New("closed by deploybot"))
	return nil
}

// fail ends the connection with a reason; the first reason wins.
func (c *Conn) fail(reason error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = reason
	close(c.done)
	if c.ka != nil {
		c.ka.Stop()
	}
	c.mu.Unlock()
	_ = c.client.Close()
}

// serve answers what the target asks of the connection, refusing every
// channel it opens and every global request, until the connection ends;
// then it ends c with the reason. A target never has a reason to open a
// channel to the deploy host (no agent or port forwarding is requested).
func (c *Conn) serve(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	for chans != nil || reqs != nil {
		select {
		case nc, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			_ = nc.Reject(ssh.Prohibited, "deploybot accepts no channels")
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}
	err := c.client.Wait()
	if err == nil {
		err = io.EOF
	}
	c.fail(fmt.Errorf("connection closed: %w", err))
}

// lost returns the HostError for an operation that failed because the
// connection is gone (or going): its reason if known.
func (c *Conn) lost(err error) error {
	if reason := c.Err(); reason != nil {
		err = reason
	}
	return &HostError{Host: c.host.String(), Kind: KindConnectionLost, Err: err}
}

// startKeepalive sends keepalive@openssh.com interval after the last
// answer; a reply (any reply: OpenSSH answers "failure" to unknown
// requests) proves the peer alive. No reply within max intervals closes
// the Conn. Between keepalives nothing runs: a timer, not a goroutine per
// connection, waits.
func (c *Conn) startKeepalive(interval time.Duration, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.ka = time.AfterFunc(interval, func() { c.keepalive(interval, max) })
	}
}

// keepalive sends one keepalive and waits for its answer, then schedules
// the next one, or closes the Conn.
func (c *Conn) keepalive(interval time.Duration, max int) {
	wait := time.Duration(max) * interval
	reply := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		reply <- err
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-reply:
		if err != nil {
			c.fail(fmt.Errorf("keepalive failed: %w", err))
			return
		}
	case <-timer.C:
		c.fail(fmt.Errorf("no answer to keepalives for %v", wait))
		return
	case <-c.done:
		return
	}
	c.startKeepalive(interval, max)
}

// dialContext opens a TCP connection from the target to addr (as seen
// from the target: 127.0.0.1 is the target's loopback) through the SSH
// connection: a direct-tcpip channel, no session, nothing run on the
// target.
func (c *Conn) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case <-c.done:
		return nil, c.lost(nil)
	default:
	}
	c.channels.Add(1)
	return c.client.DialContext(ctx, "tcp", addr)
}
