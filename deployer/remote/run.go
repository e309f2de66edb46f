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
var runHeader = groupsSh + runSh

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
	res, _, err := c.runHold(ctx, script, timeout, p, false)
	return res, p, err
}

// runHold is run; with hold set, a script that prints the hold marker
// (deploy.sh's hold) is left waiting in its open session, returned as
// a *heldSession that the caller must end (heldDeploy's Finalize or
// Release); res then holds no exit code (-1).
func (c *Conn) runHold(ctx context.Context, script string, timeout time.Duration, p *outputParser, hold bool) (Result, *heldSession, error) {
	if timeout <= 0 {
		timeout = c.d.commandTimeout()
	}
	s := &heldSession{c: c, p: p, start: time.Now()}
	if strings.IndexByte(script, 0) >= 0 {
		return s.complete(Result{ExitCode: -1}), nil, errors.New("script contains a NUL byte")
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess, err := c.newSession(rctx)
	if err != nil {
		if rctx.Err() != nil {
			res := Result{ExitCode: -1}
			err := c.timeoutErr(ctx, timeout, &res)
			return s.complete(res), nil, err
		}
		return s.complete(Result{ExitCode: -1}), nil, err
	}
	s.sess = sess
	// Written to only by a held deploy's Finalize (Release closes it);
	// otherwise its end (closed after the session has ended, or with the
	// connection) is the watchdog's signal.
	s.stdin, err = sess.StdinPipe()
	if err == nil {
		err = s.startScript(script)
	}
	if err != nil {
		_ = sess.Close()
		return s.complete(Result{ExitCode: -1}), nil, c.lost(err)
	}
	var holdc <-chan struct{}
	if hold {
		holdc = p.holdChan()
	}
	res, held, err := s.wait(ctx, rctx, timeout, holdc)
	if held {
		return res, s, nil
	}
	s.close()
	return res, nil, err
}

// heldSession is a script running in one session of c, its output going
// to p.
type heldSession struct {
	c     *Conn
	sess  *ssh.Session
	stdin io.WriteCloser
	waitc chan error
	p     *outputParser
	start time.Time
}

// startScript starts script in s.sess, a goroutine reading its output to
// s.p and then waiting for its end (on s.waitc).
func (s *heldSession) startScript(script string) error {
	// Pipes, not writers: x/crypto would copy each stream in a goroutine
	// of its own. One goroutine reads stdout to its end, then stderr,
	// which carries only what fails before run.sh joins it to stdout, and
	// then waits for the exit status.
	stdout, err := s.sess.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := s.sess.StderrPipe()
	if err != nil {
		return err
	}
	// The session's start time, by our clock, is the script's $1 (the
	// variable started in scripts/run.sh): what the operation file
	// records.
	if err := s.sess.Start(s.c.d.command(script) + " deploybot " + strconv.FormatInt(time.Now().Unix(), 10)); err != nil {
		return err
	}
	s.waitc = make(chan error, 1)
	go func() {
		_, _ = s.p.ReadFrom(stdout)
		_, _ = s.p.ReadFrom(stderr)
		s.waitc <- s.sess.Wait()
	}()
	return nil
}

// wait waits for the script's end, at most until rctx is done (then it
// kills it; timeout is for the error), or, when holdc is closed first,
// reports held.
func (s *heldSession) wait(ctx, rctx context.Context, timeout time.Duration, holdc <-chan struct{}) (res Result, held bool, err error) {
	res = Result{ExitCode: -1}
	var werr error
	select {
	case werr = <-s.waitc:
	case <-holdc:
		res = s.complete(res)
		return res, true, nil
	case <-s.c.done:
		// The connection died; the session cannot report any more.
		select {
		case werr = <-s.waitc:
		case <-time.After(killGrace):
			res = s.complete(res)
			return res, false, s.c.lost(nil)
		}
	case <-rctx.Done():
		err := s.c.timeoutErr(ctx, timeout, &res)
		s.c.kill(s.sess, s.stdin, s.waitc, s.p.getPID(), s.p.inRestart)
		res = s.complete(res)
		return res, false, err
	}
	var ee *ssh.ExitError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &ee):
		res.ExitCode = ee.ExitStatus()
	default: // *ssh.ExitMissingError, io errors: the connection broke
		res = s.complete(res)
		return res, false, s.c.lost(werr)
	}
	res = s.complete(res)
	return res, false, nil
}

// complete returns res with its duration since the start and p's
// marker-free output.
func (s *heldSession) complete(res Result) Result {
	res.Duration = time.Since(s.start)
	_, res.Output, _, _ = s.p.result()
	return res
}

// close closes the session's stdin and the session.
func (s *heldSession) close() {
	_ = s.stdin.Close()
	_ = s.sess.Close()
}

// timeoutErr is the error to report when the context of a command that may
// run timeout is done: canceled with ctx, or timed out (res.TimedOut
// set).
func (c *Conn) timeoutErr(ctx context.Context, timeout time.Duration, res *Result) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &HostError{Host: c.host.String(), Kind: KindCanceled, Err: ctx.Err()}
	}
	res.TimedOut = true
	return &HostError{Host: c.host.String(), Kind: KindCommandTimeout, Err: fmt.Errorf("no exit within %v; killed", timeout)}
}

// kill ends a running session: SIGKILL, which OpenSSH's sshd (7.9 and
// later) sends to the session's process group (killpg), so the script and
// every command it started that did not leave the group die, and the
// session reports its end. If it does not within killSignalWait (an sshd
// that ignores signal requests), stdin is closed (the script's watchdog
// kills its group), then the channel, and, in the background, a second
// session kills the process group by the pid the script printed first.
// A restart command the script was running (restarting reports it, once
// the session is over) is in a group of its own, which that second
// session kills too (scripts/kill.sh): it is opened whenever one was
// running. kill returns when the session has ended or after killGrace.
func (c *Conn) kill(sess *ssh.Session, stdin io.Closer, waitc <-chan error, pid int, restarting func() bool) {
	_ = sess.Signal(ssh.SIGKILL)
	select {
	case <-waitc:
		if pid > 1 && restarting() {
			go c.killGroup(pid)
		}
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

// killScript is the command line of scripts/kill.sh for process group
// pgid (after groups.sh: it kills the group's restart command too).
func killScript(pgid int) string {
	return shCommand(prelude(shellVar{"DEPLOY_PGID", strconv.Itoa(pgid)}) + groupsSh + killSh)
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
		_ = s.Run(killScript(pgid))
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
