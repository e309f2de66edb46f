package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
	"deploybot/e2e/pgsql"
	"deploybot/e2e/scale"
)

// Two deploy hosts, one truth: two deploybot installations (A and B),
// each with its own configuration, deploy_dir, journal_dir, SAL spool,
// git server and bot, sharing one PostgreSQL database for deploy.state
// and the SAL, deploying to the same sshd fleet and talking in the same
// channel. Each runs its processes under a host name of its own (a UTS
// namespace), as on two machines: deploy-a and deploy-b.

const (
	svc2Name = "svc2"
	svc2Port = 18081
)

// deployHost is one installation.
type deployHost struct {
	name   string // the host name of its processes
	nick   string // its bot's nick (and services account)
	prefix string // its bot's command prefix
	dir    string // deploy_dir, journal_dir and the SAL spool live here
	config string // its configuration file
	bot    *bot   // its running bot, if any
}

// twoHosts is a fleet (canary and two hosts), IRC, PostgreSQL and the two
// installations; alice is an operator in #ops.
type twoHosts struct {
	d     *deployEnv
	srv   *ircd.Server
	pg    *pgsql.Server
	url   string // the shared database
	a, b  *deployHost
	alice *ircd.Client
}

// canaryAndTwo: the canary, then group a of two hosts one at a time, so a
// gate on the first host of a holds the second one back.
func canaryAndTwo(f *fleet.Fleet) string {
	return fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%q, %q], parallel: 1}
`, f.Hosts[0].IP, f.Hosts[1].IP, f.Hosts[2].IP)
}

// newTwoHosts starts the servers and writes both installations'
// configurations: A's bot answers "%" commands, B's "!" ones, so each
// command in the shared channel reaches one of them.
func newTwoHosts(t *testing.T) *twoHosts {
	t.Helper()
	harness.RequireTools(t)
	pg := pgsql.StartT(t)
	url := pg.DatabaseT(t)
	srv := ircd.StartT(t, ircd.Options{})
	d := newDeployEnv(t, 3, canaryAndTwo)
	h := &twoHosts{d: d, srv: srv, pg: pg, url: url,
		a: &deployHost{name: "deploy-a", nick: "deploya", prefix: "%"},
		b: &deployHost{name: "deploy-b", nick: "deployb", prefix: "!"}}
	for acct, pass := range map[string]string{h.a.nick: ircBotPass, h.b.nick: ircBotPass, "alice": "alice-pw-1"} {
		if err := srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	base := harness.IRCConfig(t, d.Env, srv, h.a.nick, "  rate: {per_second: 5, burst: 10}\n", yamlDuration(30*time.Second))
	for _, dh := range []*deployHost{h.a, h.b} {
		dh.dir = filepath.Join(d.Dir, dh.name)
		if err := os.MkdirAll(dh.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dh.config = filepath.Join(dh.dir, "deploybot.yaml")
		if err := os.WriteFile(dh.config, []byte(h.hostConfig(t, base, dh, url)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.alice = ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "alice", Account: "alice", Password: "alice-pw-1", Channels: []string{"#ops"}})
	return h
}

// hostConfig turns the bot configuration base into installation dh's:
// its nick and prefix, listeners and directories of its own, the shared
// database for deploy.state and the SAL, a second service, and a command
// timeout long enough for the gates the tests hold.
func (h *twoHosts) hostConfig(t *testing.T, base string, dh *deployHost, url string) string {
	t.Helper()
	d := h.d
	ln, err := net.Listen("tcp", net.JoinHostPort(d.Fleet.GatewayIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	serve := ln.Addr().String()
	ln.Close()
	text := base
	replace := func(old, new string) {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("no %q in the configuration:\n%s", old, text)
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace(fmt.Sprintf("  nick: %s\n  sasl: {account: %s,", h.a.nick, h.a.nick),
		fmt.Sprintf("  nick: %s\n  prefix: %q\n  sasl: {account: %s,", dh.nick, dh.prefix, dh.nick))
	replace("  database: "+d.Dir+"/sal.db\n", fmt.Sprintf("  database: %s\n  spool: %s/sal.spool\n", url, dh.dir))
	replace("  deploy_dir: "+d.Dir+"/deployment\n", fmt.Sprintf("  deploy_dir: %s/deployment\n  state: %s\n", dh.dir, url))
	replace("  journal_dir: "+d.Dir+"/deploys\n", "  journal_dir: "+dh.dir+"/deploys\n")
	serveLine := regexp.MustCompile(`(?m)^  serve: (\S+)\n  serve_url: http://(\S+)\n`)
	if !serveLine.MatchString(text) {
		t.Fatalf("no serve and serve_url in the configuration:\n%s", text)
	}
	text = serveLine.ReplaceAllLiteralString(text, fmt.Sprintf("  serve: %s\n  serve_url: http://%s\n", serve, serve))
	for _, key := range []string{"  relay_listen: ", "  listen: "} {
		i := strings.Index(text, key)
		if i < 0 {
			t.Fatalf("no %q in the configuration", key)
		}
		j := i + strings.IndexByte(text[i:], '\n')
		text = text[:i] + key + freeAddr(t) + text[j:]
	}
	replace("command_timeout: "+yamlDuration(20*time.Second), "command_timeout: "+yamlDuration(60*time.Second))
	replace("\naccess:\n", "\n"+h.svc2Conf()+"access:\n")
	return text
}

