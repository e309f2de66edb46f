package remote

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"deploybot/config"
)

// Kinds of CheckResult.
const (
	CheckKindPort    = "port"
	CheckKindHTTP    = "http"
	CheckKindCommand = "command"
)

// Defaults of checks whose configuration leaves them unset.
const (
	DefaultPortTimeout  = time.Duration(config.DefaultPortTimeout)
	DefaultCheckTimeout = time.Duration(config.DefaultCheckTimeout)
	DefaultExpectStatus = config.DefaultExpectStatus
)

// BodyExcerpt is the most of an HTTP response body a CheckResult keeps;
// maxBody the most read to match expect_body against.
const (
	BodyExcerpt = 200
	maxBody     = 64 << 10
)

// CheckResult is the outcome of one check on one host, with what it saw.
type CheckResult struct {
	Name string // the check's name; "port" for the port check
	Kind string // CheckKindPort, CheckKindHTTP or CheckKindCommand
	OK   bool
	// Status is the HTTP status received (HTTP checks).
	Status int
	// Body is the start of the response body, at most BodyExcerpt bytes
	// (HTTP checks).
	Body string
	// Latency is how long the check took: until the port accepted, the
	// whole HTTP exchange, the command's run.
	Latency time.Duration
	// ExitCode is the command's exit status, -1 if it did not finish
	// (command checks).
	ExitCode int
	// Output is the command's output tail (command checks) or what the
	// port check observed.
	Output string
	// TimedOut is set when the check ran out of time.
	TimedOut bool
	// Err says why the check failed; "" when OK.
	Err string
}

// Check runs chk (an HTTP or a command check) on the target.
func (c *Conn) Check(ctx context.Context, t Target, chk config.Check) CheckResult {
	if chk.HTTP != "" {
		return c.CheckHTTP(ctx, chk)
	}
	return c.CheckCommand(ctx, t, chk)
}

// CheckPort waits until 127.0.0.1:port on the target accepts a TCP
// connection, trying again every 20 ms for the first second (a service
// usually starts within it, and a group ends with its slowest host: each
// host's wait past its service's start is the group's), then backing off
// to 250 ms, until within (0: DefaultPortTimeout) has passed. Each
// attempt is a direct-tcpip channel on the SSH connection: nothing runs
// on the target.
func (c *Conn) CheckPort(ctx context.Context, port int, within time.Duration) CheckResult {
	r := CheckResult{Name: "port", Kind: CheckKindPort}
	if port < 1 || port > 65535 {
		r.Err = fmt.Sprintf("invalid port %d", port)
		return r
	}
	if within <= 0 {
		within = DefaultPortTimeout
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	delay := 20 * time.Millisecond
	var last error
	attempts := 0
	for {
		attempts++
		conn, err := c.dialContext(ctx, "tcp", addr)
		if err == nil {
			c.keepSpare(addr, conn)
			r.OK = true
			r.Latency = time.Since(start)
			r.Output = fmt.Sprintf("%s accepted a connection (attempt %d)", addr, attempts)
			return r
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if IsKind(err, KindConnectionLost) {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			r.TimedOut = true
			break
		}
		if time.Since(start) >= portFastPolling {
			delay = min(2*delay, 250*time.Millisecond)
		}
	}
	r.Latency = time.Since(start)
	r.Output = fmt.Sprintf("%d attempts in %v", attempts, r.Latency.Round(time.Millisecond))
	r.Err = fmt.Sprintf("%s did not accept a connection within %v: %v", addr, within, last)
	return r
}

// portFastPolling is how long CheckPort tries every 20 ms before it
// backs off.
const portFastPolling = time.Second

// CheckHTTP fetches chk.HTTP from the target's side: the TCP connection is
// a channel of the SSH connection, opened by the target's sshd (so
// 127.0.0.1 is the target's loopback). It passes when the status is
// chk.ExpectStatus (default 200) and, if set, the body (its first 64 KiB)
// matches the chk.ExpectBody regular expression, all within chk.Timeout
// (default 10 s). Redirects are not followed; environment proxies are not
// used. For https URLs the certificate is not verified: the connection
// already is authenticated end to end by SSH, and a health check on a
// loopback address cannot match a certificate's name.
func (c *Conn) CheckHTTP(ctx context.Context, chk config.Check) CheckResult {
	r := CheckResult{Name: chk.Name, Kind: CheckKindHTTP}
	timeout := chk.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	want := chk.ExpectStatus
	if want == 0 {
		want = DefaultExpectStatus
	}
	var re *regexp.Regexp
	if chk.ExpectBody != "" {
		var err error
		if re, err = regexp.Compile(chk.ExpectBody); err != nil {
			r.Err = fmt.Sprintf("invalid expect_body: %v", err)
			return r
		}
	}
	u, err := url.Parse(chk.HTTP)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Err = fmt.Sprintf("invalid URL %q: want http:// or https://", clip(chk.HTTP, 200))
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	req.Header.Set("User-Agent", "deploybot-check")
	req.Close = true
	start := time.Now()
	resp, conn, err := c.get(ctx, req)
	if err != nil {
		r.Latency = time.Since(start)
		r.TimedOut = isTimeout(err)
		r.Err = fmt.Sprintf("GET %s: %v", chk.HTTP, err)
		return r
	}
	defer conn.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if rerr != nil && ctx.Err() != nil {
		rerr = fmt.Errorf("%w (%v)", context.DeadlineExceeded, rerr)
	}
	r.Latency = time.Since(start)
	r.Status = resp.StatusCode
	r.Body = headString(string(body), BodyExcerpt)
	var problems []string
	if resp.StatusCode != want {
		problems = append(problems, fmt.Sprintf("status %d, want %d", resp.StatusCode, want))
	}
	if rerr != nil {
		r.TimedOut = isTimeout(rerr)
		problems = append(problems, fmt.Sprintf("reading the body: %v", rerr))
	} else if re != nil && !re.Match(body) {
		problems = append(problems, fmt.Sprintf("body does not match %q", chk.ExpectBody))
	}
	if len(problems) > 0 {
		r.Err = strings.Join(problems, "; ")
		return r
	}
	r.OK = true
	return r
}

// maxHeader is the most of an HTTP check's response header read.
const maxHeader = 64 << 10

// get sends req on a connection through the SSH connection (TLS for
// https, the certificate not verified: see CheckHTTP) and reads the
// response header: one request, no connection pool, no goroutine of its
// own. The connection is the one the port check to the same address just
// opened (keepSpare), or a new one, also when the service closed the kept
// one before answering on it. The caller closes conn after reading the
// body; ctx's end closes it too, and the error then wraps
// context.DeadlineExceeded.
func (c *Conn) get(ctx context.Context, req *http.Request) (*http.Response, net.Conn, error) {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[req.URL.Scheme]
	}
	addr := net.JoinHostPort(host, port)
	if raw := c.takeSpare(addr); raw != nil {
		resp, conn, err := c.getOn(ctx, req, host, raw)
		if err == nil || ctx.Err() != nil {
			return resp, conn, err
		}
	}
	raw, err := c.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, c.ctxErr(ctx, err)
	}
	return c.getOn(ctx, req, host, raw)
}

