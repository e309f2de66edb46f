package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// The deploy environment: a real fleet of sshd hosts, a real upstream git
// repository with a submodule, and a real HTTP service (e2e/testdata/svc)
// that the repository's restart.sh (re)starts on every host and that
// answers its revision on /health.

const (
	SvcPort    = 18080
	SvcName    = "svc"
	TargetDir  = "/srv/deployment/svc/deploy"
	HealthPath = "/health"
)

// RestartScript is committed in the upstream: it (re)starts the service
// from the new revision, killing the previous instance by its per-host pid
// file. Files in /srv/deployment (the host's own) make it misbehave for one
// revision: "fail" holding the revision makes it exit 3, "hang" makes it
// hang, "pause" makes it sleep 2 s, "slow" 30 s (recording its pid in
// restart.pid); "gate-<port>" holding it makes the restart of the service
// on that port wait, having created gate-<port>.waiting, until the file is
// removed. The service holds each /health answer while the host's file
// "hold-health" exists, having created "hold-health.waiting".
const RestartScript = `#!/bin/sh
d=/srv/deployment
# armed FILE: $d/FILE holds this revision (read by the shell: the hooks
# cost no process while they are not armed).
armed() { [ -f "$d/$1" ] && { read -r v || [ -n "$v" ]; } <"$d/$1" && [ "$v" = "$DEPLOY_REV" ]; }
echo "$DEPLOY_REV" >>$d/restarts
armed fail && { echo "refusing to start $DEPLOY_REV"; exit 3; }
armed hang && sleep 600
armed pause && sleep 2
if armed slow; then echo $$ >$d/restart.pid; sleep 30; fi
port=${SVC_PORT:-18080}
if armed gate-$port; then
  : >$d/gate-$port.waiting; while [ -f $d/gate-$port ]; do sleep 0.05; done; rm -f $d/gate-$port.waiting
fi
if [ -f $d/svc-$port.pid ] && { read -r old || [ -n "$old" ]; } <$d/svc-$port.pid; then
  kill $old 2>/dev/null && while kill -0 $old 2>/dev/null; do sleep 0.02; done
fi
nohup "$SVC_BIN" -addr 127.0.0.1:$port -dir "$PWD" -hold $d/hold-health >$d/svc-$port.log 2>&1 </dev/null &
echo $! >$d/svc-$port.pid
read -r version <VERSION
echo "started $version as $!"
`

// Env is one fleet, upstream and configuration.
type Env struct {
	T        testing.TB
	Fleet    *fleet.Fleet
	Dir      string
	Upstream string
	SvcBin   string
	Config   string // the configuration file
	Cfg      *config.Config
	Revs     map[string]string // label → sha
	Binary   string            // the deploybot binary CLI runs
}

// Git runs git in dir with a fixed identity and no system or user
// configuration, and returns its trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.org",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit adds a revision labeled label to the upstream, answering status
// on /health, and returns its sha.
func (d *Env) Commit(label string, status int) string {
	t := d.T
	t.Helper()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(d.Upstream, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("VERSION", label+"\n")
	write("health_status", fmt.Sprintf("%d\n", status))
	Git(t, d.Upstream, "add", "-A")
	Git(t, d.Upstream, "commit", "-q", "-m", "release "+label)
	sha := Git(t, d.Upstream, "rev-parse", "HEAD")
	d.Revs[label] = sha
	return sha
}

// svcSource is the directory of the test service's source.
func svcSource() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "svc")
}

