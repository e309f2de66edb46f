package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"deploybot/config"
)

// Defaults for a Dialer's zero fields.
const (
	DefaultConnectTimeout = time.Duration(config.DefaultConnectTimeout)
	DefaultCommandTimeout = time.Duration(config.DefaultCommandTimeout)
	DefaultKeepalive      = time.Duration(config.DefaultKeepalive)
	DefaultKeepaliveMax   = 3
)

// Kinds of HostError: why a host could not be reached or was lost.
const (
	// KindUnreachable: the TCP connection was refused or could not be
	// routed (no sshd listening, host down, name not resolved).
	KindUnreachable = "unreachable"
	// KindTimeout: the dial or SSH handshake did not finish within the
	// connect timeout.
	KindTimeout = "timeout"
	// KindHostKeyMismatch: the host's key is not the one known_hosts has
	// for it.
	KindHostKeyMismatch = "host key mismatch"
	// KindUnknownHostKey: known_hosts has no key for the host.
	KindUnknownHostKey = "unknown host key"
	// KindHostKeyRevoked: the host offered a key marked @revoked.
	KindHostKeyRevoked = "host key revoked"
	// KindAuthFailed: the host accepted none of the client's keys.
	KindAuthFailed = "auth failed"
	// KindHandshake: the SSH handshake failed for another reason (the
	// server closed the connection, no common algorithm, ...).
	KindHandshake = "handshake failed"
	// KindConnectionLost: an established connection died (sshd killed,
	// network gone, keepalives unanswered) or was closed.
	KindConnectionLost = "connection lost"
	// KindSessionRefused: the host refused a new session on an
	// established connection (sshd's MaxSessions, a channel-open
	// failure).
	KindSessionRefused = "session refused"
	// KindCommandTimeout: a remote command did not finish within its
	// timeout and was killed.
	KindCommandTimeout = "command timed out"
	// KindCanceled: the caller's context was canceled.
	KindCanceled = "canceled"
)

// HostError says why an operation on a host failed at the transport
// level: Kind is one of the Kind* constants, Err the underlying error.
// A command that ran and exited non-zero is not a HostError.
type HostError struct {
	Host string // host as configured ("name" or "name:port")
	Kind string
	Err  error
}

func (e *HostError) Error() string {
	if e.Err == nil {
		return e.Host + ": " + e.Kind
	}
	return e.Host + ": " + e.Kind + ": " + e.Err.Error()
}

func (e *HostError) Unwrap() error { return e.Err }

// IsKind reports whether err is (or wraps) a *HostError of kind k.
func IsKind(err error, k string) bool {
	var he *HostError
	return errors.As(err, &he) && he.Kind == k
}

// Dialer opens SSH connections to targets. Its fields are read-only once
// it is in use; it is safe for concurrent use by any number of goroutines.
type Dialer struct {
	// User is the login user on every target.
	User string
	// Signers are the client keys offered, in order (key file first, then
	// the agent's keys).
	Signers []ssh.Signer
	// HostKeyCallback verifies host keys: knownhosts.New(known_hosts).
	HostKeyCallback ssh.HostKeyCallback
	// ConnectTimeout bounds the TCP dial plus the SSH handshake.
	// 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CommandTimeout bounds a command run with timeout 0.
	// 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// Keepalive is the interval of keepalive@openssh.com requests on every
	// Conn; 0 means DefaultKeepalive, a negative value turns them off.
	Keepalive time.Duration
	// KeepaliveMax is how many intervals a keepalive may go unanswered
	// before the Conn is declared dead and closed (like OpenSSH's
	// ServerAliveCountMax). 0 means DefaultKeepaliveMax.
	KeepaliveMax int

	agentConn net.Conn
	cmds      memo[string, string]       // script → command line
	plans     memo[planKey, *deployPlan] // Deploy's plans
	finals    memo[planKey, string]      // Finalize's scripts
	algos     sync.Map                   // addr + " " + remote address → host key algorithms to ask for
}

