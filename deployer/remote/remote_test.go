package remote

// Real tests against the e2e fleet: sshd "hosts" in their own network and
// mount namespaces (package deploybot/e2e/fleet). They need root; the
// fleet harness skips them (fails them when CI is set) where it cannot
// run. go test -short skips them.

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"deploybot/config"
	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// helperEnv switches the test binary, copied onto a host, into a helper
// process (see TestHelperProcess).
const helperEnv = "REMOTE_TEST_HELPER"

// servicePort is where the helper service listens on each host's own
// loopback.
const servicePort = 18080

func startFleet(t *testing.T, n int) (*fleet.Fleet, *Dialer) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs the e2e fleet (root, sshd)")
	}
	f := fleet.StartT(t, fleet.Options{Hosts: n})
	d := newDialer(t, f, f.KnownHostsFile, f.KeyFile)
	return f, d
}

func newDialer(t *testing.T, f *fleet.Fleet, knownHosts, keyFile string) *Dialer {
	t.Helper()
	d, err := NewDialer(config.SSH{
		User:           f.User,
		KeyFile:        keyFile,
		KnownHosts:     knownHosts,
		ConnectTimeout: config.Duration(5 * time.Second),
		CommandTimeout: config.Duration(30 * time.Second),
		Keepalive:      config.Duration(5 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func target(h *fleet.Host) config.Host { return config.Host{Name: h.IP, Port: 22} }

func dialT(t *testing.T, d *Dialer, h *fleet.Host) *Conn {
	t.Helper()
	c, err := d.Dial(context.Background(), target(h))
	if err != nil {
		t.Fatalf("dial %s: %v", h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantKind(t *testing.T, err error, kind string) *HostError {
	t.Helper()
	var he *HostError
	if !errors.As(err, &he) || he.Kind != kind {
		t.Fatalf("error %v (%T), want a HostError of kind %q", err, err, kind)
	}
	return he
}

// TestDial: a good dial and a command; every way a dial fails, each with
// its kind: host key mismatch, unknown host key, auth failed, unreachable
// (sshd stopped), timeout (blackholed) within the connect timeout; a
// connection whose sshd dies or whose peer goes silent is declared lost.
func TestDial(t *testing.T) {
	f, d := startFleet(t, 2)
	h1, h2 := f.Hosts[0], f.Hosts[1]
	ctx := context.Background()

	c := dialT(t, d, h1)
	res, err := c.Run(ctx, "hostname; id -un; echo to-stderr >&2; exit 3", 0)
	if err != nil || res.ExitCode != 3 || res.Output != h1.Name+"\n"+f.User+"\nto-stderr\n" || res.TimedOut {
		t.Fatalf("run: %+v, %v", res, err)
	}
	t.Logf("one command over an open connection: %v", res.Duration)

	// known_hosts with host01's address and host02's key.
	dir := t.TempDir()
	wrong := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(wrong, []byte(knownhosts.Line([]string{h1.Addr}, h2.HostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dw := newDialer(t, f, wrong, f.KeyFile)
	_, err = dw.Dial(ctx, target(h1))
	he := wantKind(t, err, KindHostKeyMismatch)
	if !strings.Contains(he.Error(), ssh.FingerprintSHA256(h1.HostKey)) || !strings.Contains(he.Error(), ssh.FingerprintSHA256(h2.HostKey)) {
		t.Errorf("mismatch error does not name both keys: %v", he)
	}
	t.Logf("wrong key: %v", err)
	_, err = dw.Dial(ctx, target(h2))
	wantKind(t, err, KindUnknownHostKey)
	t.Logf("unknown host: %v", err)

	// A key the hosts do not accept.
	_, priv, _ := ed25519.GenerateKey(nil)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	stranger := filepath.Join(dir, "id_stranger")
	if err := os.WriteFile(stranger, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = newDialer(t, f, f.KnownHostsFile, stranger).Dial(ctx, target(h1))
	wantKind(t, err, KindAuthFailed)
	t.Logf("stranger key: %v", err)

	// sshd killed: the open connection is lost, new dials are refused.
	c2 := dialT(t, d, h2)
	if err := h2.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Run(ctx, "true", scale.D(5*time.Second))
	wantKind(t, err, KindConnectionLost)
	select {
	case <-c2.Done():
	case <-time.After(scale.D(30 * time.Second)):
		t.Error("Done not closed after sshd died")
	}
	_, err = d.Dial(ctx, target(h2))
	wantKind(t, err, KindUnreachable)
	t.Logf("sshd stopped: %v", err)
	if err := h2.StartSSHD(); err != nil {
		t.Fatal(err)
	}

	// Blackholed: the dial times out within the connect timeout, and an
	// open connection is closed by its keepalives.
	dk := newDialer(t, f, f.KnownHostsFile, f.KeyFile)
	dk.ConnectTimeout = scale.D(500 * time.Millisecond)
	dk.Keepalive = scale.D(200 * time.Millisecond)
	dk.KeepaliveMax = 2
	c3, err := dk.Dial(ctx, target(h2))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	time.Sleep(scale.D(500 * time.Millisecond)) // keepalives answered meanwhile
	if c3.Err() != nil {
		t.Fatalf("live connection closed: %v", c3.Err())
	}
	if err := h2.Blackhole(); err != nil {
		t.Fatal(err)
	}
	defer h2.Unblackhole()
	start := time.Now()
	_, err = dk.Dial(ctx, target(h2))
	el := time.Since(start)
	wantKind(t, err, KindTimeout)
	if el > scale.D(1500*time.Millisecond) {
		t.Errorf("blackholed dial took %v with a %v connect timeout", el, dk.ConnectTimeout)
	}
	t.Logf("blackholed dial: %v after %v", err, el.Round(time.Millisecond))
	select {
	case <-c3.Done():
		t.Logf("silent peer: connection closed %v after blackhole: %v", time.Since(start).Round(time.Millisecond), c3.Err())
	case <-time.After(scale.D(30 * time.Second)):
		t.Error("keepalives did not close the connection to a silent peer")
	}
	_, err = c3.Run(ctx, "true", scale.D(time.Second))
	wantKind(t, err, KindConnectionLost)
	if err := h2.Unblackhole(); err != nil {
		t.Fatal(err)
	}
	// Keys from the ssh-agent at $SSH_AUTH_SOCK (here an in-process one
	// holding the fleet's key), no key file.
	raw, err := os.ReadFile(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	al, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	go func() {
		for {
			conn, err := al.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _ = agent.ServeAgent(kr, conn) }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	da, err := NewDialer(config.SSH{User: f.User, Agent: true, KnownHosts: f.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if len(da.Signers) != 1 {
		t.Errorf("agent signers: %d", len(da.Signers))
	}
	ca, err := da.Dial(ctx, target(h1))
	if err != nil {
		t.Fatalf("dial with the agent's key: %v", err)
	}
	if res, err := ca.Run(ctx, "echo agent", 0); err != nil || res.Output != "agent\n" {
		t.Errorf("run over an agent-authenticated connection: %+v %v", res, err)
	}
	ca.Close()

	// A canceled context is "canceled".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = d.Dial(cctx, target(h1))
	wantKind(t, err, KindCanceled)
}

// TestRunTimeoutKills: a command that hangs past its timeout is reported
// TimedOut and killed together with what it started (its process group);
// the connection stays usable.
func TestRunTimeoutKills(t *testing.T) {
	f, d := startFleet(t, 1)
	h := f.Hosts[0]
	c := dialT(t, d, h)
	ctx := context.Background()
	start := time.Now()
	res, err := c.Run(ctx, `echo $$ >/srv/deployment/hang.pid
sleep 317 &
echo $! >/srv/deployment/hang.child
echo started
wait
echo never`, scale.D(time.Second))
	el := time.Since(start)
	wantKind(t, err, KindCommandTimeout)
	if !res.TimedOut || res.ExitCode != -1 || res.Output != "started\n" {
		t.Errorf("result %+v", res)
	}
	if el > scale.D(3*time.Second) {
		t.Errorf("Run returned after %v with a %v timeout", el, scale.D(time.Second))
	}
	t.Logf("timed out after %v", el.Round(time.Millisecond))
	// Both the shell and its child are gone.
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		out, _ := h.Exec(`for f in hang.pid hang.child; do kill -0 "$(cat /srv/deployment/$f)" 2>/dev/null && echo "$f alive"; done; true`)
		if out == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the timeout: %s", out)
		}
		time.Sleep(scale.D(50 * time.Millisecond))
	}
	if res, err := c.Run(ctx, "echo still here", 0); err != nil || res.Output != "still here\n" {
		t.Errorf("connection after a kill: %+v %v", res, err)
	}
	if n := c.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}

	// A canceled context ends a command too.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(scale.D(300*time.Millisecond), cancel)
	_, err = c.Run(cctx, "sleep 30", 0)
	wantKind(t, err, KindCanceled)

	// The fallback for an sshd that ignores signal requests: the process
	// group killed from a second session, by the pid the script printed.
	os.Remove(filepath.Join(h.Root, "g.pid"))
	ran := make(chan Result, 1)
	go func() {
		res, _ := c.Run(ctx, "echo $$ >/srv/deployment/g.pid; sleep 318 & echo $! >/srv/deployment/g.child; wait", scale.D(20*time.Second))
		ran <- res
	}()
	var pgid int
	for deadline := time.Now().Add(scale.D(30 * time.Second)); pgid == 0 && time.Now().Before(deadline); time.Sleep(scale.D(20 * time.Millisecond)) {
		b, _ := os.ReadFile(filepath.Join(h.Root, "g.pid"))
		pgid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	time.Sleep(scale.D(100 * time.Millisecond)) // the child is started
	c.killGroup(pgid)
	select {
	case res := <-ran:
		if res.ExitCode != 128+9 {
			t.Errorf("killed group: %+v", res)
		}
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("killGroup did not end the command")
	}
	if out, _ := h.Exec(`kill -0 "$(cat /srv/deployment/g.child)" 2>/dev/null && echo alive; true`); out != "" {
		t.Error("killGroup left the child running")
	}
}

// serviceRestart is a restart command that (re)starts the helper HTTP
// service from the new revision and records the restart.
const serviceRestart = `pidf=/srv/deployment/svc.pid
[ ! -f "$pidf" ] || kill "$(cat "$pidf")" 2>/dev/null
` + helperEnv + `=http:127.0.0.1:18080 nohup /srv/deployment/remote.test -test.run='^TestHelperProcess$' >/dev/null 2>&1 &
echo $! >"$pidf"
echo "$DEPLOY_REV $PWD" >>/srv/deployment/restarts
echo "restarted $DEPLOY_REV"`
