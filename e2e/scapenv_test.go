package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// scapEnv is a fleet, a deploy repository in Scap3's layout (one of
// e2e/testdata/scap) as the upstream, an IRC server and a bot
// configuration deploying it with scap: true.
//
// The fleet's hosts stand in for Scap3 targets: sudo (/usr/local/bin/sudo
// on each host, which runs its command) and the service manager
// (/usr/sbin/service NAME ACTION runs the unit /srv/deployment/units/NAME)
// are bind-mounted fakes, so that the restart Scap3 would run, "sudo -n
// /usr/sbin/service svc restart", runs the repository's restart.sh from
// target_dir, as a real unit would.
type scapEnv struct {
	t        *testing.T
	fleet    *fleet.Fleet
	dir      string
	svcBin   string
	upstream string // the deploy repository (a working copy)
	srv      *ircd.Server
	head     string // the configuration before services:
	revs     map[string]string
}

const scapServiceBlock = `  svc:
    repo: svc/deploy
    upstream: %s
    scap: true
%s    prompt_timeout: %s
`

// scapLong bounds a deploy's wait for its next line.
func scapLong() time.Duration { return scale.D(90 * time.Second) }

// newScapEnv starts n hosts and an IRC server and makes the upstream from
// testdata/scap/<repo> at revision v1.
func newScapEnv(t *testing.T, repo string, n int) *scapEnv {
	t.Helper()
	harness.RequireTools(t)
	dir, err := os.MkdirTemp("", "deploybot-e2e-scap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &scapEnv{t: t, dir: dir, revs: map[string]string{}}
	bin := filepath.Join(dir, "fakebin")
	write(t, filepath.Join(bin, "sudo"), "#!/bin/sh\n[ \"$1\" != -n ] || shift\nexec \"$@\"\n", 0o755)
	write(t, filepath.Join(dir, "service"), "#!/bin/sh\n# service NAME ACTION\nexec sh /srv/deployment/units/\"$1\" \"$2\"\n", 0o755)
	e.fleet = fleet.StartT(t, fleet.Options{Hosts: n, Binds: []fleet.Bind{
		{Source: bin, Target: "/usr/local/bin"}, {Source: filepath.Join(dir, "service"), Target: "/usr/sbin/service"},
	}})
	e.svcBin = filepath.Join(dir, "svc")
	build := exec.Command("go", "build", "-o", e.svcBin, "./testdata/svc")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test service: %v: %s", err, out)
	}
	for _, h := range e.fleet.Hosts {
		unit := fmt.Sprintf("cd %s && SVC_BIN=%s exec sh ./restart.sh\n", targetDir, e.svcBin)
		write(t, filepath.Join(h.Root, "units", "svc"), unit, 0o644)
	}

	e.upstream = filepath.Join(dir, "upstream")
	e.copyRepo(repo, e.upstream)
	harness.Git(t, e.upstream, "-c", "init.defaultBranch=main", "init", "-q")
	write(t, filepath.Join(e.upstream, "restart.sh"), harness.RestartScript, 0o755)
	e.commit("v1", nil)

	e.srv = ircd.StartT(t, ircd.Options{})
	for acct, pass := range map[string]string{"deploybot": ircBotPass, "alice": "alice-pw-1"} {
		if err := e.srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	write(t, filepath.Join(dir, "sasl.secret"), ircBotPass+"\n", 0o600)
	serve := freeAddrOn(t, e.fleet.GatewayIP)
	e.head = fmt.Sprintf(`irc:
  server: %[1]s
  nick: deploybot
  sasl: {account: deploybot, password_file: %[2]s/sasl.secret}
  channels: ["#ops"]
  relay_listen: %[3]s
  relay_allow: [127.0.0.0/8]
  rate: {per_second: 5, burst: 10}
sal:
  database: %[2]s/sal.db
  listen: %[4]s
  projects: {"#ops": production}
deploy:
  deploy_dir: %[2]s/deployment
  serve: %[5]s
  serve_url: http://%[5]s
  journal_dir: %[2]s/deploys
  ssh:
    user: %[6]s
    key_file: %[7]s
    known_hosts: %[8]s
    connect_timeout: %[9]s
    command_timeout: %[10]s
access:
  deployers:
    accounts: [alice]
services:
`, e.srv.Addr, dir, freeAddr(t), freeAddr(t), serve, e.fleet.User, e.fleet.KeyFile, e.fleet.KnownHostsFile,
		yamlDuration(10*time.Second), yamlDuration(30*time.Second))
	return e
}

// freeAddrOn returns an address of ip with a port nobody listens on now.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	a := freeAddr(t)
	_, port, _ := strings.Cut(a, ":")
	return ip + ":" + port
}