// getOn is get on the connection raw to host.
func (c *Conn) getOn(ctx context.Context, req *http.Request, host string, raw net.Conn) (*http.Response, net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	conn := raw
	fail := func(err error) (*http.Response, net.Conn, error) {
		stop()
		raw.Close()
		return nil, nil, c.ctxErr(ctx, err)
	}
	if req.URL.Scheme == "https" {
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: host}) // see CheckHTTP
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(err)
		}
		conn = tc
	}
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	// Header and body read through one limit: a service sending headers
	// without end cannot grow them past it.
	br := bufio.NewReaderSize(io.LimitReader(conn, maxHeader+maxBody+4096), 2048)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(err)
	}
	return resp, closer{conn, stop}, nil
}

// closer is a connection whose Close also forgets the context watch.
type closer struct {
	net.Conn
	stop func() bool
}

func (c closer) Close() error {
	c.stop()
	return c.Conn.Close()
}

// ctxErr is err, or, when ctx ended (which closed the connection under
// the request), a timeout error saying so.
func (c *Conn) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// CheckCommand runs chk.Command on the target in one session, in the
// current revision's directory (<target_dir>-cache/current, resolved),
// with DEPLOY_REV set to that revision; it passes when the command exits
// 0 within chk.Timeout (default 10 s). A command still running then is
// killed with its process group.
func (c *Conn) CheckCommand(ctx context.Context, t Target, chk config.Check) CheckResult {
	r := CheckResult{Name: chk.Name, Kind: CheckKindCommand, ExitCode: -1}
	script, err := t.CheckScript(chk.Command)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	timeout := chk.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	res, err := c.Run(ctx, script, timeout)
	r.ExitCode, r.Output, r.Latency, r.TimedOut = res.ExitCode, res.Output, res.Duration, res.TimedOut
	switch {
	case err != nil:
		r.Err = err.Error()
	case res.ExitCode != 0:
		r.Err = fmt.Sprintf("exit status %d", res.ExitCode)
		if l := lastLine(res.Output); l != "" {
			r.Err += ": " + l
		}
	default:
		r.OK = true
	}
	return r
}

// CheckScript returns the script CheckCommand runs for command
// (scripts/check.sh).
func (t Target) CheckScript(command string) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	if strings.TrimSpace(command) == "" {
		return "", errors.New("empty check command")
	}
	if strings.IndexByte(command, 0) >= 0 {
		return "", errors.New("check command contains a NUL byte")
	}
	pre := prelude(
		shellVar{"DEPLOY_DIR", t.Dir},
		shellVar{"DEPLOY_CHECK", command},
	)
	return pre + checkSh, nil
}