// NewDialer builds a Dialer from the configuration: cfg.KeyFile is read
// and parsed (an encrypted key is refused: use the agent), the agent at
// $SSH_AUTH_SOCK is used when cfg.Agent is set, and host keys are checked
// against cfg.KnownHosts. Close the Dialer to close the agent connection.
func NewDialer(cfg config.SSH) (*Dialer, error) {
	if cfg.User == "" {
		return nil, errors.New("ssh: no user configured")
	}
	if cfg.KnownHosts == "" {
		return nil, errors.New("ssh: no known_hosts file configured (host keys are always verified)")
	}
	d := &Dialer{
		User:           cfg.User,
		ConnectTimeout: cfg.ConnectTimeout.D(),
		CommandTimeout: cfg.CommandTimeout.D(),
		Keepalive:      cfg.Keepalive.D(),
	}
	if cfg.KeyFile != "" {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ssh: key_file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, fmt.Errorf("ssh: key_file %s is passphrase-protected: load it into an ssh-agent and set agent: true", cfg.KeyFile)
			}
			return nil, fmt.Errorf("ssh: key_file %s: %w", cfg.KeyFile, err)
		}
		d.Signers = append(d.Signers, s)
	}
	if cfg.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, errors.New("ssh: agent: true but SSH_AUTH_SOCK is not set")
		}
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("ssh: agent at SSH_AUTH_SOCK: %w", err)
		}
		signers, err := agent.NewClient(c).Signers()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("ssh: agent: list keys: %w", err)
		}
		if len(signers) == 0 && len(d.Signers) == 0 {
			c.Close()
			return nil, errors.New("ssh: the agent holds no keys and no key_file is configured")
		}
		d.Signers = append(d.Signers, signers...)
		d.agentConn = c
	}
	if len(d.Signers) == 0 {
		return nil, errors.New("ssh: no key: set key_file or agent: true")
	}
	cb, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("ssh: known_hosts: %w", err)
	}
	d.HostKeyCallback = cb
	return d, nil
}

// Close releases the Dialer's agent connection, if any. Conns already
// dialed stay usable (agent keys only sign during the handshake).
func (d *Dialer) Close() error {
	if d.agentConn != nil {
		return d.agentConn.Close()
	}
	return nil
}

func (d *Dialer) connectTimeout() time.Duration {
	if d.ConnectTimeout > 0 {
		return d.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (d *Dialer) commandTimeout() time.Duration {
	if d.CommandTimeout > 0 {
		return d.CommandTimeout
	}
	return DefaultCommandTimeout
}

// Dial connects to host and authenticates, within ConnectTimeout and ctx.
// The error is a *HostError whose Kind says why: unreachable, timeout,
// host key mismatch, unknown host key, host key revoked, auth failed,
// handshake failed or canceled.
func (d *Dialer) Dial(ctx context.Context, host config.Host) (*Conn, error) {
	if d.HostKeyCallback == nil {
		return nil, &HostError{Host: host.String(), Kind: KindHandshake, Err: errors.New("no host key callback: refusing to connect without verifying the host key")}
	}
	addr := host.Addr()
	name := host.String()
	dctx, cancel := context.WithTimeout(ctx, d.connectTimeout())
	defer cancel()
	fail := func(kind string, err error) (*Conn, error) {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = KindCanceled
		}
		return nil, &HostError{Host: name, Kind: kind, Err: err}
	}

	nd := net.Dialer{KeepAlive: 30 * time.Second}
	tcp, err := nd.DialContext(dctx, "tcp", addr)
	if err != nil {
		if isTimeout(err) || dctx.Err() != nil {
			return fail(KindTimeout, fmt.Errorf("no TCP connection to %s within %v", addr, d.connectTimeout()))
		}
		return fail(KindUnreachable, err)
	}
	// The handshake is bounded by the same deadline; canceling ctx
	// interrupts it too.
	if dl, ok := dctx.Deadline(); ok {
		_ = tcp.SetDeadline(dl)
	}
	stop := context.AfterFunc(dctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })

	var offered ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: d.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(d.Signers...)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			offered = key
			return d.HostKeyCallback(hostname, remote, key)
		},
		HostKeyAlgorithms: d.hostKeyAlgorithms(addr, tcp.RemoteAddr()),
		ClientVersion:     "SSH-2.0-deploybot",
	}
	sc, chans, reqs, err := ssh.NewClientConn(tcp, addr, cfg)
	interrupted := !stop()
	if err == nil && interrupted {
		sc.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		tcp.Close()
		return fail(classifyHandshake(err, offered, d.connectTimeout()))
	}
	_ = tcp.SetDeadline(time.Time{})
	c := &Conn{
		// Not ssh.NewClient: its three goroutines per connection (global
		// requests, channel opens, waiting for the end) become one, serve.
		// Sessions and direct-tcpip channels need only the ssh.Conn; port
		// forwarding from the target, which needs the rest, is never used.
		client: &ssh.Client{Conn: sc},
		host:   host,
		d:      d,
		done:   make(chan struct{}),
	}
	go c.serve(chans, reqs)
	if ka := d.keepalive(); ka > 0 {
		c.startKeepalive(ka, d.keepaliveMax())
	}
	return c, nil
}