func write(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// copyRepo copies testdata/scap/<repo> to dst, HOSTn replaced by the
// fleet's addresses and SVCBIN by the service binary.
func (e *scapEnv) copyRepo(repo, dst string) {
	t := e.t
	src := filepath.Join("testdata", "scap", repo)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(b), "SVCBIN", e.svcBin)
		for i := len(e.fleet.Hosts); i >= 1; i-- {
			text = strings.ReplaceAll(text, fmt.Sprintf("HOST%d", i), e.fleet.Hosts[i-1].IP)
		}
		rel, _ := filepath.Rel(src, p)
		write(t, filepath.Join(dst, rel), text, 0o644)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// commit commits revision label of the upstream, after edit (if any)
// changed its files, and returns its sha.
func (e *scapEnv) commit(label string, edit func(dir string)) string {
	e.t.Helper()
	write(e.t, filepath.Join(e.upstream, "VERSION"), label+"\n", 0o644)
	if edit != nil {
		edit(e.upstream)
	}
	harness.Git(e.t, e.upstream, "add", "-A")
	harness.Git(e.t, e.upstream, "commit", "-q", "-m", "release "+label)
	e.revs[label] = harness.Git(e.t, e.upstream, "rev-parse", "HEAD")
	return e.revs[label]
}

// config writes a configuration with services (the text under
// services:) and returns its path.
func (e *scapEnv) config(name, services string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	write(e.t, p, e.head+services, 0o600)
	return p
}

// scapConfig is the configuration with the scap: true service.
func (e *scapEnv) scapConfig(environment string) string {
	extra := ""
	if environment != "" {
		extra = "    environment: " + environment + "\n"
	}
	return e.config("scap.yaml", fmt.Sprintf(scapServiceBlock, e.upstream, extra, yamlDuration(60*time.Second)))
}

// importedConfig is the configuration whose service is what import-scap
// prints for the upstream's working copy; check-config must accept it.
func (e *scapEnv) importedConfig(environment string) string {
	t := e.t
	t.Helper()
	args := []string{"import-scap", e.upstream, "-name", "svc", "-upstream", e.upstream}
	if environment != "" {
		args = append(args, "-environment", environment)
	}
	cmd := exec.Command(binary, args...)
	var o, eo strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &eo
	if err := cmd.Run(); err != nil {
		t.Fatalf("import-scap: %v: %s", err, eo.String())
	}
	out := o.String()
	_, body, ok := strings.Cut(out, "\nservices:\n")
	if !ok {
		t.Fatalf("import-scap printed no services:\n%s", out)
	}
	p := e.config("imported.yaml", body+"    prompt_timeout: "+yamlDuration(60*time.Second)+"\n")
	if code, sum, errOut := e.cli(p, "", "check-config"); code != 0 {
		t.Fatalf("check-config of the imported service: exit %d\n%s\n%s\n%s", code, sum, errOut, out)
	}
	return p
}

// cli runs the deploybot binary with configuration conf and stdin.
func (e *scapEnv) cli(conf, stdin string, args ...string) (int, string, string) {
	d := &harness.Env{T: e.t, Config: conf, Binary: binary}
	return d.CLI(stdin, args...)
}

// hostExec runs command on host i.
func (e *scapEnv) hostExec(i int, command string) string {
	out, err := e.fleet.Hosts[i].Exec(command)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// wantLive checks that hosts run label (current, done, restarted through
// the service manager, answering it) and that the others run nothing.
func (e *scapEnv) wantLive(label string, hosts ...int) {
	e.t.Helper()
	sha := e.revs[label]
	on := map[int]bool{}
	for _, i := range hosts {
		on[i] = true
	}
	for i, h := range e.fleet.Hosts {
		cur, _ := os.Readlink(filepath.Join(h.Root, "svc", "deploy-cache", "current"))
		if !on[i] {
			if cur != "" {
				e.t.Errorf("%s: deployed (%s), but its scap.cfg does not list it", h.Name, cur)
			}
			continue
		}
		if filepath.Base(cur) != sha {
			e.t.Errorf("%s: current %s, want %s (%.7s)", h.Name, cur, label, sha)
		}
		if restarts, _ := os.ReadFile(filepath.Join(h.Root, "restarts")); !strings.Contains(string(restarts), sha) {
			e.t.Errorf("%s: the service manager never restarted %s: %q", h.Name, label, restarts)
		}
		var got string
		for deadline := time.Now().Add(scale.D(10 * time.Second)); ; time.Sleep(50 * time.Millisecond) {
			if got = e.hostExec(i, e.svcBin+" -get http://127.0.0.1:18080/health"); got == "200 "+label || time.Now().After(deadline) {
				break
			}
		}
		if got != "200 "+label {
			e.t.Errorf("%s: /health answers %q, want %q", h.Name, got, "200 "+label)
		}
	}
}

// startIRC starts the bot with configuration conf and returns alice, an
// operator in #ops.
func (e *scapEnv) startIRC(conf string) (*ircd.Client, *bot) {
	e.t.Helper()
	text, err := os.ReadFile(conf)
	if err != nil {
		e.t.Fatal(err)
	}
	alice := ircd.DialT(e.t, e.srv.Addr, ircd.ClientOptions{Nick: "alice", Account: "alice", Password: "alice-pw-1", Channels: []string{"#ops"}})
	b := startBot(e.t, string(text), map[string]string{})
	if _, err := alice.Expect(scale.D(30*time.Second), inChannel("deploybot", "#ops")); err != nil {
		e.t.Fatalf("the bot never joined #ops: %v\n%s", err, b.Log.String())
	}
	return alice, b
}

// plan is the dry-run plan of a deploy of rev with configuration conf,
// without its first line (the configuration's path may differ) and the
// lines naming what scap/ settings are not carried out.
func (e *scapEnv) plan(conf, rev string) string {
	e.t.Helper()
	code, out, errOut := e.cli(conf, "", "deploy", "svc", "--rev", rev, "--dry-run")
	if code != 0 {
		e.t.Fatalf("deploy --dry-run: exit %d: %s", code, errOut)
	}
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "not carried out from scap/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
