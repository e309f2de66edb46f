package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenClonesWithSubmodules(t *testing.T) {
	w := newWorld(t)
	head, err := w.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	if head != w.c3 {
		t.Errorf("Head = %s, want %s", head, w.c3)
	}
	if got := w.file("README"); got != "v2\n" {
		t.Errorf("README = %q", got)
	}
	if got := w.file("lib/sub.txt"); got != "sub v1\n" {
		t.Errorf("lib/sub.txt = %q", got)
	}
	if got := w.file("lib/deps/inner/inner.txt"); got != "inner v1\n" {
		t.Errorf("lib/deps/inner/inner.txt = %q", got)
	}
	// git's own layout: real git agrees that everything is checked out at
	// the recorded commits (no "-" not-initialized, no "+" wrong commit).
	status := w.git(w.opts.Dir, "submodule", "status", "--recursive")
	want := " " + w.sub2 + " lib "
	if !strings.Contains(status, want) || !strings.Contains(status, " "+w.inner1+" lib/deps/inner") {
		t.Errorf("git submodule status --recursive:\n%s", status)
	}
	for _, line := range strings.Split(status, "\n") {
		if !strings.HasPrefix(line, " ") {
			t.Errorf("submodule not at its recorded commit: %q", line)
		}
	}
	for _, d := range []string{".git/modules/lib", ".git/modules/lib/modules/deps/inner"} {
		if !isGitDirOS(filepath.Join(w.opts.Dir, d)) {
			t.Errorf("%s is not a git dir", d)
		}
		if _, err := os.Stat(filepath.Join(w.opts.Dir, d, "info", "refs")); err != nil {
			t.Errorf("server info not written after clone: %v", err)
		}
	}
}

