package gitrepo

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// treeWorld is the standard world plus, in a new upstream commit, a scap/
// directory with an executable script and symbolic links within the tree.
func treeWorld(t *testing.T) (w *world, sha string) {
	w = newWorld(t)
	files := map[string]string{
		"scap/scap.cfg":       "[global]\ngit_repo: svc/deploy\n",
		"scap/scripts/run.sh": "#!/bin/sh\necho run\n",
		"docs/a.txt":          "a\n",
		"docs/deep/b.txt":     "b\n",
	}
	for name, content := range files {
		p := filepath.Join(w.up, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(w.up, "scap/scripts/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"readme-link":    "README",
		"scap/docs-link": "../docs",
		"docs/chain":     "../readme-link",
	} {
		if err := os.Symlink(target, filepath.Join(w.up, link)); err != nil {
			t.Fatal(err)
		}
	}
	sha = w.commit(w.up, "Add scap/ and links", nil)
	if err := w.repo.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w, sha
}

func TestTreeFS(t *testing.T) {
	w, sha := treeWorld(t)
	fsys, err := w.repo.FSAt(sha[:10])
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "README", "scap/scap.cfg", "scap/scripts/run.sh", "docs/a.txt", "docs/deep/b.txt",
		"readme-link", "scap/docs-link", "docs/chain", "lib"); err != nil {
		t.Fatal(err)
	}

	read := func(name string) string {
		t.Helper()
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatalf("ReadFile %s: %v", name, err)
		}
		return string(b)
	}
	if got := read("README"); got != "v2\n" {
		t.Errorf("README = %q", got)
	}
	if got := read("scap/docs-link/deep/b.txt"); got != "b\n" {
		t.Errorf("through a directory link: %q", got)
	}
	if got := read("docs/chain"); got != "v2\n" {
		t.Errorf("through two links: %q", got)
	}
	fi, err := fs.Stat(fsys, "scap/scripts/run.sh")
	if err != nil || fi.Mode() != 0o755 || fi.Size() != int64(len("#!/bin/sh\necho run\n")) {
		t.Errorf("Stat run.sh = %v, %v", fi, err)
	}
	if fi, err := fs.Stat(fsys, "scap/scap.cfg"); err != nil || fi.Mode() != 0o644 {
		t.Errorf("Stat scap.cfg = %v, %v", fi, err)
	}
	if target, err := fs.ReadLink(fsys, "scap/docs-link"); err != nil || target != "../docs" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if fi, err := fs.Lstat(fsys, "readme-link"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat = %v, %v", fi, err)
	}
	// The submodule is an empty directory.
	if ents, err := fs.ReadDir(fsys, "lib"); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir lib = %v, %v", ents, err)
	}
	if _, err := fs.Stat(fsys, "lib/sub.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file of the submodule: %v, want ErrNotExist", err)
	}
	for _, name := range []string{"missing", "README/x", "docs/missing.txt"} {
		if _, err := fsys.Open(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open %s: %v, want ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"/README", "../x", "docs/../README", ""} {
		if _, err := fsys.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open %q: %v, want ErrInvalid", name, err)
		}
	}

	// An older revision is its own tree: the files of the new commit are
	// not there.
	old, err := w.repo.FSAt(w.c3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(old, "scap/scap.cfg"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scap.cfg at c3: %v", err)
	}
	if _, err := w.repo.FSAt("zz"); err == nil {
		t.Error("FSAt of a bad revision worked")
	}
}

func TestTreeFSLinksOutside(t *testing.T) {
	w := newWorld(t)
	for link, target := range map[string]string{
		"up-link":  "../outside",
		"abs-link": "/etc/passwd",
		"loop":     "loop",
		"sub/deep": "../../x",
	} {
		p := filepath.Join(w.up, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	sha := w.commit(w.up, "Bad links", nil)
	if err := w.repo.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	fsys, err := w.repo.FSAt(sha)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"up-link", "abs-link", "sub/deep"} {
		if _, err := fs.ReadFile(fsys, name); err == nil || !strings.Contains(err.Error(), "outside the tree") {
			t.Errorf("ReadFile %s: %v, want a link outside the tree", name, err)
		}
	}
	if _, err := fsys.Open("loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Open loop: %v", err)
	}
	// The link itself can still be read.
	if target, err := fs.ReadLink(fsys, "abs-link"); err != nil || target != "/etc/passwd" {
		t.Errorf("ReadLink abs-link = %q, %v", target, err)
	}
}

// TreeFS over a tree of go-git's own; reads from many goroutines at once.
func TestTreeFSConcurrent(t *testing.T) {
	w, sha := treeWorld(t)
	repo, err := git.PlainOpen(w.opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(mustHash(t, repo, sha))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	fsys := TreeFS(tree)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, name := range []string{"README", "scap/docs-link/a.txt", "docs/chain"} {
				f, err := fsys.Open(name)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil || len(b) == 0 {
					errs <- errors.New(name + ": empty")
					return
				}
			}
			if _, err := fs.ReadDir(fsys, "docs"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustHash(t *testing.T, repo *git.Repository, rev string) plumbing.Hash {
	t.Helper()
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		t.Fatal(err)
	}
	return *h
}
