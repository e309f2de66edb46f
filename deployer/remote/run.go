package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Result is what one remote command did.
type Result struct {
	// ExitCode is the command's exit status; 128+n when killed by signal
	// n; -1 when unknown (timed out, connection lost).
	ExitCode int
	// Output is the tail (at most OutputTail bytes) of stdout and stderr,
	// in the order written, markers removed.
	Output string
	// Duration is the wall time from opening the session to its end, as
	// seen from here.
	Duration time.Duration
	// TimedOut is set when the command was killed for running past its
	// timeout (or the context's deadline).
	TimedOut bool
}

// killGrace is how long Run waits, after killing a command, for the
// session to report its end before giving up on it.
const killGrace = 2 * time.Second

// runHeader starts every script (scripts/run.sh): stderr joins stdout
// (one ordered stream), the script's stdin is empty, the first line is
// the shell's pid, which sshd made a session and process-group leader,
// and a watchdog kills that process group when the session's stdin ends
// before the script does (run keeps it open until the session is over).
var runHeader = runSh

// wrapScript is the command line sent to sshd: whatever the login shell,
// the script runs under /bin/sh, after runHeader.
func wrapScript(script string) string {
	return shCommand(runHeader + script)
}

// memo remembers the values of the last keys asked, at most maxMemo: a
// deploy runs the same deploy and finalize scripts on every host, and
// building and quoting scripts of kilobytes per session is work and
// garbage a thousand hosts multiply. The zero value is ready; it is safe
// for concurrent use. Values must not be changed once made.
type memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

// maxMemo bounds a memo: a run uses a few scripts at a time.
const maxMemo = 16

// get returns the value of key, made with make unless it is remembered;
// an error is returned and not remembered.
func (c *memo[K, V]) get(key K, make func() (V, error)) (V, error) {
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxMemo {
		c.m = map[K]V{}
	}
	c.m[key] = v
	c.mu.Unlock()
	return v, nil
}

// command returns wrapScript(script), made once per script while it is
// in use.
func (d *Dialer) command(script string) string {
	cmd, _ := d.cmds.get(script, func() (string, error) { return wrapScript(script), nil })
	return cmd
}

// shCommand is the command line that runs script with /bin/sh whatever
// the login shell: the login shell only parses one single-quoted word.
func shCommand(script string) string {
	return "exec /bin/sh -c " + ShellQuote(script)
}

// Run runs script with /bin/sh on the target in one session and waits at
// most timeout (0: the Dialer's CommandTimeout) and until ctx is done.
// A command that runs too long is killed (SIGKILL to its process group,
// then the session is closed) and Result.TimedOut is set.
//
// The session's stdin stays open, and empty, until Run returns: the
// script's watchdog (scripts/run.sh) takes its end, when the script is
// still running, for the end of whoever started it — this process died,
// the connection dropped — and kills the script's process group (TERM,
// then KILL 2 s later). A script that ends by itself disarms it first:
// what it left running in its group (a service a restart command started)
// is not killed.
//
// A non-zero exit is not an error: check Result.ExitCode. The error is a
// *HostError of kind "command timed out", "connection lost", "session
// refused" or "canceled".
func (c *Conn) Run(ctx context.Context, script string, timeout time.Duration) (Result, error) {
	res, _, err := c.run(ctx, script, timeout, newParser())
	return res, err
}