// NewEnv starts a fleet of n hosts, the upstream with a submodule and
// revision v1, the service binary, and the configuration, with the canary
// and groups keys groups returns. binary is what CLI runs.
func NewEnv(t testing.TB, binary string, n int, groups func(f *fleet.Fleet) string) *Env {
	t.Helper()
	RequireTools(t)
	f := fleet.StartT(t, fleet.Options{Hosts: n})
	dir, err := os.MkdirTemp("", "deploybot-e2e-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Env{T: t, Fleet: f, Dir: dir, Revs: map[string]string{}, Binary: binary}

	// The service, readable and runnable by the fleet's user.
	d.SvcBin = filepath.Join(dir, "svc")
	build := exec.Command("go", "build", "-o", d.SvcBin, ".")
	build.Dir = svcSource()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test service: %v: %s", err, out)
	}

	// The upstream, with a submodule.
	lib := filepath.Join(dir, "lib")
	d.Upstream = filepath.Join(dir, "upstream")
	for _, p := range []string{lib, d.Upstream} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		Git(t, p, "-c", "init.defaultBranch=main", "init", "-q")
	}
	if err := os.WriteFile(filepath.Join(lib, "lib.txt"), []byte("lib v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, lib, "add", "lib.txt")
	Git(t, lib, "commit", "-q", "-m", "lib v1")
	Git(t, d.Upstream, "-c", "protocol.file.allow=always", "submodule", "add", "-q", lib, "lib")
	if err := os.WriteFile(filepath.Join(d.Upstream, "restart.sh"), []byte(RestartScript), 0o755); err != nil {
		t.Fatal(err)
	}
	d.Commit("v1", 200)

	// The configuration, as production would have it.
	ln, err := net.Listen("tcp", net.JoinHostPort(f.GatewayIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	serve := ln.Addr().String()
	ln.Close()
	d.Config = filepath.Join(dir, "deploybot.yaml")
	d.WriteConfig(d.Config, f.KnownHostsFile, groups(f), serve)
	d.Cfg, err = config.Load(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PromptTimeoutDefault is the services' prompt_timeout in the deploy
// configuration, before scaling.
const PromptTimeoutDefault = 3 * time.Second

// YAMLDuration is d scaled, as a configuration duration: every timeout
// in a test's configuration grows with the machine's load.
func YAMLDuration(d time.Duration) string { return scale.D(d).String() }

// PromptWords is how the bot writes a prompt's timeout d ("8s", "1m30s").
func PromptWords(d time.Duration) string {
	s := max(d.Round(time.Second), time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// WriteConfig writes the deploy configuration to path: hosts checked
// against knownHosts, the canary and groups keys groups, the repository
// served on serve.
func (d *Env) WriteConfig(path, knownHosts, groups, serve string) {
	d.T.Helper()
	conf := fmt.Sprintf(`irc:
  server: 127.0.0.1:1
  nick: deploybot
  channels: ["#ops"]
sal:
  database: %[1]s/sal.db
deploy:
  deploy_dir: %[1]s/deployment
  serve: %[2]s
  serve_url: http://%[2]s
  journal_dir: %[1]s/deploys
  ssh:
    user: %[3]s
    key_file: %[4]s
    known_hosts: %[5]s
    connect_timeout: %[12]s
    command_timeout: %[13]s
services:
  svc:
    repo: svc/deploy
    upstream: %[6]s
    submodules: true
    submodule_urls: ["%[1]s/lib"]
    target_dir: %[7]s
    restart: SVC_BIN=%[8]s sh ./restart.sh
    port: %[9]d
    port_timeout: %[14]s
    keep_revs: 2
    prompt_timeout: %[15]s
    checks:
      - {name: health, http: "http://127.0.0.1:%[9]d%[10]s", timeout: %[16]s}
%[11]s`, d.Dir, serve, d.Fleet.User, d.Fleet.KeyFile, knownHosts, d.Upstream, TargetDir, d.SvcBin, SvcPort, HealthPath, groups,
		// Generous: 30 hosts deploying at once on a busy machine take their
		// time; only the hung-command case waits the command timeout out.
		YAMLDuration(10*time.Second), YAMLDuration(20*time.Second), YAMLDuration(15*time.Second), YAMLDuration(PromptTimeoutDefault), YAMLDuration(10*time.Second))
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		d.T.Fatal(err)
	}
}

// CLI runs the deploybot binary with the configuration; stdin may be "".
func (d *Env) CLI(stdin string, args ...string) (code int, stdout, stderr string) {
	d.T.Helper()
	return d.CLIAt("", d.Binary, stdin, args...)
}

// CLIAt runs prog (the binary, or a link to it) with the configuration
// in dir ("" for the test's own directory), as user alice under sudo; it
// fails the test if prog runs longer than 90 s (scaled).
func (d *Env) CLIAt(dir, prog, stdin string, args ...string) (code int, stdout, stderr string) {
	d.T.Helper()
	args = append(args, "-c", d.Config)
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUDO_USER=alice")
	cmd.Stdin = strings.NewReader(stdin)
	return RunCLI(d.T, cmd)
}

// RunCLI runs cmd, a deploybot command, to its end (killing it and
// failing t if it takes over 90 s, scaled) and returns its exit code and
// output.
func RunCLI(t testing.TB, cmd *exec.Cmd) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	ctx, cancel := context.WithTimeout(context.Background(), scale.D(90*time.Second))
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s hung:\n%s\n%s", strings.Join(cmd.Args, " "), o.String(), e.String())
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}
