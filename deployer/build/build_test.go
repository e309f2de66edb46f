package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

var sig = object.Signature{Name: "Alice", Email: "alice@example.org", When: time.Unix(1700000000, 0)}

// commitFile writes name in the working copy of r and commits it.
func commitFile(t *testing.T, r *git.Repository, dir, name, content, msg string) plumbing.Hash {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(name); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &sig})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fixture makes a source repository with three commits and a bare deploy
// repository whose main branch points its submodule src (../src) at the
// first; it returns the deploy repository's path and the source commits.
func fixture(t *testing.T) (string, []plumbing.Hash) {
	t.Helper()
	top := t.TempDir()
	srcDir := filepath.Join(top, "src")
	src, err := git.PlainInitWithOptions(srcDir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	var revs []plumbing.Hash
	for i, subj := range []string{"first", "second change", "third change"} {
		revs = append(revs, commitFile(t, src, srcDir, "file.txt", subj+"\n", subj))
		_ = i
	}

	bare := filepath.Join(top, "deploy.git")
	if _, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}}); err != nil {
		t.Fatal(err)
	}
	workDir := filepath.Join(top, "work")
	work, err := git.PlainInitWithOptions(workDir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(workDir, ".gitmodules"), []byte("[submodule \"src\"]\n\tpath = src\n\turl = ../src\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, _ := work.Worktree()
	if _, err := wt.Add(".gitmodules"); err != nil {
		t.Fatal(err)
	}
	idx, err := work.Storer.Index()
	if err != nil {
		t.Fatal(err)
	}
	e := idx.Add("src")
	e.Hash, e.Mode = revs[0], filemode.Submodule
	if err := work.Storer.SetIndex(idx); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Commit("deploy repository", &git.CommitOptions{Author: &sig}); err != nil {
		t.Fatal(err)
	}
	if _, err := work.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	if err := work.Push(&git.PushOptions{RefSpecs: []gitconfig.RefSpec{"refs/heads/main:refs/heads/main"}}); err != nil {
		t.Fatal(err)
	}
	return bare, revs
}

func TestBuildForReview(t *testing.T) {
	bare, revs := fixture(t)
	var out strings.Builder
	res, err := Run(context.Background(), Options{
		Service: "svc", Upstream: bare, Ref: "refs/for/<branch>", Dir: filepath.Join(t.TempDir(), "wc"),
		Command: `echo "built $DEPLOY_SOURCE_REV from $(cat src/file.txt)" > BUILD && echo ran`,
		Author:  sig, Output: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "refs/for/main" || res.From != revs[0].String() || res.To != revs[2].String() {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(out.String(), "ran") {
		t.Errorf("build output %q", out.String())
	}
	r, err := git.PlainOpen(bare)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Reference("refs/for/main", true)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Hash().String() != res.Commit {
		t.Errorf("refs/for/main = %s, want %s", ref.Hash(), res.Commit)
	}
	if main, _ := r.Reference("refs/heads/main", true); main.Hash().String() == res.Commit {
		t.Error("main moved: a review push must not")
	}
	c, err := r.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.Tree()
	e, err := tree.FindEntry("src")
	if err != nil || e.Mode != filemode.Submodule || e.Hash != revs[2] {
		t.Errorf("src entry %+v %v, want the gitlink %s", e, err, revs[2])
	}
	f, err := tree.File("BUILD")
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := f.Contents(); body != "built "+revs[2].String()+" from third change\n" {
		t.Errorf("BUILD = %q", body)
	}
	for _, want := range []string{"Update svc to " + revs[2].String()[:7] + "\n", revs[2].String()[:7] + " third change", revs[1].String()[:7] + " second change"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, c.Message)
		}
	}
	if strings.Contains(c.Message, " first") {
		t.Errorf("message lists a commit of the previous pointer:\n%s", c.Message)
	}
	if len(c.ParentHashes) != 1 {
		t.Errorf("parents %v", c.ParentHashes)
	}
}

func TestBuildSourceRevToBranch(t *testing.T) {
	bare, revs := fixture(t)
	res, err := Run(context.Background(), Options{
		Service: "svc", Upstream: bare, SourceRev: revs[1].String()[:9], Dir: filepath.Join(t.TempDir(), "wc"), Author: sig,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := git.PlainOpen(bare)
	main, err := r.Reference("refs/heads/main", true)
	if err != nil || main.Hash().String() != res.Commit || res.Ref != "refs/heads/main" {
		t.Fatalf("main %v %v, result %+v", main, err, res)
	}
	if len(res.Commits) != 1 || !strings.HasSuffix(res.Commits[0], " second change") {
		t.Errorf("commits %q", res.Commits)
	}
	// The same again: nothing to commit.
	_, err = Run(context.Background(), Options{Service: "svc", Upstream: bare, SourceRev: revs[1].String(), Dir: filepath.Join(t.TempDir(), "wc"), Author: sig})
	if err != ErrNothingToBuild {
		t.Errorf("rebuild: %v, want ErrNothingToBuild", err)
	}
	// A failing build command pushes nothing.
	_, err = Run(context.Background(), Options{Service: "svc", Upstream: bare, Command: "echo broken >&2; exit 3", Dir: filepath.Join(t.TempDir(), "wc"), Author: sig})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failing build: %v", err)
	}
	if now, _ := r.Reference("refs/heads/main", true); now.Hash() != main.Hash() {
		t.Error("a failed build pushed")
	}
}
