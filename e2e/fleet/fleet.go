// Package fleet starts a fleet of real OpenSSH sshd "hosts" on this machine
// for deploybot's end-to-end tests, benchmarks and demo.
//
// Every host behaves like a separate machine:
//
//   - its own network namespace (netns "dbt<slot>-hostNN") with its own
//     127.0.0.1 and one address on a per-fleet bridge subnet, 10.200.<slot>.0/24;
//   - its own mount namespace in which a per-host directory (Host.Root) is
//     bind-mounted over /srv/deployment, so the same target_dir does not
//     collide across hosts;
//   - its own hostname (UTS namespace), Host.Name;
//   - its own sshd (/usr/sbin/sshd -D) with its own ed25519 host key, which
//     accepts one client key for one unprivileged deploy user
//     (default "deploybot-test").
//
// The root namespace holds the bridge's first address (Fleet.GatewayIP): that
// is where the hosts reach the "deployment host", e.g. a git HTTP server run
// by the deployer under test. Hosts have no default route: they reach only
// their own loopback and the fleet subnet.
//
// What lives here: creating and destroying the namespaces, links, sshd
// processes, keys and known_hosts file; simulating host faults (StopSSHD,
// KillAll, Blackhole); running verification commands on a host (Exec). What
// does not live here: anything deploybot itself does (the SSH deploy engine,
// the git server, the deploy steps). Tests drive those against the fleet.
//
// Each host's sshd runs under a small reaper: the binary that called Start,
// re-executed (see the init function in reaper.go), which adopts and reaps
// whatever the host's processes orphan, so killing a host leaves no zombies
// even where init does not reap. Teardown is by PID: every process in a
// host's network namespace, never by name.
//
// Parallel fleets (several test packages run by `go test ./...` at once) are
// kept apart by a slot number allocated under a file lock in
// /run/deploybot-fleet; leftovers of a process that died without cleaning up
// are removed the next time a fleet starts (see ReapStale).
//
// Everything needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), OpenSSH's sshd,
// iproute2's ip and util-linux (unshare, setpriv, mount); Check reports what
// is missing and StartT skips or fails a test accordingly.
package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultUser is the deploy user hosts accept logins for when Options.User
// is empty. It is created (useradd -m -s /bin/sh, password "*") if missing.
const DefaultUser = "deploybot-test"

// MaxHosts is the largest fleet Start accepts: one /24 per fleet, the
// gateway takes .1 and host i (1-based) takes .(i+1).
const MaxHosts = 250

// DeployPath is where every host sees its own Host.Root.
const DeployPath = "/srv/deployment"

// Options configure Start.
type Options struct {
	// Hosts is the number of hosts, 1..MaxHosts.
	Hosts int
	// User is the unprivileged login user on every host; "" means
	// DefaultUser. It is created if it does not exist.
	User string
	// Dir holds the fleet's files (keys, known_hosts, one directory per
	// host). "" means a new temporary directory, removed by Close. A given
	// Dir is created if needed and made 0755, and every directory above it
	// must be searchable by others (sshd reads authorized_keys as the
	// deploy user); Close removes only what Start created inside it.
	Dir string
	// Log, if set, receives the harness's progress lines and every sshd's
	// log (sshd -e), prefixed with the host name.
	Log io.Writer
	// Binds are bind mounts made in every host's mount namespace, after
	// Root on /srv/deployment: the target (an existing file or directory
	// of this machine) then shows the source, on every host and only
	// there — to stand in for what targets have and this machine lacks
	// (sudo, the service manager).
	Binds []Bind
}

// Bind is one bind mount of Options.Binds: Source (a path of this
// machine) is mounted over Target (an existing path of the same kind).
type Bind struct{ Source, Target string }

// Fleet is a running set of hosts. Close it to remove everything.
type Fleet struct {
	// Hosts are the fleet's hosts, in order host01, host02, …
	Hosts []*Host
	// User is the login user on every host.
	User string
	// KeyFile is the client private key (OpenSSH format, mode 0600)
	// authorized on every host; KeyFile+".pub" holds its public key.
	KeyFile string
	// Signer is KeyFile's key, ready for ssh.PublicKeys.
	Signer ssh.Signer
	// KnownHostsFile lists every host's key under its IP (port 22), in
	// OpenSSH known_hosts format.
	KnownHostsFile string
	// GatewayIP is the root-namespace address on the fleet bridge: what
	// hosts reach the deployment host at (bind a repo server to it).
	GatewayIP string
	// Subnet is the fleet's subnet in CIDR form, 10.200.<Slot>.0/24.
	Subnet string
	// Slot is the fleet's number (1..254): the third octet of Subnet and
	// part of every name the fleet creates.
	Slot int
	// Bridge is the name of the fleet's bridge in the root namespace.
	Bridge string
	// Dir is the directory holding the fleet's files.
	Dir string

	opts      Options
	ownsDir   bool
	created   []string // paths inside a caller-given Dir that Close removes
	uid, gid  int
	home      string
	hostKeyCB ssh.HostKeyCallback
	phases    []string // how long each step of Start took, for the log

	closeOnce sync.Once
	closeErr  error
}

