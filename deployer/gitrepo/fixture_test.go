package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Test fixtures are real repositories built with the git CLI.

func requireGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
}

// gitEnv isolates git from the user's and the system's configuration.
func gitEnv(extra ...string) []string {
	env := append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Alice Author",
		"GIT_AUTHOR_EMAIL=alice@example.org",
		"GIT_COMMITTER_NAME=Carol Committer",
		"GIT_COMMITTER_EMAIL=carol@example.org",
	)
	return append(env, extra...)
}

// clock gives each fixture commit a distinct, increasing time, so that
// "newest first" is well defined.
type clock struct{ t time.Time }

func (c *clock) next() string {
	if c.t.IsZero() {
		c.t = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	}
	c.t = c.t.Add(time.Minute)
	return fmt.Sprintf("@%d +0000", c.t.Unix())
}

// gitCmd is the git CLI, run in dir, isolated by gitEnv.
func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	return cmd
}

func runGit(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := gitCmd(dir, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s (in %s): %v\n%s%s", strings.Join(args, " "), dir, err, out.String(), errb.String())
	}
	return strings.TrimRight(out.String(), "\n")
}

type fixture struct {
	t     testing.TB
	clock clock
	base  string
}

func newFixture(t testing.TB) *fixture {
	requireGit(t)
	return &fixture{t: t, base: t.TempDir()}
}

func (f *fixture) path(name string) string { return filepath.Join(f.base, name) }

func (f *fixture) git(dir string, args ...string) string {
	f.t.Helper()
	return runGit(f.t, dir, gitEnv(), args...)
}

// init creates a repository with branch main.
func (f *fixture) init(name string) string {
	f.t.Helper()
	dir := f.path(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.git(dir, "init", "-q", "-b", "main")
	return dir
}

// commit writes files, stages everything and commits; it returns the sha.
func (f *fixture) commit(dir, msg string, files map[string]string) string {
	f.t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	date := f.clock.next()
	env := gitEnv("GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	runGit(f.t, dir, env, "add", "-A")
	runGit(f.t, dir, env, "commit", "-q", "--allow-empty", "-m", msg)
	return runGit(f.t, dir, env, "rev-parse", "HEAD")
}

// addSubmodule adds url as a submodule at path of the repository dir
// (without committing).
func (f *fixture) addSubmodule(dir, url, path string) {
	f.t.Helper()
	f.git(dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", url, path)
}

// bumpSubmodule moves the submodule at path of dir to the head of its
// upstream's main (without committing).
func (f *fixture) bumpSubmodule(dir, path string) {
	f.t.Helper()
	sub := filepath.Join(dir, path)
	f.git(sub, "-c", "protocol.file.allow=always", "fetch", "-q", "origin")
	f.git(sub, "checkout", "-q", "--detach", "origin/main")
}

// withoutGit runs f with an empty PATH: the package must not need the git
// binary (go-git's own file transport would run git-upload-pack).
func withoutGit(t testing.TB, f func()) {
	t.Helper()
	old := os.Getenv("PATH")
	os.Setenv("PATH", t.TempDir())
	defer os.Setenv("PATH", old)
	f()
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// world is the standard fixture: an upstream "up" with a submodule "lib"
// (repository "sub", added with the relative URL ../sub), which has a
// submodule "deps/inner" (repository "inner", absolute path, allowed by
// Options.SubmoduleURLs), and a deploy repository cloned from it at
// deploy/svc.
type world struct {
	*fixture
	up, sub, inner string
	deployDir      string
	opts           Options
	repo           *Repo

	// Commits of up's main, oldest first; c4 is made by advance.
	c1, c2, c3, c4 string
	// Commits of sub and inner.
	sub1, sub2, subBump, inner1, inner2 string
}

func newWorld(t testing.TB) *world {
	w := &world{fixture: newFixture(t)}
	w.inner = w.init("inner")
	w.inner1 = w.commit(w.inner, "inner one", map[string]string{"inner.txt": "inner v1\n"})

	w.sub = w.init("sub")
	w.sub1 = w.commit(w.sub, "sub one", map[string]string{"sub.txt": "sub v1\n"})
	w.addSubmodule(w.sub, w.inner, "deps/inner")
	w.sub2 = w.commit(w.sub, "sub: add inner", nil)

	w.up = w.init("up")
	w.c1 = w.commit(w.up, "Initial commit", map[string]string{"README": "v1\n"})
	w.addSubmodule(w.up, "../sub", "lib")
	w.c2 = w.commit(w.up, "Add lib submodule", nil)
	w.c3 = w.commit(w.up, "Third: README v2\n\nWith a body.", map[string]string{"README": "v2\n"})

	w.deployDir = w.path("deploy")
	w.opts = Options{Dir: filepath.Join(w.deployDir, "svc"), Upstream: w.up, Submodules: true,
		SubmoduleURLs: []string{w.inner}}
	var r *Repo
	var err error
	withoutGit(t, func() { r, err = Open(context.Background(), w.opts) })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	w.repo = r
	return w
}

// advance makes new commits in inner, sub and up (c4 bumps lib, whose new
// commit bumps deps/inner).
func (w *world) advance() {
	w.inner2 = w.commit(w.inner, "inner two", map[string]string{"inner.txt": "inner v2\n"})
	w.bumpSubmodule(w.sub, "deps/inner")
	w.subBump = w.commit(w.sub, "sub two, bump inner", map[string]string{"sub.txt": "sub v2\n"})
	w.bumpSubmodule(w.up, "lib")
	w.c4 = w.commit(w.up, "Bump lib", nil)
}

func (w *world) file(rel string) string {
	w.t.Helper()
	return readFile(w.t, filepath.Join(w.opts.Dir, filepath.FromSlash(rel)))
}
