package gitrepo

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

func TestSubmoduleURL(t *testing.T) {
	for _, c := range []struct {
		serve, repo string
		names       []string
		want        string
	}{
		{"http://deploy1001:8081", "svc", []string{"lib"}, "http://deploy1001:8081/svc/.git/modules/lib"},
		{"http://deploy1001:8081/", "svc", []string{"lib", "deps/inner"}, "http://deploy1001:8081/svc/.git/modules/lib/modules/deps/inner"},
		{"http://h/base", "svc", nil, "http://h/base/svc/.git"},
		{"http://h", "my svc", []string{"a b"}, "http://h/my%20svc/.git/modules/a%20b"},
	} {
		if got := SubmoduleURL(c.serve, c.repo, c.names...); got != c.want {
			t.Errorf("SubmoduleURL(%q, %q, %q) = %q, want %q", c.serve, c.repo, c.names, got, c.want)
		}
	}
}

func TestSubmoduleCommands(t *testing.T) {
	subs := []Submodule{
		{Name: "lib", Path: "lib", Commit: "x", Submodules: []Submodule{
			{Name: "deps/inner", Path: "deps/inner", Commit: "y"},
		}},
		{Name: "other", Path: "vendor/other", Commit: "z"},
	}
	got := SubmoduleCommands("http://d:8081", "svc", subs)
	want := [][]string{
		{"git", "config", "submodule.lib.url", "http://d:8081/svc/.git/modules/lib"},
		{"git", "config", "submodule.other.url", "http://d:8081/svc/.git/modules/other"},
		{"git", "-c", "protocol.file.allow=never", "submodule", "update", "--init", "--checkout", "--force", "--", "lib", "vendor/other"},
		{"git", "-C", "lib", "config", "submodule.deps/inner.url", "http://d:8081/svc/.git/modules/lib/modules/deps/inner"},
		{"git", "-C", "lib", "-c", "protocol.file.allow=never", "submodule", "update", "--init", "--checkout", "--force", "--", "deps/inner"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SubmoduleCommands =\n%q\nwant\n%q", got, want)
	}
	if cmds := SubmoduleCommands("http://d", "svc", nil); len(cmds) != 0 {
		t.Errorf("no submodules: %q", cmds)
	}
}

// TestServeToTargets is the real proof: the deploy repository, served by
// Handler after UpdateServerInfo, is cloned over plain HTTP by the real git
// CLI, which checks out a given revision and its submodules (nested
// included) from the served URLs only — the upstreams are gone by then.
func TestServeToTargets(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.advance()
	if err := w.repo.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.repo.UpdateServerInfo(); err != nil {
		t.Fatal(err)
	}
	// The deploy host must be self-sufficient.
	for _, d := range []string{w.up, w.sub, w.inner} {
		if err := os.Rename(d, d+".gone"); err != nil {
			t.Fatal(err)
		}
	}

	// Served as the engine serves it: NewServer on Listener.
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewServer(Handler(w.deployDir))
	srv.Listener = Listener(srv.Listener)
	srv.Start()
	defer srv.Close()

	target := filepath.Join(t.TempDir(), "cache")
	// No git config at all on the target side, and never file:// for
	// submodules.
	tgit := func(dir string, args ...string) string {
		t.Helper()
		return runGit(t, dir, gitEnv("GIT_ALLOW_PROTOCOL=http:https"), args...)
	}
	tgit(filepath.Dir(target), "clone", "-q", "--no-checkout", srv.URL+"/svc/.git", target)

	checkout := func(rev string, files map[string]string) {
		t.Helper()
		tgit(target, "-c", "advice.detachedHead=false", "checkout", "-q", "--force", "--detach", rev)
		subs, err := w.repo.SubmodulesAt(rev)
		if err != nil {
			t.Fatal(err)
		}
		for _, argv := range SubmoduleCommands(srv.URL, "svc", subs) {
			if argv[0] != "git" {
				t.Fatalf("command %q", argv)
			}
			tgit(target, argv[1:]...)
		}
		if got := tgit(target, "rev-parse", "HEAD"); got != rev {
			t.Errorf("HEAD = %s, want %s", got, rev)
		}
		for rel, want := range files {
			got, err := os.ReadFile(filepath.Join(target, filepath.FromSlash(rel)))
			if err != nil || string(got) != want {
				t.Errorf("at %s, %s = %q, %v; want %q", rev[:7], rel, got, err, want)
			}
		}
		status := tgit(target, "submodule", "status", "--recursive")
		for _, line := range strings.Split(status, "\n") {
			if line != "" && !strings.HasPrefix(line, " ") {
				t.Errorf("at %s, submodule not at its recorded commit: %q", rev[:7], line)
			}
		}
	}

	// An older revision first: lib at sub2, inner at inner1.
	checkout(w.c3, map[string]string{
		"README":                   "v2\n",
		"lib/sub.txt":              "sub v1\n",
		"lib/deps/inner/inner.txt": "inner v1\n",
	})
	// Then the new HEAD, fetched again (a reused cache).
	tgit(target, "fetch", "-q", "--prune", "origin")
	checkout(w.c4, map[string]string{
		"README":                   "v2\n",
		"lib/sub.txt":              "sub v2\n",
		"lib/deps/inner/inner.txt": "inner v2\n",
	})
	// And back (a rollback), submodules already cloned.
	checkout(w.c3, map[string]string{
		"lib/sub.txt":              "sub v1\n",
		"lib/deps/inner/inner.txt": "inner v1\n",
	})
	// The submodules came from the deployment host.
	if u := tgit(target, "config", "submodule.lib.url"); u != SubmoduleURL(srv.URL, "svc", "lib") {
		t.Errorf("submodule.lib.url = %s", u)
	}
	if u := tgit(filepath.Join(target, "lib"), "remote", "get-url", "origin"); u != SubmoduleURL(srv.URL, "svc", "lib") {
		t.Errorf("lib origin = %s", u)
	}
	if u := tgit(filepath.Join(target, "lib", "deps", "inner"), "remote", "get-url", "origin"); u != SubmoduleURL(srv.URL, "svc", "lib", "deps/inner") {
		t.Errorf("inner origin = %s", u)
	}

	// A fresh clone checking out the older revision directly, fetching it
	// by sha1.
	fresh := filepath.Join(t.TempDir(), "fresh")
	tgit(filepath.Dir(fresh), "clone", "-q", "--no-checkout", srv.URL+"/svc/.git", fresh)
	tgit(fresh, "fetch", "-q", "origin", w.c2)
	tgit(fresh, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", w.c2)
	subs, err := w.repo.SubmodulesAt(w.c2)
	if err != nil {
		t.Fatal(err)
	}
	for _, argv := range SubmoduleCommands(srv.URL, "svc", subs) {
		tgit(fresh, argv[1:]...)
	}
	if got := readFile(t, filepath.Join(fresh, "lib", "deps", "inner", "inner.txt")); got != "inner v1\n" {
		t.Errorf("fresh inner.txt = %q", got)
	}
}

func get(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "http://deploy.example"+target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesOnlyGitFiles(t *testing.T) {
	w := newWorld(t)
	root := w.deployDir
	h := Handler(root)

	// Bare repositories are not deploy repositories: never served.
	runGit(t, root, gitEnv(), "init", "-q", "--bare", "bare.git")
	runGit(t, filepath.Join(root, "svc"), gitEnv(), "init", "-q", "--bare", "fixture.git")

	// Symlinks: out of root, and to a working-copy file inside root.
	gitDir := filepath.Join(root, "svc", ".git")
	mustSymlink(t, "/etc/passwd", filepath.Join(root, "passwd"))
	mustSymlink(t, "/etc", filepath.Join(root, "etc"))
	mustSymlink(t, "../../README", filepath.Join(gitDir, "info", "readme"))
	mustSymlink(t, gitDir, filepath.Join(root, "alias.git"))
	outside := t.TempDir()
	runGit(t, outside, gitEnv(), "init", "-q", "x")
	mustSymlink(t, filepath.Join(outside, "x"), filepath.Join(root, "outside"))

	head := readFile(t, filepath.Join(gitDir, "HEAD"))
	objs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.pack"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("no pack: %v", err)
	}
	pack := "/svc/.git/objects/pack/" + filepath.Base(objs[0])

	ok := []string{
		"/svc/.git/HEAD",
		"/svc/.git/info/refs",
		"/svc/.git/info/refs?service=git-upload-pack",
		"/svc/.git/objects/info/packs",
		pack,
		strings.TrimSuffix(pack, ".pack") + ".idx",
		"/svc/.git/refs/heads/main",
		"/svc/.git/modules/lib/HEAD",
		"/svc/.git/modules/lib/info/refs",
		"/svc/.git/modules/lib/modules/deps/inner/HEAD",
		"/svc/.git/modules/lib/modules/deps/inner/info/refs",
		"/svc//.git/HEAD",
	}
	for _, p := range ok {
		rec := get(t, h, http.MethodGet, p)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Body.String() != head {
		t.Errorf("HEAD body = %q", rec.Body.String())
	}
	if rec := get(t, h, http.MethodHead, "/svc/.git/HEAD"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /svc/.git/HEAD = %d, %q", rec.Code, rec.Body.String())
	}

	notFound := []string{
		"/",
		"/svc",
		"/svc/",
		"/svc/README",
		"/svc/lib/sub.txt",
		"/svc/lib/.git",
		"/svc/.gitmodules",
		"/svc/.git",
		"/svc/.git/",
		"/svc/.git/config",
		"/svc/.git/index",
		"/svc/.git/description",
		"/svc/.git/hooks/pre-commit.sample",
		"/svc/.git/objects/",
		"/svc/.git/objects/info/",
		"/svc/.git/objects/pack/",
		"/svc/.git/refs/",
		"/svc/.git/refs/heads/",
		"/svc/.git/modules/",
		"/svc/.git/modules/lib/",
		"/svc/.git/modules/lib/config",
		"/svc/.git/modules/lib/index",
		"/svc/.git/modules/lib/modules/deps/inner/config",
		"/svc/.git/modules/nosuch/HEAD",
		"/svc/.git/info/readme",
		"/svc/.git/objects/info/alternates",
		"/svc/fixture.git/HEAD",
		"/bare.git/config",
		"/bare.git/HEAD",
		"/bare.git/info/refs",
		"/passwd",
		"/etc/passwd",
		"/alias.git/HEAD",
		"/outside/.git/HEAD",
		"/nosuch/.git/HEAD",
	}
	for _, p := range notFound {
		if rec := get(t, h, http.MethodGet, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}

	badRequest := []string{
		"/../etc/passwd",
		"/svc/../../etc/passwd",
		"/svc/.git/../README",
		"/svc/.git/%2e%2e/README",
		"/svc/./.git/HEAD",
		`/svc/.git\HEAD`,
	}
	for _, p := range badRequest {
		if rec := get(t, h, http.MethodGet, p); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, rec.Code)
		}
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "PROPFIND"} {
		rec := get(t, h, m, "/svc/.git/HEAD")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s = %d", m, rec.Code)
		}
	}

	// Over a real connection too (no client-side path cleaning).
	srv := httptest.NewServer(h)
	defer srv.Close()
	for p, want := range map[string]int{
		"/svc/.git/HEAD":      200,
		"/svc/../etc/passwd":  400,
		"/svc/%2e%2e/README":  400,
		"/svc/README":         404,
		"/svc/.git/config":    404,
		"/svc/.git/objects/":  404,
		"/svc/.git/info/refs": 200,
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		req.URL.Opaque = p // send the path exactly as written
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s over HTTP = %d, want %d", p, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(srv.URL+"/svc/.git/info/refs", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST over HTTP = %d", resp.StatusCode)
	}
}

func mustSymlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		t.Fatal(err)
	}
}

// Only the deploy repositories' .git and the git dirs of the submodules
// their HEAD declares are served; any other git dir under deploy_dir is 404.
func TestHandlerServesOnlyDeployGitDirs(t *testing.T) {
	w := newWorld(t)
	root := w.deployDir
	gitDir := filepath.Join(root, "svc", ".git")

	// Another working copy under deploy_dir, not a configured repository.
	other := filepath.Join(root, "other")
	runGit(t, root, gitEnv(), "init", "-q", "other")
	w.commit(other, "other", map[string]string{"x": "x\n"})
	// A git dir under modules/ that HEAD does not declare (a copy of lib's,
	// as a .gitmodules naming another repository would have left).
	runGit(t, root, gitEnv(), "clone", "-q", "--bare", filepath.Join(gitDir, "modules", "lib"), filepath.Join(gitDir, "modules", "stray"))
	// A git dir nested in a submodule's working copy.
	runGit(t, filepath.Join(root, "svc", "lib"), gitEnv(), "init", "-q", "--bare", "nested.git")

	for _, c := range []struct {
		h    http.Handler
		path string
		want int
	}{
		{Handler(root, "svc"), "/svc/.git/HEAD", 200},
		{Handler(root, "svc"), "/svc/.git/modules/lib/HEAD", 200},
		{Handler(root, "svc"), "/svc/.git/modules/lib/modules/deps/inner/HEAD", 200},
		{Handler(root, "svc"), "/other/.git/HEAD", 404},
		{Handler(root), "/other/.git/HEAD", 200},
		{Handler(root, "svc"), "/svc/.git/modules/stray/HEAD", 404},
		{Handler(root, "svc"), "/svc/.git/modules/stray/info/refs", 404},
		{Handler(root), "/svc/.git/modules/stray/HEAD", 404},
		{Handler(root), "/svc/.git/modules/lib/modules/stray/HEAD", 404},
		{Handler(root), "/svc/lib/nested.git/HEAD", 404},
		{Handler(root), "/svc/.git/modules/deps/inner/HEAD", 404},
		{Handler(root, "sv"), "/svc/.git/HEAD", 404},
	} {
		if rec := get(t, c.h, http.MethodGet, c.path); rec.Code != c.want {
			t.Errorf("GET %s = %d, want %d", c.path, rec.Code, c.want)
		}
	}

	// Once HEAD no longer declares lib, its git dir is no longer served.
	h := Handler(root, "svc")
	if rec := get(t, h, http.MethodGet, "/svc/.git/modules/lib/HEAD"); rec.Code != 200 {
		t.Fatalf("lib before: %d", rec.Code)
	}
	w.git(w.up, "rm", "-q", "lib")
	w.commit(w.up, "Drop lib", nil)
	if err := w.repo.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, "/svc/.git/modules/lib/HEAD"); rec.Code != 404 {
		t.Errorf("lib after it was dropped: %d, want 404", rec.Code)
	}
}

