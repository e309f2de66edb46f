package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretWorld is an upstream "up" whose .gitmodules points, by absolute
// local path, at "secret": a repository the bot's user can read but that
// nobody allowed as a submodule.
type secretWorld struct {
	*fixture
	up, secret, secretHead string
	opts                   Options
}

func newSecretWorld(t *testing.T) *secretWorld {
	w := &secretWorld{fixture: newFixture(t)}
	w.secret = w.init("secret")
	w.secretHead = w.commit(w.secret, "private", map[string]string{"key.txt": "do not copy\n"})
	w.up = w.init("up")
	w.commit(w.up, "Initial commit", map[string]string{"README": "v1\n"})
	w.opts = Options{Dir: filepath.Join(w.path("deploy"), "svc"), Upstream: w.up, Submodules: true}
	return w
}

// addSecret commits a submodule "vendor" with the absolute URL of secret.
func (w *secretWorld) addSecret() {
	w.addSubmodule(w.up, w.secret, "vendor")
	w.commit(w.up, "Add vendor", nil)
}

// checkRefused checks that err names the submodule and URL and that
// nothing of secret reached the deploy repository.
func (w *secretWorld) checkRefused(t *testing.T, err error) {
	t.Helper()
	var refused *URLRefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("err = %v, want a *URLRefusedError", err)
	}
	if refused.Path != "vendor" || refused.URL != w.secret {
		t.Errorf("refused %+v", refused)
	}
	if msg := err.Error(); !strings.Contains(msg, "submodule vendor") || !strings.Contains(msg, w.secret) {
		t.Errorf("error %q does not name the submodule and its URL", msg)
	}
	if _, err := os.Stat(filepath.Join(w.opts.Dir, ".git", "modules")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git/modules exists: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.opts.Dir, "vendor", "key.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vendor/key.txt checked out: %v", err)
	}
	// No object of secret anywhere in the deploy repository.
	blob := strings.TrimSpace(w.git(w.secret, "rev-parse", "HEAD:key.txt"))
	for _, obj := range []string{w.secretHead, blob} {
		if out, err := gitCmd(w.opts.Dir, "cat-file", "-e", obj).CombinedOutput(); err == nil {
			t.Errorf("object %s of secret is in the deploy repository (%s)", obj, out)
		}
	}
	if cfg := readFile(t, filepath.Join(w.opts.Dir, ".git", "config")); strings.Contains(cfg, w.secret) {
		t.Errorf(".git/config names the refused URL:\n%s", cfg)
	}
}

func TestAbsoluteLocalSubmoduleRefusedOnClone(t *testing.T) {
	w := newSecretWorld(t)
	w.addSecret()
	var err error
	withoutGit(t, func() { _, err = Open(context.Background(), w.opts) })
	w.checkRefused(t, err)
}

func TestAbsoluteLocalSubmoduleRefusedOnUpdate(t *testing.T) {
	w := newSecretWorld(t)
	// A broad pattern for remote URLs does not let a local path in.
	w.opts.SubmoduleURLs = []string{"*", "https://gerrit.example.org/r/"}
	ctx := context.Background()
	var r *Repo
	var err error
	withoutGit(t, func() { r, err = Open(ctx, w.opts) })
	if err != nil {
		t.Fatal(err)
	}
	w.addSecret()
	withoutGit(t, func() { err = r.Update(ctx) })
	w.checkRefused(t, err)
	// Refused again on the next update: nothing was left half done.
	withoutGit(t, func() { err = r.Update(ctx) })
	w.checkRefused(t, err)
}

func TestAllowedAbsoluteSubmoduleFetched(t *testing.T) {
	w := newSecretWorld(t)
	w.addSecret()
	w.opts.SubmoduleURLs = []string{"file:///nowhere/", w.secret}
	var err error
	withoutGit(t, func() { _, err = Open(context.Background(), w.opts) })
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(w.opts.Dir, "vendor", "key.txt")); got != "do not copy\n" {
		t.Errorf("vendor/key.txt = %q", got)
	}
}

