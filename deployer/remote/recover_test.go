package remote

// Remote work owned and stoppable, against real sshd hosts (the e2e
// fleet, as in remote_test.go): the watchdog that kills a script whose
// session is gone, the operation file that refuses a second operation
// while one is alive, Stop and Op.

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/e2e/scale"
)

// deployerEnv switches the test binary into a deploying process (see
// TestHelperDeployer) that the tests kill with SIGKILL mid-deploy.
const deployerEnv = "REMOTE_TEST_DEPLOYER"

// deployerJob is what the deploying process is asked to do.
type deployerJob struct {
	User, KeyFile, KnownHosts string
	Host                      string // IP, port 22
	Target                    Target
	SHA                       string
}

// TestHelperDeployer is not a test: it is the test binary as a deploying
// process, which dials a fleet host and deploys (see deployerJob), and is
// killed before the deploy ends.
func TestHelperDeployer(t *testing.T) {
	v := os.Getenv(deployerEnv)
	if v == "" {
		t.Skip("helper process only")
	}
	var job deployerJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		os.Exit(2)
	}
	d, err := NewDialer(config.SSH{User: job.User, KeyFile: job.KeyFile, KnownHosts: job.KnownHosts})
	if err != nil {
		os.Exit(3)
	}
	c, err := d.Dial(context.Background(), config.Host{Name: job.Host, Port: 22})
	if err != nil {
		os.Exit(4)
	}
	_, err = c.Deploy(context.Background(), job.Target, job.SHA, false, scale.D(time.Minute))
	if err != nil {
		os.Exit(5)
	}
	os.Exit(0)
}