// Host is one sshd "machine" of a fleet.
type Host struct {
	// Name is "host01", "host02", …: also the hostname the host's
	// processes see (own UTS namespace). It is not resolvable: dial IP or
	// Addr.
	Name string
	// IP is the host's address on the fleet bridge.
	IP string
	// Addr is IP:22, what to dial.
	Addr string
	// NetNS is the name of the host's network namespace (ip netns).
	NetNS string
	// Veth is the root-namespace end of the host's veth pair (on Bridge);
	// inside the namespace the other end is eth0.
	Veth string
	// Dir is the host's directory: sshd config, host key, pid file,
	// authorized_keys and srv/.
	Dir string
	// Root is Dir/srv in the root filesystem: the directory the host sees
	// as /srv/deployment. It is owned by the deploy user.
	Root string
	// HostKey is the host's public ed25519 host key.
	HostKey ssh.PublicKey

	f       *Fleet
	config  string // sshd_config path
	keyFile string // host private key path

	mu      sync.Mutex
	procs   []*proc  // reapers started by StartSSHD, running or not yet waited for
	lastLog *lineLog // output of the latest sshd
}

// StartT starts a fleet for a test or benchmark and closes it in t.Cleanup.
// With go test -v and no Options.Log, the harness's lines go to t.Log; a
// failed test also gets each host's recent sshd log.
// When this machine cannot run a fleet (not root, missing capability or
// tool) it fails the test naming what is missing if the CI environment
// variable is set, and skips it otherwise. Any other failure fails the test.
func StartT(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	if err := Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v [skipped: CI is not set]", err)
	}
	if opts.Log == nil && testing.Verbose() {
		opts.Log = harnessLines{tlogWriter{t}}
	}
	f, err := Start(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range f.Hosts {
				t.Logf("fleet: %s sshd log:\n%s", h.Name, h.SSHDLog())
			}
		}
		if err := f.Close(); err != nil {
			t.Errorf("fleet: close: %v", err)
		}
	})
	return f
}

// harnessLines passes on the harness's own lines, not sshd's.
type harnessLines struct{ w io.Writer }

func (h harnessLines) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "fleet: ") {
		return h.w.Write(p)
	}
	return len(p), nil
}

// tlogWriter sends log lines to t.Log until the test ends.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // t.Log after the test finished panics
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Start creates the fleet's bridge, namespaces, keys and sshd processes, and
// returns once every host accepts SSH connections. Hosts are set up
// concurrently. On error everything created so far is removed.
func Start(opts Options) (*Fleet, error) {
	if opts.Hosts < 1 || opts.Hosts > MaxHosts {
		return nil, fmt.Errorf("fleet: Hosts = %d, want 1..%d", opts.Hosts, MaxHosts)
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if err := Check(); err != nil {
		return nil, err
	}
	begin := time.Now()
	f := &Fleet{User: opts.User, opts: opts}
	if err := f.start(); err != nil {
		if cerr := f.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, cerr)
		}
		return nil, err
	}
	f.logf("%d hosts up on %s (bridge %s, gateway %s) in %v (%s)", len(f.Hosts), f.Subnet, f.Bridge, f.GatewayIP, time.Since(begin).Round(time.Millisecond), strings.Join(f.phases, ", "))
	return f, nil
}

func (f *Fleet) logf(format string, args ...any) {
	if f.opts.Log != nil {
		fmt.Fprintf(f.opts.Log, "fleet: "+format+"\n", args...)
	}
}

