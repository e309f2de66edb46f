package gitrepo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// An upstream served over git's dumb HTTP protocol (a bare repository
// after update-server-info, behind a plain file server) fails with an
// error saying so and what to use instead, not go-git's "unexpected EOF";
// a server that is not a git server at all keeps its own error.
func TestDumbHTTPUpstream(t *testing.T) {
	f := newFixture(t)
	env := gitEnv()
	up := filepath.Join(f.base, "up")
	runGit(t, f.base, env, "init", "-q", "-b", "main", up)
	runGit(t, up, env, "commit", "-q", "--allow-empty", "-m", "first")
	runGit(t, f.base, env, "clone", "-q", "--bare", up, filepath.Join(f.base, "srv", "up.git"))
	runGit(t, filepath.Join(f.base, "srv", "up.git"), env, "update-server-info")
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(f.base, "srv"))))
	defer srv.Close()

	_, err := Open(context.Background(), Options{Dir: filepath.Join(f.base, "deploy"), Upstream: srv.URL + "/up.git"})
	if !errors.Is(err, ErrDumbHTTP) {
		t.Fatalf("dumb HTTP upstream: %v, want ErrDumbHTTP", err)
	}
	for _, want := range []string{"dumb HTTP", "smart HTTP", "ssh://", "local path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	_, err = Open(context.Background(), Options{Dir: filepath.Join(f.base, "deploy2"), Upstream: srv.URL + "/nosuch.git"})
	if err == nil || errors.Is(err, ErrDumbHTTP) {
		t.Errorf("missing repository: %v", err)
	}
}
