package remote

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gitFixture is a deploy repository with a submodule, made with the git
// CLI and served read-only over dumb HTTP, as the deploy host serves it.
type gitFixture struct {
	Root     string   // served directory
	Repo     string   // path of the deploy repository under Root
	SHAs     []string // commits of the deploy repository, oldest first
	LibSHAs  []string // the submodule commit each of SHAs records
	ServeURL string   // http://addr, no trailing slash

	dir string // the deploy repository's working tree
}

// commit adds a commit (version = v<label>) to the deploy repository,
// updates the server info, and returns its sha.
func (f *gitFixture) commit(t testing.TB, label string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "version"), []byte("v"+label+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, f.dir, "commit", "-q", "-a", "-m", "v"+label)
	git(t, f.dir, "update-server-info")
	return git(t, f.dir, "rev-parse", "HEAD")
}

// git runs git in dir and returns its trimmed stdout.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// newGitFixture makes the repositories in a new temporary directory
// (readable by everyone, for the fleet's deploy user) and serves them on
// listenAddr ("127.0.0.1:0", or the fleet's gateway).
//
// The deploy repository svc/deploy has n commits; commit i has
// version = "v<i+1>" and the submodule lib at a lib commit whose
// lib.txt = "lib v<i+1>" for the first two, then unchanged.
func newGitFixture(t testing.TB, listenAddr string, n int) *gitFixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root, err := os.MkdirTemp("", "deploybot-remote-git-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &gitFixture{Root: root, Repo: "svc/deploy"}
	lib := filepath.Join(root, "lib-src")
	repo := filepath.Join(root, "svc", "deploy")
	for _, d := range []string{lib, repo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		git(t, d, "-c", "init.defaultBranch=main", "init", "-q")
	}
	write := func(dir, name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(lib, "lib.txt", "lib v1\n")
	git(t, lib, "add", "lib.txt")
	git(t, lib, "commit", "-q", "-m", "lib v1")
	libSHA := git(t, lib, "rev-parse", "HEAD")
	git(t, repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "../../lib-src", "lib")
	for i := 0; i < n; i++ {
		if i == 1 {
			write(lib, "lib.txt", "lib v2\n")
			git(t, lib, "commit", "-q", "-a", "-m", "lib v2")
			libSHA = git(t, lib, "rev-parse", "HEAD")
			sub := filepath.Join(repo, "lib")
			git(t, sub, "-c", "protocol.file.allow=always", "fetch", "-q", "origin")
			git(t, sub, "checkout", "-q", libSHA)
			git(t, repo, "add", "lib")
		}
		write(repo, "version", "v"+strconv.Itoa(i+1)+"\n")
		git(t, repo, "add", "version")
		git(t, repo, "commit", "-q", "-m", "v"+strconv.Itoa(i+1))
		f.SHAs = append(f.SHAs, git(t, repo, "rev-parse", "HEAD"))
		f.LibSHAs = append(f.LibSHAs, libSHA)
	}
	// Keep the submodule's history reachable from a ref of its own.
	git(t, filepath.Join(repo, "lib"), "branch", "-f", "deploy", libSHA)
	git(t, repo, "update-server-info")
	git(t, filepath.Join(repo, ".git", "modules", "lib"), "update-server-info")
	// Everything readable by the deploy user.
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if fi.IsDir() {
				mode = 0o755
			}
			_ = os.Chmod(p, mode)
		}
		return nil
	})

	f.dir = repo
	l, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	f.ServeURL = "http://" + l.Addr().String()
	return f
}
