package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/scale"
)

// The deploy end-to-end tests: a real fleet of sshd hosts (each in its own
// network and mount namespaces), a real upstream git repository with a
// submodule, the real deploybot binary (and the engine in process where a
// test needs to answer prompts programmatically), and a real HTTP service
// (e2e/testdata/svc) that the repository's restart.sh (re)starts on every
// host and that answers its revision on /health.

const (
	svcPort    = harness.SvcPort
	svcName    = harness.SvcName
	targetDir  = harness.TargetDir
	healthPath = harness.HealthPath
)

// deployEnv is one fleet, upstream and configuration shared by the deploy
// tests (harness.Env, whose CLI runs this package's binary).
type deployEnv struct {
	*harness.Env
}

// newDeployEnv starts a fleet of n hosts, the upstream with a submodule
// and revision v1, the service binary, and the configuration, with the
// canary and groups keys groups returns.
func newDeployEnv(t testing.TB, n int, groups func(f *fleet.Fleet) string) *deployEnv {
	t.Helper()
	return &deployEnv{harness.NewEnv(t, binary, n, groups)}
}

// promptTimeoutDefault, yamlDuration and promptWords: see harness.
const promptTimeoutDefault = harness.PromptTimeoutDefault

func yamlDuration(d time.Duration) string { return harness.YAMLDuration(d) }

func promptWords(d time.Duration) string {
	return harness.PromptWords(d)
}

// runCLI runs cmd, a deploybot command, to its end; see harness.RunCLI.
func runCLI(t testing.TB, cmd *exec.Cmd) (code int, stdout, stderr string) {
	t.Helper()
	return harness.RunCLI(t, cmd)
}

func (d *deployEnv) journals() int {
	list, _ := journal.List(d.Cfg.Deploy.JournalDir, svcName)
	return len(list)
}

func (d *deployEnv) engine() *deployer.Engine {
	d.T.Helper()
	eng, err := deployer.New(d.Cfg, nil)
	if err != nil {
		d.T.Fatal(err)
	}
	d.T.Cleanup(func() { eng.Close() })
	return eng
}

// recorder is an Observer and Prompter that records and answers.
type recorder struct {
	mu      sync.Mutex
	events  []deployer.Event
	prompts []deployer.Prompt
	answer  deployer.Answer
}

