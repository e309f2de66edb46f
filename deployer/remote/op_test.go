package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

// TestOpMarkers parses the op, busy and stop markers as the scripts print
// them, and rejects what op.sh would not have printed.
func TestOpMarkers(t *testing.T) {
	p := newParser()
	p.Write([]byte("##deploybot pid 99\nsome output\n##deploybot op 20261205-091203-web-ab12 4242 deploy 1796462323 alive\n" +
		"##deploybot busy 20261205-091203-web-ab12 4242 deploy 1796462323\nanother deploybot operation is running here\n" +
		"##deploybot stop KILL 5230 gone\n"))
	_, out, marks, _ := p.result()
	if out != "some output\nanother deploybot operation is running here\n" {
		t.Errorf("output %q", out)
	}
	st, ok := parseOpMarker(marks)
	want := OpState{Found: true, OpID: "20261205-091203-web-ab12", PGID: 4242, Kind: OpDeploy, Since: time.Unix(1796462323, 0), Alive: true}
	if !ok || st != want {
		t.Errorf("op marker: %+v %v, want %+v", st, ok, want)
	}
	c := &Conn{}
	c.host.Name, c.host.Port = "web1.example.org", 22
	be := c.busyError(Result{ExitCode: ExitBusy}, marks)
	if be == nil || be.OpID != want.OpID || be.PGID != 4242 || be.Kind != OpDeploy || !be.Since.Equal(want.Since) || be.Host != c.host.String() {
		t.Fatalf("busy: %+v", be)
	}
	if got := be.Error(); !strings.HasPrefix(got, c.host.String()+": another deploybot operation is running on this host: deploy 20261205-091203-web-ab12 (process group 4242) since ") {
		t.Errorf("busy error: %q", got)
	}
	// The marker counts only with the exit status that goes with it.
	if be := c.busyError(Result{ExitCode: 1}, marks); be != nil {
		t.Errorf("busy with exit status 1: %v", be)
	}
	if be := c.busyError(Result{ExitCode: ExitBusy}, map[string]string{}); be != nil {
		t.Errorf("exit status 75 without a marker (a restart command's own status): %v", be)
	}
	if sig, w, gone, ok := parseStopMarker(marks["stop"]); !ok || sig != "KILL" || w != 5230*time.Millisecond || !gone {
		t.Errorf("stop marker: %q %v %v %v", sig, w, gone, ok)
	}
	if sig, w, gone, ok := parseStopMarker("none 0 gone"); !ok || sig != "" || w != 0 || !gone {
		t.Errorf("stop none: %q %v %v %v", sig, w, gone, ok)
	}
	if _, _, gone, ok := parseStopMarker("TERM 120 alive"); !ok || gone {
		t.Errorf("stop alive: %v %v", gone, ok)
	}
	if st, ok := parseOpMarker(map[string]string{"op": "none"}); !ok || st != (OpState{}) {
		t.Errorf("op none: %+v %v", st, ok)
	}
	if st, ok := parseOpMarker(map[string]string{"op": "x 77 rollback 0 dead"}); !ok || st != (OpState{Found: true, OpID: "x", PGID: 77, Kind: OpRollback, Since: time.Unix(0, 0)}) {
		t.Errorf("op dead: %+v %v", st, ok)
	}
	for _, bad := range []string{
		"", "x 77 deploy 1", "x 77 deploy 1 maybe", "x 1 deploy 1 alive", "x 0 deploy 1 alive", "x 077 deploy 1 alive",
		"x -5 deploy 1 alive", "x +5 deploy 1 alive", "x 5 Deploy 1 alive", "x 5 deploy -1 alive", "x 5 deploy 1.5 alive",
		"x/y 5 deploy 1 alive", "x 5 deploy 1 alive extra", strings.Repeat("a", 81) + " 5 deploy 1 alive",
	} {
		if st, ok := parseOpMarker(map[string]string{"op": bad}); ok {
			t.Errorf("op marker %q accepted: %+v", bad, st)
		}
	}
	if _, ok := parseOpMarker(map[string]string{}); ok {
		t.Error("no op marker accepted")
	}
	for _, bad := range []string{"", "TERM", "HUP 5 gone", "TERM -5 gone", "TERM 5 maybe", "none 0 gone x"} {
		if _, _, _, ok := parseStopMarker(bad); ok {
			t.Errorf("stop marker %q accepted", bad)
		}
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	if got := sinceString(time.Date(2026, 12, 5, 9, 12, 3, 0, time.UTC), now); got != "09:12:03 UTC" {
		t.Errorf("since today: %q", got)
	}
	if got := sinceString(time.Date(2026, 12, 3, 9, 12, 3, 0, time.FixedZone("x", 3600)), now); got != "2026-12-03 08:12:03 UTC" {
		t.Errorf("since two days ago: %q", got)
	}
}

// TestOpIDValidation: an operation id is 1 to 80 of [A-Za-z0-9._-].
func TestOpIDValidation(t *testing.T) {
	tg := Target{Dir: "/srv/x", ServeURL: "http://h", Repo: "r"}
	for _, id := range []string{"", "a", "20261205-091203-web-ab12", "A.b_c-9", strings.Repeat("z", 80)} {
		tg.OpID = id
		if err := tg.Validate(); err != nil {
			t.Errorf("%q: %v", id, err)
		}
		if _, err := tg.StopScript(id, time.Second); err != nil {
			t.Errorf("stop %q: %v", id, err)
		}
	}
	for _, id := range []string{" ", "a b", "a/b", "a;b", "$(x)", "é", "a\n", strings.Repeat("z", 81)} {
		tg.OpID = id
		if err := tg.Validate(); err == nil {
			t.Errorf("%q accepted", id)
		}
		tg.OpID = ""
		if _, err := tg.StopScript(id, time.Second); err == nil {
			t.Errorf("stop %q accepted", id)
		}
	}
}

// TestWatchdogLocal: run.sh's watchdog kills the script's process group
// when stdin ends while it runs; a script that ends by itself disarms it,
// so what it left running in its group survives the end of stdin.
func TestWatchdogLocal(t *testing.T) {
	p := startLocal(t, "echo started; sleep 30 & wait")
	pgid := p.pgid
	p.waitOutput(t, "started")
	if !groupAlive(pgid) {
		t.Fatalf("script not running: %s", p.out.String())
	}
	start := time.Now()
	p.stdin.Close()
	if !waitGone(pgid, scale.D(10*time.Second)) {
		t.Fatal("process group alive 10 s after the end of stdin")
	}
	t.Logf("group gone %v after the end of stdin", time.Since(start).Round(time.Millisecond))
	err := p.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("script ended with %v, want killed by TERM", err)
	}

	p = startLocal(t, "sleep 300 >/dev/null 2>&1 & echo $!")
	if err := p.wait(t); err != nil {
		t.Fatalf("script: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(p.out.String(), "##deploybot pid "+strconv.Itoa(p.pgid)+"\n")))
	if err != nil {
		t.Fatalf("output %q", p.out.String())
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	p.stdin.Close()
	time.Sleep(scale.D(3 * time.Second)) // past the watchdog's grace, had it fired
	if !groupAlive(p.pgid) || syscall.Kill(child, 0) != nil {
		t.Error("the background process left by a script that ended normally was killed")
	}
}

// TestOpLocal runs the operation-file fragments on this machine: a claim
// records the operation and removes it at the end, another claim is
// refused while it lives, a stale file is replaced, a group number reused
// by an unrelated process is not taken for the operation, and the stop
// script stops it with TERM, or KILL when TERM is ignored.
func TestOpLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc", "deploy")
	root := dir + "-cache"
	opf := filepath.Join(root, OpFile)
	tg := Target{Dir: dir, ServeURL: "http://h", Repo: "r"}
	claim := func(id, kind, body string) string {
		return prelude(shellVar{"DEPLOY_DIR", dir}, shellVar{"DEPLOY_OP_ID", id}, shellVar{"DEPLOY_OP_KIND", kind}) +
			commonSh + opSh + claimSh + body
	}
	var lastPID int
	run := func(script string) (map[string]string, string, int) {
		t.Helper()
		b, err := runLocal(runHeader + script)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		p := newParser()
		p.Write(b)
		_, out, marks, pid := p.result()
		lastPID = pid
		return marks, out, code
	}
	opState := func() OpState {
		t.Helper()
		s, err := tg.OpScript()
		if err != nil {
			t.Fatal(err)
		}
		marks, out, code := run(s)
		st, ok := parseOpMarker(marks)
		if code != 0 || !ok {
			t.Fatalf("op script: %d %v %s", code, ok, out)
		}
		return st
	}
	stop := func(id string, grace time.Duration) (map[string]string, string, int) {
		s, err := tg.StopScript(id, grace)
		if err != nil {
			t.Fatal(err)
		}
		return run(s)
	}

	// Finalize and rollback record nothing where the service has no
	// directory; a deploy makes it.
	if _, out, code := run(claim("f1", OpFinalize, "echo ok")); code != 0 || out != "ok\n" {
		t.Fatalf("finalize claim: %d %q", code, out)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("finalize made %s: %v", root, err)
	}
	_, out, code := run(claim("d1", OpDeploy, `cat "$op_file"`))
	f := append(strings.Fields(out), "", "", "", "")
	since, _ := strconv.ParseInt(f[3], 10, 64)
	if code != 0 || len(f) != 8 || f[0] != "d1" || f[1] != strconv.Itoa(lastPID) || lastPID == 0 || f[2] != OpDeploy || time.Since(time.Unix(since, 0)).Abs() > time.Minute {
		t.Fatalf("deploy claim: %d %q", code, out)
	}
	if _, err := os.Stat(opf); !os.IsNotExist(err) {
		t.Fatalf("op file left behind: %v", err)
	}
	if st := opState(); st.Found {
		t.Errorf("op state with no file: %+v", st)
	}

	// A live operation refuses any other script.
	live := startLocal(t, claim("live", OpRollback, "echo started; sleep 30"))
	pgid := live.pgid
	live.waitOutput(t, "started")
	before := readFile(t, opf)
	if st := opState(); !st.Found || !st.Alive || st.OpID != "live" || st.PGID != pgid || st.Kind != OpRollback {
		t.Errorf("op state of the live op: %+v", st)
	}
	// Also a script of the same operation: the live one is still running.
	for _, id := range []string{"other", "", "live"} {
		marks, out, code := run(claim(id, OpDeploy, "echo ran"))
		if code != ExitBusy || marks["busy"] != strings.TrimSpace(before) || strings.Contains(out, "ran") || readFile(t, opf) != before {
			t.Errorf("claim %q while busy: %d %q %q", id, code, marks["busy"], out)
		}
	}
	// Stopping another operation is refused; stopping this one: TERM.
	if marks, _, code := stop("other", time.Second); code != ExitBusy || marks["busy"] != strings.TrimSpace(before) || !groupAlive(pgid) {
		t.Errorf("stop other: %d %v", code, marks)
	}
	marks, out, code := stop("live", scale.D(5*time.Second))
	sig, waited, gone, ok := parseStopMarker(marks["stop"])
	if code != 0 || !ok || sig != "TERM" || !gone || waited > scale.D(4*time.Second) || groupAlive(pgid) {
		t.Errorf("stop live: %d %v %q", code, marks, out)
	}
	t.Logf("TERM: gone after %v", waited)
	if _, err := os.Stat(opf); !os.IsNotExist(err) {
		t.Errorf("op file after stop: %v", err)
	}
	live.wait(t)

	// TERM ignored: KILL after the grace.
	stubborn := startLocal(t, claim("stubborn", OpDeploy, "trap '' TERM; echo started; sleep 30"))
	pgid = stubborn.pgid
	stubborn.waitOutput(t, "started")
	marks, out, code = stop("", 300*time.Millisecond)
	sig, waited, gone, ok = parseStopMarker(marks["stop"])
	if code != 0 || !ok || sig != "KILL" || !gone || waited < 300*time.Millisecond || groupAlive(pgid) {
		t.Errorf("stop stubborn: %d %v %q", code, marks, out)
	}
	t.Logf("TERM ignored: KILL, gone after %v", waited)
	stubborn.wait(t)
	if marks, out, code := stop("", time.Second); code != 0 || marks["op"] != "none" || marks["stop"] != "none 0 gone" {
		t.Errorf("stop with nothing recorded: %d %v %q", code, marks, out)
	}

	// A stale file (its group is dead) is replaced, and reported dead.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := "gone " + strconv.Itoa(dead.Process.Pid) + " deploy 1700000000\n"
	if err := os.WriteFile(opf, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := opState(); !st.Found || st.Alive || st.OpID != "gone" {
		t.Errorf("stale op state: %+v", st)
	}
	if _, out, code := run(claim("d2", OpDeploy, `cat "$op_file"`)); code != 0 || !strings.HasPrefix(out, "d2 ") {
		t.Errorf("claim over a stale file: %d %q", code, out)
	}
	// A live group whose leader runs something else: a reused number.
	other := startLocal(t, "echo started; sleep 30")
	other.waitOutput(t, "started")
	if err := os.WriteFile(opf, []byte("ghost "+strconv.Itoa(other.pgid)+" deploy 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := opState(); !st.Found || st.Alive {
		t.Errorf("reused group number taken for the operation: %+v", st)
	}
	marks, _, code = stop("ghost", time.Second)
	if sig, _, _, _ := parseStopMarker(marks["stop"]); code != 0 || sig != "" || !groupAlive(other.pgid) {
		t.Errorf("stop of a reused group number: %d %v, unrelated group alive: %v", code, marks, groupAlive(other.pgid))
	}
	if _, err := os.Stat(opf); !os.IsNotExist(err) {
		t.Errorf("stale file not removed by stop: %v", err)
	}
}