// svc2Conf is a second service from the same upstream, in a target
// directory and on a port of its own, on every host at once.
func (h *twoHosts) svc2Conf() string {
	d, f := h.d, h.d.Fleet
	return fmt.Sprintf(`  %[1]s:
    repo: %[1]s/deploy
    upstream: %[2]s
    submodules: true
    submodule_urls: ["%[3]s/lib"]
    target_dir: /srv/deployment/%[1]s/deploy
    restart: SVC_PORT=%[4]d SVC_BIN=%[5]s sh ./restart.sh
    port: %[4]d
    port_timeout: %[9]s
    keep_revs: 2
    checks:
      - {name: health, http: "http://127.0.0.1:%[4]d/health", timeout: %[10]s}
    canary: [%[6]q]
    groups:
      - {name: a, hosts: [%[7]q, %[8]q], parallel: 2}
`, svc2Name, d.Upstream, d.Dir, svc2Port, d.SvcBin, f.Hosts[0].IP, f.Hosts[1].IP, f.Hosts[2].IP,
		yamlDuration(15*time.Second), yamlDuration(10*time.Second))
}

// command is deploybot args run on host dh (its host name, its
// configuration) by alice.
func (dh *deployHost) command(args ...string) *exec.Cmd {
	argv := append([]string{"--uts", "sh", "-c", `echo "$0" >/proc/sys/kernel/hostname && exec "$@"`, dh.name, binary}, args...)
	cmd := exec.Command("unshare", append(argv, "-c", dh.config)...)
	cmd.Env = append(os.Environ(), "SUDO_USER=alice")
	return cmd
}

// run runs deploybot args on dh to the end.
func (dh *deployHost) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, dh.command(args...))
}

// startBot starts dh's bot and waits until client sees it in #ops.
func (dh *deployHost) startBot(t *testing.T, client *ircd.Client) *bot {
	t.Helper()
	dh.bot = runBot(t, dh.command("serve"), dh.config, dh.dir)
	if _, err := client.Expect(scale.D(30*time.Second), inChannel(dh.nick, "#ops")); err != nil {
		t.Fatalf("%s's bot never joined #ops: %v\n%s", dh.name, err, dh.bot.Log.String())
	}
	return dh.bot
}

// gate makes the restart of the service on port on fleet host i wait
// while it deploys rev; rev "" lets it go. A new gate forgets that an
// earlier one was reached (its restart may have been killed there).
func (h *twoHosts) gate(i, port int, rev string) {
	name := fmt.Sprintf("gate-%d", port)
	if rev != "" {
		h.d.HostFile(i, name+".waiting", "")
	}
	h.d.HostFile(i, name, rev)
}

// awaitGate waits until the restart on host i is held by its gate.
func (h *twoHosts) awaitGate(t *testing.T, i, port int) {
	t.Helper()
	p := filepath.Join(h.d.Fleet.Hosts[i].Root, fmt.Sprintf("gate-%d.waiting", port))
	for deadline := time.Now().Add(scale.D(60 * time.Second)); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restart on %s never reached its gate", h.d.Fleet.Hosts[i].Name)
		}
	}
}