// Every request walks its path again: a symlink put on the path of a file
// already served, above or inside the git dir, is refused at once, even
// though the repository (its info/refs) did not change.
func TestHandlerRefusesSymlinkAfterServing(t *testing.T) {
	w := newWorld(t)
	root := w.deployDir
	h := Handler(root)
	gitDir := filepath.Join(root, "svc", ".git")
	packs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack: %v", err)
	}
	pack := "/svc/.git/objects/pack/" + filepath.Base(packs[0])
	paths := []string{pack, "/svc/.git/HEAD", "/svc/.git/info/refs"}
	expect := func(when string, want int) {
		t.Helper()
		for _, p := range paths {
			for range 2 {
				if rec := get(t, h, http.MethodGet, p); rec.Code != want {
					t.Errorf("%s: GET %s = %d, want %d", when, p, rec.Code, want)
				}
			}
		}
	}
	expect("before", http.StatusOK)

	// A directory of the path becomes a symlink to itself, moved.
	moveAndLink := func(p string) {
		t.Helper()
		if err := os.Rename(p, p+"-moved"); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, filepath.Base(p)+"-moved", p)
	}
	unlink := func(p string) {
		t.Helper()
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+"-moved", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{filepath.Join(root, "svc"), gitDir} {
		moveAndLink(dir)
		expect(dir+" a symlink", http.StatusNotFound)
		unlink(dir)
	}
	expect("after", http.StatusOK)
	moveAndLink(filepath.Join(gitDir, "objects", "pack"))
	if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusNotFound {
		t.Errorf("GET %s, objects/pack a symlink = %d, want 404", pack, rec.Code)
	}
	// The file itself.
	moveAndLink(filepath.Join(gitDir, "HEAD"))
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusNotFound {
		t.Errorf("GET HEAD, a symlink = %d, want 404", rec.Code)
	}
}

