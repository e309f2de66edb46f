package e2e

import (
	"errors"
	"fmt"
	"github.com/ergochat/irc-go/ircmsg"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/ircd"
)

// binary is the deploybot binary built for this test run.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(simBotEnv) != "" {
		os.Exit(simBotMain()) // the bot process of the simulated-fleet benchmark
	}
	dir, err := os.MkdirTemp("", "deploybot-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "deploybot")
	build := exec.Command("go", "build", "-o", binary, "deploybot/cmd/deploybot")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building deploybot:", err)
		os.Exit(1)
	}
	code := m.Run()
	shared.close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// shared is one IRC server for the whole package: InspIRCd holds every new
// client about a second, so tests share a server and keep connections few.
var shared sharedServer

type sharedServer struct {
	once sync.Once
	srv  *ircd.Server
	err  error
}

func (s *sharedServer) get(t *testing.T) *ircd.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	s.once.Do(func() { s.srv, s.err = ircd.Start(ircd.Options{TLS: true}) })
	if s.err != nil {
		var missing *ircd.MissingError
		if os.Getenv("CI") == "" && errors.As(s.err, &missing) {
			t.Skipf("skipping: %v (scripts/install-deps.sh installs it)", s.err)
		}
		t.Fatalf("starting InspIRCd + Anope: %v", s.err)
	}
	return s.srv
}

func (s *sharedServer) close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// bot is a running `deploybot serve`.
type bot struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	config string
	dir    string
}

// startBot writes config and files (name → content) into a fresh
// directory and runs `deploybot serve` on that config until the test ends.
func startBot(t testing.TB, config string, files map[string]string) *bot {
	t.Helper()
	dir := t.TempDir()
	files["deploybot.yaml"] = config
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "deploybot.yaml")
	b := &bot{log: &lockedBuffer{}, config: path, dir: dir}
	b.cmd = exec.Command(binary, "serve", "-c", path)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("deploybot log:\n%s", b.log.String())
		}
	})
	return b
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// inChannel matches nick's JOIN of channel, or a NAMES reply listing nick
// in channel (when nick was there first).
func inChannel(nick, channel string) func(ircmsg.Message) bool {
	return ircd.Or(ircd.IsJoinOf(nick, channel), func(m ircmsg.Message) bool {
		if m.Command != "353" || len(m.Params) < 4 || !strings.EqualFold(m.Params[2], channel) {
			return false
		}
		for _, n := range strings.Fields(m.Params[3]) {
			if strings.EqualFold(strings.TrimLeft(n, "~&@%+"), nick) {
				return true
			}
		}
		return false
	})
}