// TestWatchdogSSH: a script whose session is gone — the connection
// closed without ending it, the deploying process killed with SIGKILL —
// dies with its whole process group within seconds, and a recovery run
// right after is not raced by it; a deploy that ends normally leaves the
// service its restart command started in the background running, after
// the connection is gone too.
func TestWatchdogSSH(t *testing.T) {
	f, d := startFleet(t, 1)
	h := f.Hosts[0]
	ctx := context.Background()

	// (a) The connection closed under a running script.
	c := dialT(t, d, h)
	ran := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "echo $$ >/srv/deployment/wd.pid; sleep 30 & echo $! >/srv/deployment/wd.child; wait", scale.D(time.Minute))
		ran <- err
	}()
	waitFor(t, filepath.Join(h.Root, "wd.child"), "\n")
	pgid, _ := strconv.Atoi(strings.TrimSpace(waitFor(t, filepath.Join(h.Root, "wd.pid"), "\n")))
	if pgid < 2 || !groupAlive(pgid) {
		t.Fatalf("script's process group %d not running", pgid)
	}
	start := time.Now()
	c.client.Close() // the TCP connection, without ending the session
	if !waitGone(pgid, scale.D(15*time.Second)) {
		t.Fatalf("process group %d alive 15 s after the connection was closed", pgid)
	}
	t.Logf("connection closed: process group gone after %v", time.Since(start).Round(time.Millisecond))
	wantKind(t, <-ran, KindConnectionLost)
	if b, _ := os.ReadFile(filepath.Join(h.Root, "wd.child")); !waitGone(atoi(string(b)), 0) {
		t.Error("the script's background child survived")
	}

	// (a') The deploying process killed with SIGKILL mid-restart; then a
	// rollback from a new process is not undone by the abandoned script.
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 2)
	tg := Target{Dir: "/srv/deployment/w/deploy", ServeURL: g.ServeURL, Repo: g.Repo, OpID: "first", Restart: `echo "$DEPLOY_REV" >>/srv/deployment/w.restarts`}
	c = dialT(t, d, h)
	if _, err := c.Deploy(ctx, tg, g.SHAs[0], false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, tg, g.SHAs[0]); err != nil {
		t.Fatal(err)
	}
	slow := tg
	slow.OpID = "killed"
	slow.Restart = `echo $$ >/srv/deployment/w.rpg; echo started; sleep 30; echo "$DEPLOY_REV" >>/srv/deployment/w.restarts`
	job, _ := json.Marshal(deployerJob{User: f.User, KeyFile: f.KeyFile, KnownHosts: f.KnownHostsFile, Host: h.IP, Target: slow, SHA: g.SHAs[1]})
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperDeployer$")
	helper.Env = append(os.Environ(), deployerEnv+"="+string(job))
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan error, 1)
	go func() { helperDone <- helper.Wait() }()
	t.Cleanup(func() { helper.Process.Kill() })
	pgid = opFileGroup(t, h, tg, "killed")
	waitFor(t, hostPath(h, tg.Dir+"-cache/.restart.log"), "started")
	start = time.Now()
	helper.Process.Signal(syscall.SIGKILL)
	if err := <-helperDone; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("deploying process: %v", err)
	}
	if !waitGone(pgid, scale.D(15*time.Second)) {
		t.Fatalf("deploy's process group %d alive 15 s after the deploying process was killed", pgid)
	}
	t.Logf("deploying process killed: process group gone after %v", time.Since(start).Round(time.Millisecond))
	// The restart command, in a process group of its own, is gone too.
	if b, _ := os.ReadFile(filepath.Join(h.Root, "w.rpg")); !waitGone(atoi(string(b)), scale.D(15*time.Second)) {
		t.Fatalf("the restart's process group %s is alive 15 s after the deploying process was killed", b)
	}
	if st, err := c.Op(ctx, tg); err != nil || !st.Found || st.Alive || st.OpID != "killed" || st.PGID != pgid || st.Kind != OpDeploy {
		t.Errorf("op after the kill: %+v %v", st, err)
	}
	rb := tg
	rb.OpID = "recovery"
	if _, rev, err := c.Rollback(ctx, rb); err != nil || rev != g.SHAs[0] {
		t.Fatalf("rollback: %q %v", rev, err)
	}
	time.Sleep(scale.D(3 * time.Second)) // what the abandoned script would have done, it would do now
	if cur, _, err := c.State(ctx, tg); err != nil || cur != g.SHAs[0] {
		t.Errorf("current after the rollback: %s %v", cur, err)
	}
	if got := lines(t, filepath.Join(h.Root, "w.restarts")); strings.Join(got, " ") != g.SHAs[0]+" "+g.SHAs[0] {
		t.Errorf("restarts %v: want the deploy's and the rollback's of %s only", got, g.SHAs[0])
	}
	noFile(t, hostPath(h, tg.Dir+"-cache/"+OpFile))

	// (b) A normal deploy whose restart command leaves a process running:
	// it is in the restart's process group and session, not the script's
	// (its parent), and survives the end of the session and of the
	// connection.
	bg := tg
	bg.OpID = "bg"
	bg.Restart = `echo $$ >/srv/deployment/bg.pgid; echo $PPID >/srv/deployment/bg.script; sleep 300 >/dev/null 2>&1 & echo $! >/srv/deployment/bg.pid`
	if _, err := c.Deploy(ctx, bg, g.SHAs[1], false, 0); err != nil {
		t.Fatal(err)
	}
	noFile(t, hostPath(h, tg.Dir+"-cache/"+OpFile))
	b, _ := os.ReadFile(filepath.Join(h.Root, "bg.pid"))
	pid := atoi(string(b))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	b, _ = os.ReadFile(filepath.Join(h.Root, "bg.pgid"))
	pgid = atoi(string(b))
	if pid < 2 || pgid < 2 || procGroup(pid) != pgid {
		t.Fatalf("background process %d in group %d, want the restart's %d", pid, procGroup(pid), pgid)
	}
	b, _ = os.ReadFile(filepath.Join(h.Root, "bg.script"))
	if script := atoi(string(b)); script < 2 || script == pgid {
		t.Fatalf("the restart's group %d is its script's (%d)", pgid, script)
	}
	c.Close()
	time.Sleep(scale.D(3 * time.Second)) // past the watchdog's grace, had it fired
	if procGroup(pid) == 0 {
		t.Error("the background process a normal deploy left running was killed")
	}
}