func (f *Fleet) start() error {
	// Files.
	if f.opts.Dir == "" {
		d, err := os.MkdirTemp("", "deploybot-fleet-")
		if err != nil {
			return err
		}
		f.Dir, f.ownsDir = d, true
	} else {
		d, err := filepath.Abs(f.opts.Dir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		f.Dir = d
	}
	if err := os.Chmod(f.Dir, 0o755); err != nil {
		return err
	}
	// sshd reads authorized_keys as the deploy user.
	for d := filepath.Dir(f.Dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("fleet: %s (mode %v) is not searchable by the deploy user; choose Options.Dir (or TMPDIR) elsewhere", d, st.Mode().Perm())
		}
		if d == "/" {
			break
		}
	}
	for _, d := range []string{"/run/sshd", DeployPath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	// Slot, user, bridge: under the machine-wide lock.
	t0 := time.Now()
	if err := f.allocate(); err != nil {
		return err
	}
	f.phases = append(f.phases, "allocate "+time.Since(t0).Round(time.Millisecond).String())
	t0 = time.Now()

	// Keys.
	if err := f.writeClientKey(); err != nil {
		return err
	}
	f.Hosts = make([]*Host, f.opts.Hosts)
	for i := range f.Hosts {
		name := fmt.Sprintf("host%02d", i+1)
		dir := filepath.Join(f.Dir, name)
		f.Hosts[i] = &Host{
			Name:  name,
			IP:    fmt.Sprintf("10.200.%d.%d", f.Slot, i+2),
			NetNS: fmt.Sprintf("%s%d-%s", namePrefix, f.Slot, name),
			Veth:  fmt.Sprintf("%s%dh%d", namePrefix, f.Slot, i+1),
			Dir:   dir,
			Root:  filepath.Join(dir, "srv"),
			f:     f,
		}
		f.Hosts[i].Addr = net.JoinHostPort(f.Hosts[i].IP, "22")
		f.track(dir)
	}
	if err := parallel(len(f.Hosts), func(i int) error { return f.Hosts[i].writeFiles() }); err != nil {
		return err
	}
	if err := f.writeKnownHosts(); err != nil {
		return err
	}

	// Network: namespaces and veths in one ip batch, then each namespace.
	f.phases = append(f.phases, "files "+time.Since(t0).Round(time.Millisecond).String())
	t0 = time.Now()
	if err := f.createLinks(); err != nil {
		return err
	}
	f.phases = append(f.phases, "network "+time.Since(t0).Round(time.Millisecond).String())
	t0 = time.Now()
	// sshd.
	if err := parallel(len(f.Hosts), func(i int) error { return f.Hosts[i].StartSSHD() }); err != nil {
		return err
	}
	f.phases = append(f.phases, "sshd "+time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// track records a path Close must remove when the caller gave Dir.
func (f *Fleet) track(p string) { f.created = append(f.created, p) }

func (f *Fleet) writeClientKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploybot-fleet-client")
	if err != nil {
		return err
	}
	f.Signer = signer
	f.KeyFile = filepath.Join(f.Dir, "id_ed25519")
	f.track(f.KeyFile)
	f.track(f.KeyFile + ".pub")
	if err := os.WriteFile(f.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return os.WriteFile(f.KeyFile+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)
}

func (f *Fleet) writeKnownHosts() error {
	var b strings.Builder
	for _, h := range f.Hosts {
		b.WriteString(knownhosts.Line([]string{h.Addr}, h.HostKey))
		b.WriteByte('\n')
	}
	f.KnownHostsFile = filepath.Join(f.Dir, "known_hosts")
	f.track(f.KnownHostsFile)
	if err := os.WriteFile(f.KnownHostsFile, []byte(b.String()), 0o644); err != nil {
		return err
	}
	cb, err := knownhosts.New(f.KnownHostsFile)
	if err != nil {
		return err
	}
	f.hostKeyCB = cb
	return nil
}

// ClientConfig returns a new client configuration for the fleet: the deploy
// user, the fleet's client key, host keys verified against KnownHostsFile
// (knownhosts.New) and a 10 s dial and handshake timeout.
func (f *Fleet) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:              f.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(f.Signer)},
		HostKeyCallback:   f.hostKeyCB,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           scale.D(10 * time.Second),
	}
}

// Dial opens an SSH connection to h with ClientConfig.
func (f *Fleet) Dial(h *Host) (*ssh.Client, error) {
	return ssh.Dial("tcp", h.Addr, f.ClientConfig())
}

// Host returns the host called name ("host01", …), or nil.
func (f *Fleet) Host(name string) *Host {
	for _, h := range f.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Close kills every process in the fleet's namespaces (sshd and whatever
// SSH sessions started), deletes the namespaces, veths and bridge, releases
// the slot and removes the fleet's files. It is safe to call more than once;
// later calls return the first call's result.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

func (f *Fleet) close() error {
	begin := time.Now()
	var errs []error
	var nss []string
	for _, h := range f.Hosts {
		if h != nil {
			nss = append(nss, h.NetNS)
		}
	}
	// Kill everything but the hosts' reapers, which reap what dies (this
	// machine's init may not), then let the reapers exit.
	reapers := map[int]bool{}
	for _, h := range f.Hosts {
		if h != nil {
			h.mu.Lock()
			for _, p := range h.liveProcs() {
				reapers[p.pid] = true
			}
			h.mu.Unlock()
		}
	}
	if err := killNetns(nss, nil, reapers, scale.D(10*time.Second)); err != nil {
		errs = append(errs, err)
	}
	for _, h := range f.Hosts {
		if h != nil {
			h.mu.Lock()
			h.endReapers()
			h.mu.Unlock()
		}
	}
	if err := killNetns(nss, nil, nil, scale.D(5*time.Second)); err != nil {
		errs = append(errs, err)
	}
	if f.Slot != 0 {
		if err := removeSlotNet(f.Slot); err != nil {
			errs = append(errs, err)
		}
		if err := withLock(func() error { return os.Remove(slotFile(f.Slot)) }); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if f.ownsDir {
		if err := os.RemoveAll(f.Dir); err != nil {
			errs = append(errs, err)
		}
	} else {
		for _, p := range f.created {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	f.logf("closed %s in %v", f.Subnet, time.Since(begin).Round(time.Millisecond))
	return errors.Join(errs...)
}

// parallel runs fn(0..n-1) on a bounded number of goroutines and returns
// the errors joined.
func parallel(n int, fn func(i int) error) error {
	const workers = 16
	sem := make(chan struct{}, workers)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run runs a command and returns its stdout; a failure includes stderr.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := commandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func itoa(i int) string { return strconv.Itoa(i) }