// A name git's dumb protocol reads that is not a regular file (here a
// FIFO, which would block whoever opens it for reading) is 404, at once.
func TestHandlerRefusesFIFO(t *testing.T) {
	w := newWorld(t)
	fifo := filepath.Join(w.deployDir, "svc", ".git", "refs", "heads", "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		// Unblocks a handler stuck opening it, if any.
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	done := make(chan int, 1)
	go func() { done <- get(t, Handler(w.deployDir), http.MethodGet, "/svc/.git/refs/heads/fifo").Code }()
	select {
	case code := <-done:
		if code != http.StatusNotFound {
			t.Errorf("GET a FIFO = %d, want 404", code)
		}
	case <-time.After(scale.D(10 * time.Second)):
		t.Fatal("GET a FIFO still blocked after 10s (scaled)")
	}
}

// The root is kept open between requests, but what is served is always
// the directory at its path: one that did not exist yet when the handler
// was made, or that replaced the one first served.
func TestHandlerFollowsRootReplaced(t *testing.T) {
	w := newWorld(t)
	root := w.deployDir
	h := Handler(root)
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusOK {
		t.Fatalf("GET HEAD = %d", rec.Code)
	}
	if err := os.Rename(root, root+".old"); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusNotFound {
		t.Errorf("GET HEAD, root gone = %d, want 404", rec.Code)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusNotFound {
		t.Errorf("GET HEAD, root empty = %d, want 404", rec.Code)
	}
	// Replaced again, by the original.
	if err := os.Rename(root, root+".empty"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+".old", root); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusOK {
		t.Errorf("GET HEAD, root back = %d, want 200", rec.Code)
	}
}