// run runs script, feeding its output to p, and returns the result (with
// p's marker-free output).
func (c *Conn) run(ctx context.Context, script string, timeout time.Duration, p *outputParser) (Result, *outputParser, error) {
	if timeout <= 0 {
		timeout = c.d.commandTimeout()
	}
	start := time.Now()
	res := Result{ExitCode: -1}
	finish := func(err error) (Result, *outputParser, error) {
		res.Duration = time.Since(start)
		_, res.Output, _, _ = p.result()
		return res, p, err
	}
	if strings.IndexByte(script, 0) >= 0 {
		return finish(errors.New("script contains a NUL byte"))
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// ctxErr turns the end of rctx into the error to report.
	ctxErr := func() error {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &HostError{Host: c.host.String(), Kind: KindCanceled, Err: ctx.Err()}
		}
		res.TimedOut = true
		return &HostError{Host: c.host.String(), Kind: KindCommandTimeout, Err: fmt.Errorf("no exit within %v; killed", timeout)}
	}

	sess, err := c.newSession(rctx)
	if err != nil {
		if rctx.Err() != nil {
			return finish(ctxErr())
		}
		return finish(err)
	}
	defer sess.Close()
	// Never written to: its end (closed after the session has ended, or
	// with the connection) is the watchdog's signal.
	stdin, err := sess.StdinPipe()
	if err != nil {
		return finish(c.lost(err))
	}
	// Pipes, not writers: x/crypto would copy each stream in a goroutine
	// of its own. One goroutine reads stdout to its end, then stderr,
	// which carries only what fails before run.sh joins it to stdout, and
	// then waits for the exit status.
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return finish(c.lost(err))
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return finish(c.lost(err))
	}
	// The session's start time, by our clock, is the script's $1
	// (the variable started in scripts/run.sh): what the operation file records.
	if err := sess.Start(c.d.command(script) + " deploybot " + strconv.FormatInt(time.Now().Unix(), 10)); err != nil {
		return finish(c.lost(err))
	}
	defer stdin.Close()
	waitc := make(chan error, 1)
	go func() {
		_, _ = p.ReadFrom(stdout)
		_, _ = p.ReadFrom(stderr)
		waitc <- sess.Wait()
	}()

	var werr error
	select {
	case werr = <-waitc:
	case <-c.done:
		// The connection died; the session cannot report any more.
		select {
		case werr = <-waitc:
		case <-time.After(killGrace):
			return finish(c.lost(nil))
		}
	case <-rctx.Done():
		err := ctxErr()
		c.kill(sess, stdin, waitc, p.getPID())
		return finish(err)
	}
	var ee *ssh.ExitError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &ee):
		res.ExitCode = ee.ExitStatus()
	default: // *ssh.ExitMissingError, io errors: the connection broke
		return finish(c.lost(werr))
	}
	return finish(nil)
}

// kill ends a running session: SIGKILL, which OpenSSH's sshd (7.9 and
// later) sends to the session's process group (killpg), so the script and
// every command it started that did not leave the group die, and the
// session reports its end. If it does not within killSignalWait (an sshd
// that ignores signal requests), stdin is closed (the script's watchdog
// kills its group), then the channel, and, in the background, a second
// session kills the process group by the pid the script printed first.
// kill returns when the session has ended or after killGrace.
func (c *Conn) kill(sess *ssh.Session, stdin io.Closer, waitc <-chan error, pid int) {
	_ = sess.Signal(ssh.SIGKILL)
	select {
	case <-waitc:
		return
	case <-time.After(killSignalWait):
	}
	_ = stdin.Close()
	_ = sess.Close()
	if pid > 1 {
		go c.killGroup(pid)
	}
	select {
	case <-waitc:
	case <-time.After(killGrace):
	}
}

// killSignalWait is how long kill waits for a session to end after
// SIGKILL before it falls back to killing the process group itself.
const killSignalWait = 500 * time.Millisecond

// killGroup kills process group pgid on the target from a new session
// (scripts/kill.sh), best effort, within 10 s.
func (c *Conn) killGroup(pgid int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.newSession(ctx)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		_ = s.Run(shCommand(prelude(shellVar{"DEPLOY_PGID", strconv.Itoa(pgid)}) + killSh))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// newSession opens a session, giving up when ctx is done (a stalled
// connection would block forever).
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	select {
	case <-c.done:
		return nil, c.lost(nil)
	default:
	}
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.client.NewSession()
		if err == nil {
			c.sessions.Add(1)
		}
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			var oe *ssh.OpenChannelError
			if errors.As(o.err, &oe) && c.Err() == nil {
				return nil, &HostError{Host: c.host.String(), Kind: KindSessionRefused, Err: o.err}
			}
			return nil, c.lost(o.err)
		}
		return o.s, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