func TestUpdatePullsAndUpdatesSubmodules(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.advance()

	// Local changes are discarded.
	if err := os.WriteFile(filepath.Join(w.opts.Dir, "README"), []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.opts.Dir, "lib", "sub.txt"), []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var err error
	withoutGit(t, func() { err = w.repo.Update(ctx) })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	head, _ := w.repo.Head()
	if head != w.c4 {
		t.Errorf("Head = %s, want %s", head, w.c4)
	}
	for rel, want := range map[string]string{
		"README":                   "v2\n",
		"lib/sub.txt":              "sub v2\n",
		"lib/deps/inner/inner.txt": "inner v2\n",
	} {
		if got := w.file(rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	status := w.git(w.opts.Dir, "submodule", "status", "--recursive")
	if !strings.Contains(status, " "+w.subBump+" lib ") || !strings.Contains(status, " "+w.inner2+" lib/deps/inner") {
		t.Errorf("git submodule status --recursive:\n%s", status)
	}

	// Idempotent.
	if err := w.repo.Update(ctx); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if head2, _ := w.repo.Head(); head2 != w.c4 {
		t.Errorf("Head after second Update = %s", head2)
	}

	// A reopened repository carries on.
	r2, err := Open(ctx, w.opts)
	if err != nil {
		t.Fatal(err)
	}
	c5 := w.commit(w.up, "Fifth", map[string]string{"README": "v5\n"})
	if err := r2.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := r2.Head(); h != c5 {
		t.Errorf("Head = %s, want %s", h, c5)
	}
	if got := w.file("README"); got != "v5\n" {
		t.Errorf("README = %q", got)
	}
}

func TestUpdateFollowsUpstreamHeadAndBranch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	up := f.init("up")
	m1 := f.commit(up, "main one", map[string]string{"f": "1"})
	f.git(up, "checkout", "-q", "-b", "stable")
	s1 := f.commit(up, "stable one", map[string]string{"f": "s"})
	f.git(up, "checkout", "-q", "main")

	r, err := Open(ctx, Options{Dir: f.path("d/a"), Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := r.Head(); h != m1 {
		t.Errorf("Head = %s, want main %s", h, m1)
	}
	// The upstream switches its HEAD to stable: "" follows it.
	f.git(up, "symbolic-ref", "HEAD", "refs/heads/stable")
	if err := r.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := r.Head(); h != s1 {
		t.Errorf("Head = %s, want stable %s", h, s1)
	}
	if got := readFile(t, f.path("d/a/f")); got != "s" {
		t.Errorf("f = %q", got)
	}

	// An explicit branch.
	f.git(up, "symbolic-ref", "HEAD", "refs/heads/main")
	rb, err := Open(ctx, Options{Dir: f.path("d/b"), Upstream: "file://" + up, Branch: "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := rb.Head(); h != s1 {
		t.Errorf("Head = %s, want stable %s", h, s1)
	}
	f.git(up, "checkout", "-q", "stable")
	s2 := f.commit(up, "stable two", map[string]string{"f": "s2"})
	f.git(up, "checkout", "-q", "main")
	m2 := f.commit(up, "main two", map[string]string{"f": "2"})
	if err := rb.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := rb.Head(); h != s2 {
		t.Errorf("Head = %s, want stable %s", h, s2)
	}
	if _, err := rb.Resolve(m2); err == nil {
		t.Errorf("single-branch repo resolved a main-only commit")
	}

	// The configured upstream changed: the remote follows it.
	up2 := f.init("up2")
	o1 := f.commit(up2, "other", map[string]string{"g": "1"})
	r3, err := Open(ctx, Options{Dir: f.path("d/a"), Upstream: up2})
	if err != nil {
		t.Fatal(err)
	}
	if err := r3.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := r3.Head(); h != o1 {
		t.Errorf("Head = %s, want %s", h, o1)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, o := range []Options{
		{Dir: "relative/path", Upstream: "/x"},
		{Dir: dir},
		{Dir: dir, Upstream: "/x", Branch: "bad..name"},
		{Dir: dir, Upstream: "/x", Branch: "refs/heads/main"},
	} {
		if _, err := Open(ctx, o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
	// Not empty, not a working copy: never overwritten.
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Dir: dir, Upstream: "/nonexistent"}); err == nil {
		t.Error("Open of a non-empty non-repository succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Error(err)
	}
	// A failed clone leaves nothing behind.
	missing := filepath.Join(t.TempDir(), "svc")
	if _, err := Open(ctx, Options{Dir: missing, Upstream: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Error("clone of a missing upstream succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("failed clone left %s: %v", missing, err)
	}
}

func TestSubmodules(t *testing.T) {
	w := newWorld(t)
	subs, err := w.repo.Submodules()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 {
		t.Fatalf("Submodules = %+v", subs)
	}
	lib := subs[0]
	if lib.Name != "lib" || lib.Path != "lib" || lib.URL != "../sub" || lib.Commit != w.sub2 {
		t.Errorf("lib = %+v", lib)
	}
	if len(lib.Submodules) != 1 {
		t.Fatalf("lib.Submodules = %+v", lib.Submodules)
	}
	inner := lib.Submodules[0]
	if inner.Name != "deps/inner" || inner.Path != "deps/inner" || inner.URL != w.inner || inner.Commit != w.inner1 {
		t.Errorf("inner = %+v", inner)
	}

	// At an older revision: none.
	if subs, err := w.repo.SubmodulesAt(w.c1[:8]); err != nil || len(subs) != 0 {
		t.Errorf("SubmodulesAt(c1) = %+v, %v", subs, err)
	}

	// Submodules off: none reported.
	r2, err := Open(context.Background(), Options{Dir: w.opts.Dir, Upstream: w.up})
	if err != nil {
		t.Fatal(err)
	}
	if subs, err := r2.Submodules(); err != nil || subs != nil {
		t.Errorf("Submodules with Options.Submodules false = %+v, %v", subs, err)
	}
}

func TestSubmodulesOff(t *testing.T) {
	w := newWorld(t)
	r, err := Open(context.Background(), Options{Dir: filepath.Join(w.deployDir, "nosub"), Upstream: w.up})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := r.Head(); h != w.c3 {
		t.Errorf("Head = %s", h)
	}
	if _, err := os.Stat(filepath.Join(w.deployDir, "nosub", "lib", "sub.txt")); !os.IsNotExist(err) {
		t.Errorf("submodule checked out although Submodules is false: %v", err)
	}
}

func TestResolveSubmoduleURL(t *testing.T) {
	for _, c := range []struct{ super, u, want string }{
		{"/srv/up", "../sub", "/srv/sub"},
		{"/srv/up", "./sub", "/srv/up/sub"},
		{"/srv/up", "/abs/sub", "/abs/sub"},
		{"https://gerrit.example.org/r/a/b", "../c", "https://gerrit.example.org/r/a/c"},
		{"https://gerrit.example.org/r/a/b.git", "../../x/c.git", "https://gerrit.example.org/r/x/c.git"},
		{"file:///srv/up", "../sub", "file:///srv/sub"},
		{"https://h/a", "https://other/b", "https://other/b"},
	} {
		got, err := resolveSubmoduleURL(c.super, c.u)
		if err != nil || got != c.want {
			t.Errorf("resolveSubmoduleURL(%q, %q) = %q, %v; want %q", c.super, c.u, got, err, c.want)
		}
	}
}

func TestUpdateAfterForcePush(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	up := f.init("up")
	a := f.commit(up, "a", map[string]string{"f": "a"})
	b := f.commit(up, "b", map[string]string{"f": "b"})
	r, err := Open(ctx, Options{Dir: f.path("d/svc"), Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	// Upstream rewrites b away and forgets it entirely: the deploy
	// repository's "have" is unknown to the upstream.
	f.git(up, "reset", "-q", "--hard", a)
	f.git(up, "reflog", "expire", "--expire=now", "--all")
	f.git(up, "gc", "-q", "--prune=now")
	if err := gitCmd(up, "cat-file", "-e", b).Run(); err == nil {
		t.Fatal("b still in upstream")
	}
	c := f.commit(up, "c", map[string]string{"f": "c"})
	withoutGit(t, func() { err = r.Update(ctx) })
	if err != nil {
		t.Fatalf("Update after force-push: %v", err)
	}
	if h, _ := r.Head(); h != c {
		t.Errorf("Head = %s, want %s", h, c)
	}
	rg, err := r.Range(b, c)
	if err != nil {
		t.Fatal(err)
	}
	if rg.Backwards || !sameList(shas(rg.Commits), []string{c}) || !sameList(shas(rg.Dropped), []string{b}) {
		t.Errorf("Range(b, c) = %v dropped %v", shas(rg.Commits), shas(rg.Dropped))
	}
}
