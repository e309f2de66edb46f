package deployer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"deploybot/config"
	"deploybot/deployer/journal"
)

// otherHost is an engine on a second deploy host of f: the same services,
// fleet and deploy state (journal_dir standing for a shared database),
// but a deploy repository and git server of its own.
func (f *fleetFixture) otherHost(t *testing.T) (*Engine, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(f.dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.Replace(string(raw), `deploy_dir: "`+f.dir+`/deployment"`, `deploy_dir: "`+dir+`/deployment"`, 1)
	text = strings.Replace(text, "serve: "+f.cfg.Deploy.Serve, "serve: "+closedAddrs(t, 1)[0], 1)
	if text == string(raw) {
		t.Fatal("the fixture's configuration changed shape")
	}
	p := filepath.Join(dir, "deploybot.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	eng := NewWithStore(cfg, nil, DialerFunc(func(ctx context.Context, h config.Host) (Host, error) {
		return f.fleet.Dial(ctx, h)
	}), journal.NewFiles(f.cfg.Deploy.JournalDir))
	t.Cleanup(func() { eng.Close() })
	return eng, filepath.Join(dir, "deployment", "svc", "deploy")
}

// hasCommit reports whether the git repository at dir holds commit sha.
func hasCommit(dir, sha string) bool {
	return exec.Command("git", "-C", dir, "cat-file", "-e", sha+"^{commit}").Run() == nil
}

// A deploy interrupted on one deploy host is finished from another whose
// deploy repository was cloned before the deploy's revision existed:
// rolling back needs only what the targets have (the upstream may even be
// unreachable), continuing fetches the revision first.
func TestRecoverFromAnotherDeployHost(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
	f.installAll(f.shas[2])
	other, repo := f.otherHost(t)
	// The other host deploys once: its deploy repository is cloned now.
	if res, err := other.Deploy(context.Background(), Request{Service: "svc", Who: "bob", Rev: f.shas[0], Force: true}, nil, nil); err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("first deploy from the other host: %+v %v", res, err)
	}
	commit := func(label string) string {
		os.WriteFile(filepath.Join(f.upstream, "VERSION"), []byte(label+"\n"), 0o644)
		gitT(t, f.upstream, "commit", "-q", "-am", "release "+label)
		return gitT(t, f.upstream, "rev-parse", "HEAD")
	}

	v4 := commit("v4")
	id := f.crashedAt(t, f.shas[0], v4)
	if hasCommit(repo, v4) {
		t.Fatal("the other host's deploy repository holds the new revision already")
	}
	moved := f.upstream + ".away"
	if err := os.Rename(f.upstream, moved); err != nil {
		t.Fatal(err)
	}
	res, err := other.Recover(context.Background(), id, RecoverRollback, "bob", nil)
	if err != nil || res.Outcome != OutcomeRolledBack {
		t.Fatalf("rollback from the other host, upstream unreachable: %+v %v", res, err)
	}
	for _, h := range []string{"c1", "a1"} {
		if cur, _, _ := f.fleet.State(h); cur != f.shas[0] {
			t.Errorf("%s on %s after the rollback, want %s", h, short(cur), short(f.shas[0]))
		}
	}
	if err := os.Rename(moved, f.upstream); err != nil {
		t.Fatal(err)
	}

	v5 := commit("v5")
	id = f.crashedAt(t, f.shas[0], v5)
	if hasCommit(repo, v5) {
		t.Fatal("the other host's deploy repository holds the new revision already")
	}
	res, err = other.Resume(context.Background(), id, "bob", nil, nil)
	if err != nil || res.Outcome != OutcomeSuccess || res.To != v5 {
		t.Fatalf("continue from the other host: %+v %v", res, err)
	}
	if !hasCommit(repo, v5) {
		t.Error("the other host's deploy repository lacks the revision it deployed")
	}
	for _, h := range []string{"c1", "a1", "a2"} {
		if cur, done, _ := f.fleet.State(h); cur != v5 || done != v5 {
			t.Errorf("%s on %s (done %s), want %s", h, short(cur), short(done), short(v5))
		}
	}
}