func (r *recorder) Observe(ev deployer.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Ask(ctx context.Context, p deployer.Prompt) (deployer.Answer, error) {
	r.mu.Lock()
	r.prompts = append(r.prompts, p)
	r.mu.Unlock()
	return r.answer, nil
}

func (r *recorder) count(typ deployer.EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func failedHost(res *deployer.Result, host string) string {
	for _, f := range res.Failed {
		if f.Host == host {
			return f.Reason
		}
	}
	return ""
}

// TestDeploy runs the deploy scenarios in order on one fleet (they build on
// each other's state, as successive deploys of a real service do).
func TestDeploy(t *testing.T) {
	d := newDeployEnv(t, 7, func(f *fleet.Fleet) string {
		host := func(i int) string { return f.Hosts[i].IP }
		return fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%q, %q, %q], parallel: 3, failure_limit: 1}
      - {name: b, hosts: [%q, %q, %q], parallel: 2, failure_limit: 1}
`, host(0), host(1), host(2), host(3), host(4), host(5), host(6))
	})
	f := d.Fleet
	ctx := context.Background()

	t.Run("bad rev refused before anything runs", func(t *testing.T) {
		for _, rev := range []string{"zzzzzzz", "abc", "g123456789", strings.Repeat("1", 41), strings.Repeat("ab", 20)} {
			code, out, errOut := d.CLI("", "deploy", svcName, "--rev", rev)
			if code != 1 && code != 2 {
				t.Errorf("--rev %s: exit %d\n%s%s", rev, code, out, errOut)
			}
			if !strings.Contains(errOut, "revision") {
				t.Errorf("--rev %s: stderr %q does not say why", rev, errOut)
			}
		}
		if n := d.journals(); n != 0 {
			t.Errorf("%d journals after refused deploys", n)
		}
		if h, _ := journal.Running(d.Cfg.Deploy.JournalDir, svcName); h != nil {
			t.Errorf("lock left held: %+v", h)
		}
		for i := range f.Hosts {
			if d.Current(i) != "" {
				t.Errorf("%s changed", f.Hosts[i].Name)
			}
		}
	})

	t.Run("dry run", func(t *testing.T) {
		code, out, errOut := d.CLI("", "deploy", svcName, "--dry-run")
		if code != 0 || !strings.Contains(out, "group canary: 1 host") || !strings.Contains(out, "group b: 3 host(s), 2 at a time, 1 may fail") ||
			!strings.Contains(out, d.Revs["v1"][:7]) || !strings.Contains(out, "release v1") {
			t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
		}
		if d.journals() != 0 || d.Current(0) != "" {
			t.Error("the dry run changed something")
		}
	})

	t.Run("happy path", func(t *testing.T) {
		for _, label := range []string{"v1", "v2"} {
			if label != "v1" {
				d.Commit(label, 200)
			}
			code, out, errOut := d.CLI("", "deploy", svcName, "-m", "deploying "+label)
			if code != 0 || !strings.Contains(out, "success") {
				t.Fatalf("deploy %s: exit %d\n%s%s", label, code, out, errOut)
			}
			d.WantFleet(label)
			t.Logf("deploy %s:\n%s", label, out)
		}
		// v3 as with Scap3: "deploy", a link to the binary, run inside
		// the service's deploy repository (reached through a symlink).
		d.Commit("v3", 200)
		bin := t.TempDir()
		if out, err := exec.Command(binary, "install-aliases", bin).CombinedOutput(); err != nil {
			t.Fatalf("install-aliases: %v\n%s", err, out)
		}
		here := filepath.Join(t.TempDir(), "here")
		if err := os.Symlink(filepath.Join(d.Cfg.Deploy.DeployDir, "svc"), here); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := d.CLIAt(filepath.Join(here, "deploy"), filepath.Join(bin, "deploy"), "", "-m", "deploying v3")
		if code != 0 || !strings.Contains(out, ": "+svcName+" "+d.Revs["v2"][:7]+".."+d.Revs["v3"][:7]) || !strings.Contains(out, "success") {
			t.Fatalf("deploy from the deploy repository: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v3")
		t.Logf("deploy v3:\n%s", out)
		for i, h := range f.Hosts {
			revs, _ := os.ReadDir(filepath.Join(h.Root, "svc", "deploy-cache", "revs"))
			var names []string
			for _, r := range revs {
				names = append(names, r.Name())
			}
			if len(names) != 2 || strings.Contains(strings.Join(names, " "), d.Revs["v1"]) {
				t.Errorf("%s: revs %v, want v2 and v3 only (keep_revs 2)", h.Name, names)
			}
			if b, err := os.ReadFile(filepath.Join(h.Root, "svc", "deploy-cache", "revs", d.Revs["v3"], "lib", "lib.txt")); err != nil || string(b) != "lib v1\n" {
				t.Errorf("%s: submodule not checked out: %q %v", h.Name, b, err)
			}
			_ = i
		}
	})

	t.Run("deploy-log latest: the summary first, in 40 lines", func(t *testing.T) {
		code, out, errOut := d.CLI("", "deploy-log", svcName, "--latest")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		summary, _, _ := strings.Cut(out, "\n\n")
		if len(lines) > 40 || strings.Count(summary, ": done, switched to "+d.Revs["v3"][:7]) != len(f.Hosts) ||
			!strings.HasPrefix(summary, svcName+" ") || !strings.Contains(lines[0], ", success") {
			t.Errorf("%d lines, want at most 40 starting with the per-host summary:\n%s", len(lines), out)
		}
		for _, l := range lines {
			if len(l) > 300 {
				t.Errorf("a line of %d bytes (a script?): %.200s…", len(l), l)
			}
		}
	})

	t.Run("deploy-log latest --level debug shows every command on every host", func(t *testing.T) {
		code, out, errOut := d.CLI("", "deploy-log", svcName, "--latest", "--level", "debug")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, h := range f.Hosts {
			for _, stage := range []string{"fetch", "checkout", "promote", "restart", "finalize"} {
				if !lineWith(out, h.IP, stage) {
					t.Errorf("no %s line for %s in:\n%s", stage, h.Name, out)
				}
			}
		}
		if !strings.Contains(out, "success") {
			t.Errorf("no outcome in:\n%s", out)
		}

	})

	t.Run("same revision is a no-op, --force redeploys", func(t *testing.T) {
		restarts := func() int {
			b, _ := os.ReadFile(filepath.Join(f.Hosts[0].Root, "restarts"))
			return strings.Count(string(b), "\n")
		}
		n, journals := restarts(), d.journals()
		code, out, errOut := d.CLI("", "deploy", svcName)
		if code != 0 || !strings.HasPrefix(out, "nothing to deploy: svc is already on "+d.Revs["v3"][:7]) || restarts() != n {
			t.Errorf("redeploy: exit %d, restarts %d → %d\n%s%s", code, n, restarts(), out, errOut)
		}
		if d.journals() != journals {
			t.Errorf("a no-op left a journal: %d → %d", journals, d.journals())
		}
		code, out, errOut = d.CLI("", "deploy", svcName, "--force")
		if code != 0 || !strings.Contains(out, "success") || restarts() != n+1 {
			t.Errorf("forced: exit %d, restarts %d → %d\n%s%s", code, n, restarts(), out, errOut)
		}
		d.WantFleet("v3")
	})

	t.Run("canary health 500 asks and rolls back", func(t *testing.T) {
		d.Commit("v4", 500)
		code, out, errOut := d.CLI("r\n", "deploy", svcName)
		if code != 1 || !strings.Contains(errOut, "canary failed") || !strings.Contains(out, "rolled_back") ||
			!strings.Contains(out, "restored: "+f.Hosts[0].IP+" to "+d.Revs["v3"][:7]) {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("canary 500:\n%s%s", out, errOut)
		d.WantFleet("v3")
	})

	t.Run("failure limit", func(t *testing.T) {
		// One host of group a fails: within the limit.
		v5 := d.Commit("v5", 200)
		d.HostFile(2, "fail", v5)
		code, out, errOut := d.CLI("", "deploy", svcName)
		if code != 0 || !strings.Contains(out, f.Hosts[2].IP+": restart failed with exit 3: refusing to start "+v5) {
			t.Errorf("within limit: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v5", 0, 1, 3, 4, 5, 6)
		// Repaired: the same revision again deploys the failed host only.
		d.HostFile(2, "fail", "")
		if code, out, errOut := d.CLI("", "deploy", svcName); code != 0 || !strings.Contains(out, "success") {
			t.Errorf("repair: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v5")

		// Two hosts of group b fail: beyond the limit; rollback offered.
		v6 := d.Commit("v6", 200)
		d.HostFile(4, "fail", v6)
		d.HostFile(5, "fail", v6)
		rec := &recorder{answer: deployer.Rollback}
		res, err := d.engine().Deploy(ctx, deployer.Request{Service: svcName, Who: "alice", Source: "test"}, rec, rec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != deployer.OutcomeRolledBack || len(rec.prompts) != 1 || rec.prompts[0].Kind != deployer.PromptGroupFailed ||
			failedHost(res, f.Hosts[4].IP) == "" || failedHost(res, f.Hosts[5].IP) == "" || len(res.RolledBack) != 7 {
			t.Errorf("beyond limit: %+v, prompts %+v", res, rec.prompts)
		}
		if rec.count(deployer.EventGroupFinished) != 3 || rec.count(deployer.EventRollback) != 3 {
			t.Errorf("events: %d group_finished, %d rollback", rec.count(deployer.EventGroupFinished), rec.count(deployer.EventRollback))
		}
		d.HostFile(4, "fail", "")
		d.HostFile(5, "fail", "")
		d.WantFleet("v5")
	})

	t.Run("unreachable, wrong host key, hung command", func(t *testing.T) {
		// A known_hosts where host07 has host06's key.
		kh, err := os.ReadFile(f.KnownHostsFile)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var key6 string
		for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
			if fs := strings.Fields(l); len(fs) == 3 && fs[0] == f.Hosts[5].IP {
				key6 = fs[1] + " " + fs[2]
			}
		}
		for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
			if fs := strings.Fields(l); len(fs) == 3 && fs[0] == f.Hosts[6].IP {
				l = f.Hosts[6].IP + " " + key6
			}
			lines = append(lines, l)
		}
		badKH := filepath.Join(d.Dir, "known_hosts.bad")
		if err := os.WriteFile(badKH, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg2 := filepath.Join(d.Dir, "bad-hosts.yaml")
		d.WriteConfig(cfg2, badKH, fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%q, %q, %q], parallel: 3, failure_limit: 1}
      - {name: b, hosts: [%q, %q, %q], parallel: 3, failure_limit: 3}
`, f.Hosts[0].IP, f.Hosts[1].IP, f.Hosts[2].IP, f.Hosts[3].IP, f.Hosts[4].IP, f.Hosts[5].IP, f.Hosts[6].IP), d.Cfg.Deploy.Serve)
		cfg, err := config.Load(cfg2)
		if err != nil {
			t.Fatal(err)
		}
		v7 := d.Commit("v7", 200)
		if err := f.Hosts[4].StopSSHD(); err != nil {
			t.Fatal(err)
		}
		d.HostFile(5, "hang", v7)
		eng, err := deployer.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		start := time.Now()
		rec := &recorder{answer: deployer.Rollback}
		res, err := eng.Deploy(ctx, deployer.Request{Service: svcName, Who: "alice"}, rec, rec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("deploy with 3 bad hosts: %s in %v", res.Outcome, time.Since(start).Round(time.Millisecond))
		for host, want := range map[string]string{f.Hosts[4].IP: "unreachable", f.Hosts[5].IP: "command timed out", f.Hosts[6].IP: "host key mismatch"} {
			if r := failedHost(res, host); !strings.Contains(r, want) {
				t.Errorf("%s: reason %q, want %q", host, r, want)
			}
		}
		if res.Outcome != deployer.OutcomeSuccess {
			t.Errorf("outcome %s (3 failures within a limit of 3): %+v", res.Outcome, res)
		}
		d.WantFleet("v7", 0, 1, 2, 3)
		if err := f.Hosts[4].StartSSHD(); err != nil {
			t.Fatal(err)
		}
		d.HostFile(5, "hang", "")
		// The fleet repaired: every host on v7.
		if code, out, errOut := d.CLI("", "deploy", svcName); code != 0 {
			t.Errorf("repair: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v7")
	})

	t.Run("sshd killed mid-stage", func(t *testing.T) {
		v := d.Commit("v7b", 200)
		d.HostFile(1, "pause", v)
		eng := d.engine()
		var once sync.Once
		obs := deployer.ObserverFunc(func(ev deployer.Event) {
			if ev.Type == deployer.EventGroupStarted && ev.Group == "a" {
				once.Do(func() {
					go func() {
						time.Sleep(700 * time.Millisecond) // scale:fixed: host02 is inside its 2 s restart
						f.Hosts[1].StopSSHD()
					}()
				})
			}
		})
		start := time.Now()
		res, err := eng.Deploy(ctx, deployer.Request{Service: svcName, Who: "alice"}, obs, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sshd killed mid-stage: %s in %v", res.Outcome, time.Since(start).Round(time.Millisecond))
		if r := failedHost(res, f.Hosts[1].IP); res.Outcome != deployer.OutcomeSuccess || !strings.Contains(r, "connection lost") {
			t.Errorf("result %+v; host02: %q", res, r)
		}
		if err := f.Hosts[1].StartSSHD(); err != nil {
			t.Fatal(err)
		}
		d.HostFile(1, "pause", "")
		// The session lost with sshd may still be finishing its restart:
		// a new deploy is refused there until it is gone (it names it).
		waitOpGone(t, filepath.Join(f.Hosts[1].Root, "svc", "deploy-cache", ".deploybot-op"))
		if code, out, errOut := d.CLI("", "deploy", svcName); code != 0 {
			t.Errorf("repair: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v7b")
	})

	t.Run("locked service is refused with who when why", func(t *testing.T) {
		v8 := d.Commit("v8", 200)
		d.HostFile(0, "slow", v8)
		cmd := exec.Command(binary, "deploy", svcName, "-m", "slow one", "-c", d.Config)
		cmd.Env = append(os.Environ(), "SUDO_USER=bob")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var running *journal.Holder
		for deadline := time.Now().Add(scale.D(20 * time.Second)); ; time.Sleep(scale.D(50 * time.Millisecond)) {
			if running, _ = journal.Running(d.Cfg.Deploy.JournalDir, svcName); running != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first deploy never took the lock")
			}
		}
		// deploy-log -f follows it until it finishes.
		followed := make(chan string, 1)
		go func() {
			cmd := exec.Command(binary, "deploy-log", "--id", running.DeployID, "-f", "-c", d.Config)
			out, _ := cmd.CombinedOutput()
			followed <- string(out)
		}()
		code, _, errOut := d.CLI("", "deploy", svcName)
		if code != 1 || !strings.Contains(errOut, "bob") || !strings.Contains(errOut, "slow one") {
			t.Errorf("second deploy: exit %d: %s", code, errOut)
		}
		t.Logf("second deploy refused: %s", errOut)
		// Kill the slow restart: the first deploy's canary fails, and it
		// rolls back (no answer on its terminal).
		pid := filepath.Join(f.Hosts[0].Root, "restart.pid")
		for deadline := time.Now().Add(scale.D(10 * time.Second)); time.Now().Before(deadline); time.Sleep(scale.D(20 * time.Millisecond)) {
			if _, err := os.Stat(pid); err == nil {
				break
			}
		}
		f.Hosts[0].Exec("kill -9 $(cat /srv/deployment/restart.pid)")
		cmd.Wait()
		t.Logf("first deploy:\n%s", out.String())
		select {
		case log := <-followed:
			if !strings.Contains(log, "slow one") || !strings.Contains(log, "deploy rolled back") {
				t.Errorf("deploy-log -f:\n%s", log)
			}
		case <-time.After(scale.D(10 * time.Second)):
			t.Error("deploy-log -f did not end with the deploy")
		}
		d.HostFile(0, "slow", "")
		os.Remove(pid)
		// A manual lock refuses too, until unlocked.
		if code, out, errOut := d.CLI("", "lock", svcName, "-m", "freeze for the holidays"); code != 0 {
			t.Fatalf("lock: %d %s%s", code, out, errOut)
		}
		code, _, errOut = d.CLI("", "deploy", svcName)
		if code != 1 || !strings.Contains(errOut, "freeze for the holidays") || !strings.Contains(errOut, "alice") {
			t.Errorf("deploy while locked: exit %d: %s", code, errOut)
		}
		if code, out, errOut := d.CLI("", "unlock", svcName); code != 0 {
			t.Fatalf("unlock: %d %s%s", code, out, errOut)
		}
		if code, out, errOut := d.CLI("", "deploy", svcName); code != 0 {
			t.Errorf("after unlock: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v8")
	})

	t.Run("abort stops after the hosts in flight and asks", func(t *testing.T) {
		v := d.Commit("v8a", 200)
		for _, i := range []int{1, 2, 3} {
			d.HostFile(i, "pause", v)
		}
		eng := d.engine()
		rec := &recorder{answer: deployer.Rollback}
		var once sync.Once
		obs := deployer.ObserverFunc(func(ev deployer.Event) {
			rec.Observe(ev)
			if ev.Type == deployer.EventGroupStarted && ev.Group == "a" {
				once.Do(func() { go eng.Abort(svcName) })
			}
		})
		res, err := eng.Deploy(ctx, deployer.Request{Service: svcName, Who: "alice"}, obs, rec)
		if err != nil {
			t.Fatal(err)
		}
		// The hosts of group a that had started when the abort came (all
		// three, unless it came first) finish; then the prompt.
		if res.Outcome != deployer.OutcomeRolledBack || len(rec.prompts) != 1 || rec.prompts[0].Kind != deployer.PromptAborted || len(res.RolledBack) < 1 {
			t.Errorf("abort: %+v, prompts %+v", res, rec.prompts)
		}
		for _, ev := range rec.events {
			if ev.Type == deployer.EventGroupStarted && ev.Group == "b" {
				t.Error("group b started after the abort")
			}
		}
		for _, i := range []int{1, 2, 3} {
			d.HostFile(i, "pause", "")
		}
		d.WantFleet("v8")
	})

	// killMidFleet runs the CLI deploy of rev, SIGKILLs it while group b's
	// first hosts are in restart, and cleans up as a host's admin would.
	killMidFleet := func(t *testing.T, rev string) {
		t.Helper()
		for _, i := range []int{4, 5, 6} {
			d.HostFile(i, "slow", rev)
		}
		cmd := exec.Command(binary, "deploy", svcName, "-c", d.Config)
		cmd.Env = append(os.Environ(), "SUDO_USER=alice")
		pr, pw, _ := os.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		started := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(pr)
			once := sync.Once{}
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "[b] started") {
					once.Do(func() { close(started) })
				}
			}
		}()
		select {
		case <-started:
		case <-time.After(scale.D(30 * time.Second)):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("group b never started")
		}
		time.Sleep(scale.D(time.Second)) // group b's first hosts are in restart
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// The orphaned restart scripts are killed as a host's admin would.
		for _, i := range []int{4, 5, 6} {
			f.Hosts[i].Exec("kill -9 $(cat /srv/deployment/restart.pid) 2>/dev/null; true")
			d.HostFile(i, "slow", "")
			os.Remove(filepath.Join(f.Hosts[i].Root, "restart.pid"))
		}
	}

	t.Run("killed mid-fleet, recovered by rollback", func(t *testing.T) {
		killMidFleet(t, d.Commit("v9", 200))
		code, out, errOut := d.CLI("", "recover")
		if code != 0 || !strings.Contains(out, f.Hosts[4].IP) || !strings.Contains(out, "interrupted") {
			t.Fatalf("recover list: exit %d\n%s%s", code, out, errOut)
		}
		list, err := journal.Unfinished(d.Cfg.Deploy.JournalDir)
		if err != nil || len(list) != 1 {
			t.Fatalf("unfinished: %v %v", list, err)
		}
		id := list[0].Meta.ID
		t.Logf("recover:\n%s", out)
		if !strings.Contains(out, id) {
			t.Errorf("recover list does not name %s:\n%s", id, out)
		}
		code, out, errOut = d.CLI("", "recover", id, "--rollback")
		if code != 0 || !strings.Contains(out, "rolled_back") {
			t.Errorf("recover --rollback: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v8")
		if list, _ := journal.Unfinished(d.Cfg.Deploy.JournalDir); len(list) != 0 {
			t.Errorf("still unfinished: %d", len(list))
		}
	})

	t.Run("killed mid-fleet, resumed", func(t *testing.T) {
		killMidFleet(t, d.Commit("v10", 200))
		list, err := journal.Unfinished(d.Cfg.Deploy.JournalDir)
		if err != nil || len(list) != 1 {
			t.Fatalf("unfinished: %v %v", list, err)
		}
		id := list[0].Meta.ID
		code, out, errOut := d.CLI("", "recover", id, "--resume")
		if code != 0 || !strings.Contains(out, "success") {
			t.Errorf("recover --resume: exit %d\n%s%s", code, out, errOut)
		}
		d.WantFleet("v10")
		if list, _ := journal.Unfinished(d.Cfg.Deploy.JournalDir); len(list) != 0 {
			t.Errorf("still unfinished: %d", len(list))
		}
		old, err := journal.Read(list0Path(t, d.Cfg.Deploy.JournalDir, id))
		if err != nil || !old.Finished || old.Outcome != journal.OutcomeEnded {
			t.Errorf("the interrupted journal: finished %v outcome %q err %v", old != nil && old.Finished, outcomeOf(old), err)
		}
	})
}

// lineWith reports whether a line of out contains every one of words.
func lineWith(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, w := range words {
			if !strings.Contains(l, w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// list0Path is the journal file of deploy id.
func list0Path(t *testing.T, dir, id string) string {
	t.Helper()
	service, _, err := journal.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := journal.JournalPath(dir, service, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func outcomeOf(d *journal.Deploy) string {
	if d == nil {
		return ""
	}
	return string(d.Outcome)
}

// waitOpGone waits until the deploybot operation recorded in the
// operation file at path (if any) has no live process left.
func waitOpGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(scale.D(15 * time.Second))
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return
		}
		pgid, err := strconv.Atoi(f[1])
		if err != nil || syscall.Kill(-pgid, 0) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the operation in %s (%s) is still running", path, strings.TrimSpace(string(b)))
		}
		time.Sleep(scale.D(50 * time.Millisecond))
	}
}
