// Package harness holds what more than one end-to-end test package needs
// to run deploybot against real servers: building the binary, running
// `deploybot serve` and killing it, a fleet with an upstream repository,
// the test service and a configuration (Env), and turning that
// configuration into an IRC bot's.
//
// It is test support only: nothing in the product imports it. The servers
// themselves live in e2e/fleet, e2e/ircd and e2e/pgsql; the one test scale
// factor in e2e/scale.
package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

// BuildBinary builds deploybot (no cgo) into dir and returns its path.
func BuildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "deploybot")
	build := exec.Command("go", "build", "-o", bin, "deploybot/cmd/deploybot")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building deploybot: %v: %s", err, out)
	}
	return bin, nil
}

// Main runs a test package's tests (m) with the deploybot binary built
// into a temporary directory and stored in *binary, then closes shared
// (its IRC server, if started) and exits with the tests' status.
func Main(m *testing.M, binary *string, shared *SharedServer) {
	dir, err := os.MkdirTemp("", "deploybot-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *binary, err = BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	shared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// RequireTools skips t in -short mode, and when git is missing skips it
// (fails it in CI, CI set).
func RequireTools(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is missing (scripts/install-deps.sh installs it)")
		}
		t.Skip("git is missing (scripts/install-deps.sh installs it)")
	}
}

// Bot is a running `deploybot serve`.
type Bot struct {
	Cmd    *exec.Cmd
	Log    *LockedBuffer
	Config string // the configuration file
	Dir    string
}

// StartBot writes config and files (name → content) into a fresh
// directory and runs binary's `serve` on that config until the test ends
// (interrupt, then kill after 10 s); a failed test gets the bot's log.
func StartBot(t testing.TB, binary, config string, files map[string]string) *Bot {
	t.Helper()
	dir := t.TempDir()
	files["deploybot.yaml"] = config
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "deploybot.yaml")
	return RunBot(t, exec.Command(binary, "serve", "-c", path), path, dir)
}

// RunBot starts cmd, a `deploybot serve` of config (in dir), until the
// test ends (interrupt, then kill after 10 s, scaled); a failed test gets
// its log.
func RunBot(t testing.TB, cmd *exec.Cmd, config, dir string) *Bot {
	t.Helper()
	b := &Bot{Cmd: cmd, Log: &LockedBuffer{}, Config: config, Dir: dir}
	b.Cmd.Stdout, b.Cmd.Stderr = b.Log, b.Log
	if err := b.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { b.Cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(scale.D(10 * time.Second)):
			b.Cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("deploybot log:\n%s", b.Log.String())
		}
	})
	return b
}

// Kill ends the bot with SIGKILL, as a crash would, and waits until it is
// gone.
func (b *Bot) Kill() {
	b.Cmd.Process.Signal(syscall.SIGKILL)
	b.Cmd.Wait()
}

// LockedBuffer is a strings.Builder safe for concurrent writers.
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