// The standard world's lib is relative (../sub); its nested deps/inner is
// absolute and allowed there. Without the allowance lib is still fetched
// and deps/inner is refused.
func TestNestedAbsoluteSubmoduleNeedsAllowance(t *testing.T) {
	f := newFixture(t)
	inner := f.init("inner")
	f.commit(inner, "inner", map[string]string{"inner.txt": "inner\n"})
	sub := f.init("sub")
	f.commit(sub, "sub", map[string]string{"sub.txt": "sub\n"})
	f.addSubmodule(sub, inner, "deps/inner")
	f.commit(sub, "sub: add inner", nil)
	up := f.init("up")
	f.commit(up, "one", map[string]string{"README": "v1\n"})
	f.addSubmodule(up, "../sub", "lib")
	f.commit(up, "add lib", nil)

	opts := Options{Dir: filepath.Join(f.path("deploy"), "svc"), Upstream: up, Submodules: true}
	var err error
	withoutGit(t, func() { _, err = Open(context.Background(), opts) })
	var refused *URLRefusedError
	if !errors.As(err, &refused) || refused.Path != "deps/inner" || refused.URL != inner {
		t.Fatalf("err = %v, want deps/inner refused", err)
	}
	if got := readFile(t, filepath.Join(opts.Dir, "lib", "sub.txt")); got != "sub\n" {
		t.Errorf("lib/sub.txt = %q (relative URL not fetched)", got)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, ".git", "modules", "lib", "modules")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("inner's git dir exists: %v", err)
	}
}

func TestURLPolicyCheck(t *testing.T) {
	local := newURLPolicy("/srv/git/up", []string{"https://gerrit.example.org/r/*", "/srv/mirror/", "*"})
	remote := newURLPolicy("https://gerrit.example.org/r/up", []string{"https://gerrit.example.org/r/*"})
	none := newURLPolicy("https://gerrit.example.org/r/up", nil)
	for _, c := range []struct {
		pol           urlPolicy
		raw, resolved string
		ok            bool
	}{
		{local, "../sub", "/srv/git/sub", true},
		{local, "./sub", "/srv/git/up/sub", true},
		{local, "../../etc/repo", "/srv/etc/repo", false},
		{local, "../../mirror/x", "/srv/mirror/x", true}, // allowed by a local pattern
		{local, "/srv/git/other", "/srv/git/other", false},
		{local, "file:///srv/git/other", "file:///srv/git/other", false},
		{local, "/srv/mirror/lib", "/srv/mirror/lib", true},
		{local, "/srv/mirror/../secret", "/srv/mirror/../secret", false},
		{local, "https://gerrit.example.org/r/a/b", "https://gerrit.example.org/r/a/b", true},
		{local, "ssh://elsewhere/x", "ssh://elsewhere/x", true}, // "*"
		{remote, "../lib", "https://gerrit.example.org/r/lib", true},
		{remote, "https://gerrit.example.org/r/mediawiki/lib", "https://gerrit.example.org/r/mediawiki/lib", true},
		{remote, "https://gerrit.example.org/r/../admin", "https://gerrit.example.org/r/../admin", false},
		{remote, "https://github.com/x/y", "https://github.com/x/y", false},
		{remote, "/srv/git/secret", "/srv/git/secret", false},
		{remote, "file:///srv/git/secret", "file:///srv/git/secret", false},
		{remote, "lib", "lib", false},
		{none, "https://gerrit.example.org/r/lib", "https://gerrit.example.org/r/lib", false},
	} {
		why := c.pol.check(c.raw, c.resolved)
		if (why == "") != c.ok {
			t.Errorf("check(%q, %q) = %q, want allowed=%v", c.raw, c.resolved, why, c.ok)
		}
	}
}

func TestMatchURL(t *testing.T) {
	for _, c := range []struct {
		pat, u string
		want   bool
	}{
		{"https://h/r/", "https://h/r/x", true},
		{"https://h/r/", "https://h/rx", false},
		{"https://h/r/*", "https://h/r/a/b", true},
		{"https://h/r/*", "https://h/s/a", false},
		{"https://*.example.org/r/*", "https://gerrit.example.org/r/a", true},
		{"https://h/r/?", "https://h/r/ab", false},
		{"https://h/r/*/lib", "https://h/r/a/b/lib", true},
		{"https://h/r/*/lib", "https://h/r/a/b/lib2", false},
	} {
		if got := MatchURL(c.pat, c.u); got != c.want {
			t.Errorf("MatchURL(%q, %q) = %v, want %v", c.pat, c.u, got, c.want)
		}
	}
}