func (d *Dialer) keepalive() time.Duration {
	switch {
	case d.Keepalive < 0:
		return 0
	case d.Keepalive == 0:
		return DefaultKeepalive
	}
	return d.Keepalive
}

func (d *Dialer) keepaliveMax() int {
	if d.KeepaliveMax > 0 {
		return d.KeepaliveMax
	}
	return DefaultKeepaliveMax
}

// probeKey is a key no known_hosts line holds: offering it to the host key
// callback makes knownhosts list the keys it does know for a host.
var probeKey = func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

// hostKeyAlgorithms returns the host key algorithms to accept from addr:
// those of the keys known_hosts has for it, so that the server presents a
// key we can check (x/crypto prefers ECDSA, OpenSSH's own client asks for
// what it knows). nil (the defaults) when nothing is known, and the
// handshake then fails with "unknown host key".
//
// The answer is remembered per address: HostKeyCallback does not change
// while the Dialer is in use, and each probe scans all of known_hosts. The
// key the host presents is still checked in full by HostKeyCallback on
// every dial.
func (d *Dialer) hostKeyAlgorithms(addr string, remote net.Addr) []string {
	key := addr + " " + remote.String()
	if v, ok := d.algos.Load(key); ok {
		return v.([]string)
	}
	algos := d.probeAlgorithms(addr, remote)
	d.algos.Store(key, algos)
	return algos
}

// probeAlgorithms asks HostKeyCallback which keys it knows for addr (see
// hostKeyAlgorithms).
func (d *Dialer) probeAlgorithms(addr string, remote net.Addr) []string {
	err := d.HostKeyCallback(addr, remote, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !slicesContains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA: // SHA-2 signatures only, as OpenSSH 8.8+
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	return algos
}

func classifyHandshake(err error, offered ssh.PublicKey, timeout time.Duration) (string, error) {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) > 0:
		var want []string
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		got := "?"
		if offered != nil {
			got = offered.Type() + " " + ssh.FingerprintSHA256(offered)
		}
		return KindHostKeyMismatch, fmt.Errorf("the host offered %s; known_hosts has %s", got, strings.Join(want, ", "))
	case errors.As(err, &ke):
		got := "its key"
		if offered != nil {
			got = offered.Type() + " " + ssh.FingerprintSHA256(offered)
		}
		return KindUnknownHostKey, fmt.Errorf("known_hosts has no key for this host (it offered %s)", got)
	case errors.As(err, &re):
		return KindHostKeyRevoked, fmt.Errorf("the host offered a key marked @revoked (%s:%d)", re.Revoked.Filename, re.Revoked.Line)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return KindAuthFailed, err
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return KindTimeout, fmt.Errorf("SSH handshake not finished within %v: %w", timeout, err)
	}
	return KindHandshake, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT) || (errors.As(err, &ne) && ne.Timeout())
}
