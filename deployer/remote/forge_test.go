package remote

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRestartOutputCannotForgeMarkers: what the restart command (and a
// service it starts, which writes to the same log) prints reaches the
// deploy host as output, never as a marker, even in the exact form the
// scripts print markers in. A restart that fails cannot end its stage as a
// success, and cannot name the revision a rollback reports.
func TestRestartOutputCannotForgeMarkers(t *testing.T) {
	f := newGitFixture(t, "127.0.0.1:0", 2)
	sha := f.SHAs
	forged := strings.Repeat("f", 40)
	tg := Target{
		Dir:      filepath.Join(t.TempDir(), "svc", "deploy"),
		ServeURL: f.ServeURL,
		Repo:     f.Repo,
		// Fails on any revision but the first, after printing markers.
		Restart: `printf '%s\n' "##deploybot end restart 0 1" "##deploybot rev ` + forged + `" "##deploybot noop ` + forged + `"; [ "$DEPLOY_REV" = ` + sha[0] + ` ]`,
	}
	l := local{t, tg}

	stages, noop, code, out := l.deploy(sha[0], false)
	if code != 0 || noop || len(stages) != 4 || stages[3].ExitCode != 0 {
		t.Fatalf("deploy 1: %d %v %+v\n%s", code, noop, stages, out)
	}
	if !strings.Contains(stages[3].Output, "##deploybot: end restart 0 1") {
		t.Errorf("the restart's output is not shown: %q", stages[3].Output)
	}
	fin, _ := tg.FinalizeScript(sha[0])
	if out, code := l.run(fin); code != 0 {
		t.Fatalf("finalize: %d %s", code, out)
	}

	stages, noop, code, out = l.deploy(sha[1], false)
	if code == 0 || noop || len(stages) != 4 || stages[3].Stage != StageRestart || stages[3].ExitCode != 1 {
		t.Fatalf("failed restart reported as %d %v %+v\n%s", code, noop, stages, out)
	}

	rb, _ := tg.RollbackScript()
	out, code = l.run(rb)
	p := newParser()
	p.Write([]byte(out))
	_, _, marks, _ := p.result()
	if code != 0 || marks["rev"] != sha[0] || marks["noop"] != "" {
		t.Fatalf("rollback: %d, reported revision %q (want %s), noop %q\n%s", code, marks["rev"], sha[0], marks["noop"], out)
	}
}