// TestOpFileSSH: while a deploy runs (from another connection), a second
// deploy, finalize or rollback is refused with a *BusyError naming it and
// changes nothing; Op reports it; Stop stops it (TERM, or KILL when TERM
// is ignored) and returns when its group is gone, the file removed; a
// stale file is replaced; a group number reused by an unrelated process
// is neither taken for the operation nor stopped.
func TestOpFileSSH(t *testing.T) {
	f, d := startFleet(t, 1)
	h := f.Hosts[0]
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 3)
	ctx := context.Background()
	a, b := dialT(t, d, h), dialT(t, d, h)
	tg := Target{Service: "svc", Dir: "/srv/deployment/o/deploy", ServeURL: g.ServeURL, Repo: g.Repo, OpID: "setup", Restart: "true"}
	opf := hostPath(h, tg.Dir+"-cache/"+OpFile)
	if _, err := b.Deploy(ctx, tg, g.SHAs[0], false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Finalize(ctx, tg, g.SHAs[0]); err != nil {
		t.Fatal(err)
	}

	// (d) Stop with nothing recorded.
	if sr, err := b.Stop(ctx, tg, "", time.Second); err != nil || sr.Found || sr.Signal != "" || sr.OpID != "" {
		t.Errorf("stop with no operation: %+v %v", sr, err)
	}

	// (c) A deploy running its restart command on connection a.
	long := tg
	long.OpID = "20261205-091203-svc-ab12"
	long.Restart = "echo $$ >/srv/deployment/long.rpg; echo started; sleep 30"
	done := make(chan error, 1)
	go func() { _, err := a.Deploy(ctx, long, g.SHAs[1], false, scale.D(time.Minute)); done <- err }()
	pgid := opFileGroup(t, h, tg, long.OpID)
	waitFor(t, hostPath(h, tg.Dir+"-cache/.restart.log"), "started")
	snap := snapshot(t, hostPath(h, tg.Dir+"-cache"))
	other := tg
	other.OpID = "other"
	check := func(what string, err error) {
		t.Helper()
		var be *BusyError
		if !errors.As(err, &be) || be.OpID != long.OpID || be.PGID != pgid || be.Kind != OpDeploy || time.Since(be.Since).Abs() > time.Minute {
			t.Errorf("%s while busy: %v (%#v)", what, err, be)
			return
		}
		want := ": another deploybot operation is running on this host: deploy " + long.OpID + " (process group " + strconv.Itoa(pgid) + ") since "
		if !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), " UTC") {
			t.Errorf("%s: %q", what, err)
		}
	}
	stages, err := b.Deploy(ctx, other, g.SHAs[2], false, 0)
	check("deploy", err)
	if len(stages) != 0 {
		t.Errorf("busy deploy ran stages %+v", stages)
	}
	t.Logf("busy: %v", err)
	_, err = b.Finalize(ctx, other, g.SHAs[1])
	check("finalize", err)
	_, _, err = b.Rollback(ctx, other)
	check("rollback", err)
	none := tg
	none.OpID = ""
	_, _, err = b.Rollback(ctx, none)
	check("rollback without an operation id", err)
	if now := snapshot(t, hostPath(h, tg.Dir+"-cache")); now != snap {
		t.Errorf("refused operations changed the target:\nbefore %s\nafter  %s", snap, now)
	}
	if st, err := b.Op(ctx, tg); err != nil || st != (OpState{Found: true, OpID: long.OpID, PGID: pgid, Kind: OpDeploy, Since: st.Since, Alive: true}) || time.Since(st.Since).Abs() > time.Minute {
		t.Errorf("op: %+v %v", st, err)
	}

	// (d) Stop: another operation's id is refused, this one's stops it.
	if sr, err := b.Stop(ctx, tg, "other", time.Second); !errors.As(err, new(*BusyError)) || sr.Found || sr.OpID != long.OpID || !groupAlive(pgid) {
		t.Errorf("stop of another operation: %+v %v", sr, err)
	}
	sr, err := b.Stop(ctx, tg, long.OpID, scale.D(10*time.Second))
	if err != nil || !sr.Found || sr.Signal != "TERM" || sr.OpID != long.OpID || sr.PGID != pgid || sr.Kind != OpDeploy || sr.Waited > scale.D(9*time.Second) {
		t.Errorf("stop: %+v %v", sr, err)
	}
	if groupAlive(pgid) {
		t.Error("process group alive when Stop returned")
	}
	// The restart command it was running, in a group of its own, too.
	rb, _ := os.ReadFile(filepath.Join(h.Root, "long.rpg"))
	if rpg := atoi(string(rb)); rpg < 2 || groupAlive(rpg) {
		t.Errorf("the restart's process group %q alive when Stop returned", rb)
	}
	noFile(t, opf)
	t.Logf("stopped with TERM: %+v", sr)
	if err := <-done; err == nil {
		t.Error("the stopped deploy succeeded")
	}

	// TERM ignored: KILL after the grace.
	stubborn := long
	stubborn.OpID = "stubborn"
	stubborn.Restart = "trap '' TERM; echo started again; sleep 30"
	go func() { _, err := a.Deploy(ctx, stubborn, g.SHAs[2], false, scale.D(time.Minute)); done <- err }()
	pgid = opFileGroup(t, h, tg, "stubborn")
	waitFor(t, hostPath(h, tg.Dir+"-cache/.restart.log"), "started again")
	sr, err = b.Stop(ctx, tg, "", 500*time.Millisecond)
	if err != nil || !sr.Found || sr.Signal != "KILL" || sr.OpID != "stubborn" || sr.PGID != pgid || sr.Waited < 500*time.Millisecond || sr.Waited > scale.D(6*time.Second) {
		t.Errorf("stop of a TERM-proof operation: %+v %v", sr, err)
	}
	if groupAlive(pgid) {
		t.Error("process group alive when Stop returned")
	}
	noFile(t, opf)
	t.Logf("stopped with KILL: %+v", sr)
	<-done
	if sr, err := b.Stop(ctx, tg, "stubborn", time.Second); err != nil || sr.Found || sr.Signal != "" {
		t.Errorf("stop again: %+v %v", sr, err)
	}

	// (e) A stale file (its group dead) is replaced by the next deploy.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opf, []byte("crashed "+strconv.Itoa(dead.Process.Pid)+" deploy 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Op(ctx, tg); err != nil || !st.Found || st.Alive || st.OpID != "crashed" || !st.Since.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("op of a stale file: %+v %v", st, err)
	}
	fresh := tg
	fresh.OpID = "fresh"
	fresh.Restart = "cat " + ShellQuote(tg.Dir+"-cache/"+OpFile)
	stages, err = b.Deploy(ctx, fresh, g.SHAs[2], false, 0)
	if err != nil || len(stages) != 4 || !strings.HasPrefix(stages[3].Output, "fresh ") || !strings.Contains(stages[3].Output, " deploy ") {
		t.Errorf("deploy over a stale file: %v %+v", err, stages)
	}
	noFile(t, opf)

	// A live group whose leader runs something else: a reused number.
	go a.Run(ctx, "echo $$ >/srv/deployment/unrelated.pid; exec sleep 30", scale.D(time.Minute))
	unrelated := atoi(waitFor(t, filepath.Join(h.Root, "unrelated.pid"), "\n"))
	if err := os.WriteFile(opf, []byte("ghost "+strconv.Itoa(unrelated)+" deploy 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Op(ctx, tg); err != nil || !st.Found || st.Alive {
		t.Errorf("op naming a reused group number: %+v %v", st, err)
	}
	if sr, err := b.Stop(ctx, tg, "ghost", time.Second); err != nil || sr.Found || sr.Signal != "" || !groupAlive(unrelated) {
		t.Errorf("stop of a reused group number: %+v %v; unrelated group alive: %v", sr, err, groupAlive(unrelated))
	}
	noFile(t, opf)
}