// health2 is what svc2's /health answers on host i.
func (h *twoHosts) health2(i int) string {
	out, err := h.d.Fleet.Hosts[i].Exec(fmt.Sprintf("%s -get http://127.0.0.1:%d/health", h.d.SvcBin, svc2Port))
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// botSaid counts the lines of nick in #ops that alice received containing
// substr.
func botSaid(c *ircd.Client, nick, substr string) int {
	n := 0
	for _, l := range botLines(c, nick) {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitOutput waits until buf holds substr.
func waitOutput(t *testing.T, buf *harness.LockedBuffer, substr string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(buf.String(), substr); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after %v:\n%s", substr, timeout, buf.String())
		}
	}
}

// TestTwoDeployHostsShareLocksAndLogs: a deploy from a shell on host A
// holds the service on both hosts — !deploy on B's bot is refused naming
// who, which host and since when — while another service deploys from B
// at the same time; deploy-log -f on B follows A's deploy live, and
// deploy-log --latest on B shows where every host ended.
func TestTwoDeployHostsShareLocksAndLogs(t *testing.T) {
	h := newTwoHosts(t)
	d, alice := h.d, h.alice
	h.a.startBot(t, alice)
	h.b.startBot(t, alice)
	long := scale.D(60 * time.Second)
	v1 := d.Revs["v1"]

	h.gate(1, svcPort, v1)
	deploy := h.a.command("deploy", svcName, "-m", "from host A")
	deployOut := &harness.LockedBuffer{}
	deploy.Stdout, deploy.Stderr = deployOut, deployOut
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	var deployErr error
	deployDone := make(chan struct{})
	go func() { deployErr = deploy.Wait(); close(deployDone) }()
	defer func() {
		h.gate(1, svcPort, "")
		<-deployDone
	}()
	h.awaitGate(t, 1, svcPort)

	t.Run("the same service is refused on B, naming who, where and since when", func(t *testing.T) {
		alice.Say("#ops", "!deploy "+svcName)
		refusal := expectBot(t, alice, h.b.nick, "svc not deployed", scale.D(20*time.Second))
		re := regexp.MustCompile(`^alice: svc not deployed: svc is being deployed by alice since \d\d:\d\d:\d\d UTC \(pid \d+ on deploy-a\): deploying: from host A$`)
		if !re.MatchString(refusal) {
			t.Fatalf("refusal %q, want it to match %s", refusal, re)
		}
	})

	t.Run("another service deploys from B meanwhile", func(t *testing.T) {
		alice.Say("#ops", "!deploy "+svc2Name)
		expectBot(t, alice, h.b.nick, "Finished deploy [svc2@"+v1[:7]+"]", long)
		for i := range d.Fleet.Hosts {
			if got := h.health2(i); got != "200 v1" {
				t.Errorf("%s: svc2 answers %q", d.Fleet.Hosts[i].Name, got)
			}
		}
		select {
		case <-deployDone:
			t.Fatalf("A's deploy ended while its gate was closed: %v\n%s", deployErr, deployOut.String())
		default:
		}
	})

	t.Run("deploy-log -f on B follows A's deploy live", func(t *testing.T) {
		follow := h.b.command("deploy-log", svcName, "-f")
		out := &harness.LockedBuffer{}
		follow.Stdout, follow.Stderr = out, out
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		followDone := make(chan error, 1)
		go func() { followDone <- follow.Wait() }()
		// The canary's end is printed while A's deploy waits at its gate.
		waitOutput(t, out, d.Fleet.Hosts[0].IP+" done", scale.D(20*time.Second))
		select {
		case err := <-followDone:
			t.Fatalf("deploy-log -f ended before A's deploy could (%v):\n%s", err, out.String())
		default:
		}
		h.gate(1, svcPort, "")
		select {
		case err := <-followDone:
			if err != nil {
				t.Fatalf("deploy-log -f: %v\n%s", err, out.String())
			}
		case <-time.After(long):
			follow.Process.Kill()
			t.Fatalf("deploy-log -f did not end with the deploy:\n%s", out.String())
		}
		if !strings.Contains(out.String(), d.Fleet.Hosts[2].IP) {
			t.Errorf("deploy-log -f did not show the last host:\n%s", out.String())
		}
	})

	h.gate(1, svcPort, "")
	<-deployDone
	if deployErr != nil {
		t.Fatalf("A's deploy: %v\n%s", deployErr, deployOut.String())
	}
	d.WantFleet("v1")
	expectBot(t, alice, h.a.nick, "Finished deploy [svc@"+v1[:7]+"]: from host A", scale.D(20*time.Second))

	t.Run("deploy-log --latest on B shows every host's stages", func(t *testing.T) {
		code, out, errOut := h.b.run(t, "deploy-log", svcName, "--latest")
		if code != 0 {
			t.Fatalf("deploy-log --latest: exit %d\n%s\n%s", code, out, errOut)
		}
		summary := strings.SplitN(out, "\n\n", 2)[0]
		for _, host := range d.Fleet.Hosts {
			if want := host.IP + ": done, switched to " + v1[:7]; !strings.Contains(summary, want) {
				t.Errorf("the summary lacks %q:\n%s", want, out)
			}
		}
		// Every stage of every host, with --level debug.
		code, out, errOut = h.b.run(t, "deploy-log", svcName, "--latest", "--level", "debug")
		if code != 0 {
			t.Fatalf("deploy-log --latest --level debug: exit %d\n%s\n%s", code, out, errOut)
		}
		for _, host := range d.Fleet.Hosts {
			for _, stage := range []string{"fetch", "checkout", "promote", "restart"} {
				if !regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(host.IP) + `\b.*\b` + stage + `\b`).MatchString(out) {
					t.Errorf("the log lacks the %s stage of %s:\n%s", stage, host.IP, out)
				}
			}
		}
	})
	// The CLI deploy was announced once, by A's bot; B's bot said only
	// its own lines.
	if n := botSaid(alice, h.a.nick, "Finished deploy [svc@"); n != 1 {
		t.Errorf("A's bot announced the end of A's deploy %d times", n)
	}
	if n := botSaid(alice, h.b.nick, "Finished deploy [svc@"); n != 0 {
		t.Errorf("B's bot announced A's deploy %d times", n)
	}
}
