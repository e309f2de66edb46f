package remote

import (
	"bytes"
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

// TestKillScript runs kill.sh as Conn.kill's fallback sends it: a whole
// process group dies, the leader and a child in the background.
func TestKillScript(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for out.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(scale.D(10 * time.Millisecond))
	}
	child, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Fatalf("child pid %q", out.String())
	}
	line := killScript(pgid)
	if b, err := exec.Command("/bin/sh", "-c", line).CombinedOutput(); err != nil || len(b) != 0 {
		t.Errorf("kill script: %v %q", err, b)
	}
	select {
	case err := <-waitc:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("leader ended with %v, want killed", err)
		}
	case <-time.After(scale.D(30 * time.Second)):
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Fatal("leader still running")
	}
	// The child is reparented and reaped elsewhere; it must be gone (or
	// a zombie) soon.
	for {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "stat"))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("background child survived")
		}
		time.Sleep(scale.D(10 * time.Millisecond))
	}
	// A group that is gone already: no output, success.
	if b, err := exec.Command("/bin/sh", "-c", line).CombinedOutput(); err != nil || len(b) != 0 {
		t.Errorf("kill script, group gone: %v %q", err, b)
	}
}

// TestScriptsLocalEdges runs the scripts on this machine (as
// TestScriptsLocal) for what it does not cover: the restart command's
// environment, a target_dir with shell-special characters and a
// backslash, leftovers pruned by Finalize, a .done that holds no
// revision, a failing check's exit status.
func TestScriptsLocalEdges(t *testing.T) {
	f := newGitFixture(t, "127.0.0.1:0", 2)
	base := t.TempDir()
	dir := filepath.Join(base, `a $(x) 'b' "c" \n d`, "deploy")
	tg := Target{
		Dir:      dir,
		ServeURL: f.ServeURL,
		Repo:     f.Repo,
		Restart:  `printf '%s\n' "rev=$DEPLOY_REV args=$# pwd=$PWD"; umask`,
		KeepRevs: 1,
	}
	l := local{t, tg}
	c := dir + "-cache"
	sha := f.SHAs

	// The restart command: DEPLOY_REV, no positional parameters, the
	// revision's directory, umask 022 whatever the caller's.
	old := syscall.Umask(0o077)
	l.tg.OpID = "edge" // the operation file's directory too
	stages, _, code, out := l.deploy(sha[0], false)
	l.tg.OpID = ""
	syscall.Umask(old)
	if code != 0 || len(stages) != 4 {
		t.Fatalf("deploy: %d %+v\n%s", code, stages, out)
	}
	want := "rev=" + sha[0] + " args=0 pwd=" + filepath.Join(c, "revs", sha[0]) + "\n0022\n"
	if stages[3].Output != want {
		t.Errorf("restart output %q, want %q", stages[3].Output, want)
	}
	if got := readFile(t, filepath.Join(c, ".restart.log")); got != want {
		t.Errorf("restart log %q", got)
	}
	if fi, err := os.Stat(filepath.Join(c, "revs", sha[0], "version")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("checked-out file: %v %v", fi.Mode(), err)
	}
	for _, d := range []string{filepath.Dir(dir), c, filepath.Join(c, "revs")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}

	fin := func(s string) string {
		t.Helper()
		script, _ := tg.FinalizeScript(s)
		out, code := l.run(script)
		if code != 0 {
			t.Fatalf("finalize %s: %d %s", s, code, out)
		}
		return out
	}
	fin(sha[0])
	if _, _, code, out := l.deploy(sha[1], false); code != 0 {
		t.Fatalf("deploy 2: %d %s", code, out)
	}
	// Leftovers of interrupted checkouts go with the old revision.
	for _, d := range []string{"." + sha[0] + ".tmp", "." + sha[1] + ".old"} {
		if err := os.MkdirAll(filepath.Join(c, "revs", d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out = fin(sha[1])
	for _, w := range []string{"removing revs/" + sha[0] + "\n", "removing revs/." + sha[0] + ".tmp\n", "removing revs/." + sha[1] + ".old\n", "done: " + sha[1] + "; keeping: " + sha[1] + "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("finalize output lacks %q:\n%s", w, out)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(c, "revs")); len(ents) != 1 || ents[0].Name() != sha[1] {
		t.Errorf("revs after finalize: %v", ents)
	}

	// A check command's status is the script's.
	cs, _ := tg.CheckScript(`test "$DEPLOY_REV" = ` + sha[1] + ` && exit 5`)
	if out, code := l.run(cs); code != 5 {
		t.Errorf("check: %d %s", code, out)
	}

	// A .done that holds no revision: status 3, the path printed as it is.
	if err := os.WriteFile(filepath.Join(c, ".done"), []byte("not a sha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, _ := tg.RollbackScript()
	out, code = l.run(rb)
	if code != 3 || !strings.Contains(out, "\n"+c+"/.done holds no revision\n") || strings.Contains(out, "##deploybot rev") {
		t.Errorf("rollback with a bad .done: %d %q", code, out)
	}
}

// A .gitmodules whose path for a submodule leaves the revision (or names
// something that is not its gitlink) is refused at fetch, naming the
// submodule: nothing is created outside the revision's directory.
func TestSubmodulePathOutsideRevision(t *testing.T) {
	f := newGitFixture(t, "127.0.0.1:0", 1)
	for _, bad := range []string{"../escaped", "./lib", "lib/../lib", "version"} {
		t.Run(bad, func(t *testing.T) {
			git(t, f.dir, "config", "-f", ".gitmodules", "submodule.lib.path", bad)
			git(t, f.dir, "commit", "-q", "-a", "-m", "path "+bad)
			sha := git(t, f.dir, "rev-parse", "HEAD")
			git(t, f.dir, "update-server-info")
			base := t.TempDir()
			l := local{t, Target{Dir: filepath.Join(base, "svc", "deploy"), ServeURL: f.ServeURL, Repo: f.Repo, Submodules: []string{"lib"}}}
			stages, _, code, out := l.deploy(sha, false)
			if code == 0 || len(stages) != 1 || stages[0].Stage != StageFetch || !strings.Contains(out, "submodule lib: no gitlink for it") {
				t.Fatalf("deploy with submodule path %q: exit %d, stages %+v\n%s", bad, code, stages, out)
			}
			if _, err := os.Stat(filepath.Join(base, "svc", "escaped")); !os.IsNotExist(err) {
				t.Errorf("something was made outside the revision: %v", err)
			}
		})
	}
}
