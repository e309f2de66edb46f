package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

// TestDeployPinnedSubmodules: with Pins, the deploy takes each
// submodule's path and commit as given, checking the submodule out at
// that commit; a pinned commit the submodule's repository lacks fails the
// fetch, naming it.
func TestDeployPinnedSubmodules(t *testing.T) {
	f, d := startFleet(t, 1)
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 2)
	h := f.Hosts[0]
	c := dialT(t, d, h)
	tg := Target{Service: "svc", Dir: "/srv/deployment/svc/deploy", ServeURL: g.ServeURL, Repo: g.Repo,
		Submodules: []string{"lib"}, Pins: []SubmodulePin{{Path: "lib", Commit: g.LibSHAs[1]}}, KeepRevs: 2}
	ctx := context.Background()
	stages, err := c.Deploy(ctx, tg, g.SHAs[1], false, scale.D(30*time.Second))
	if err != nil {
		t.Fatalf("pinned deploy: %v %+v", err, stages)
	}
	root := filepath.Join(h.Root, "svc", "deploy-cache")
	if b, _ := os.ReadFile(filepath.Join(root, "revs", g.SHAs[1], "lib", "lib.txt")); string(b) != "lib v2\n" {
		t.Errorf("submodule %q, want lib v2", b)
	}
	// Checked out detached: HEAD holds the commit.
	if b, _ := os.ReadFile(filepath.Join(root, "revs", g.SHAs[1], "lib", ".git", "HEAD")); strings.TrimSpace(string(b)) != g.LibSHAs[1] {
		t.Errorf("submodule at %q, want %s", b, g.LibSHAs[1])
	}

	missing := strings.Repeat("5a", 20)
	tg.Pins = []SubmodulePin{{Path: "lib", Commit: missing}}
	stages, err = c.Deploy(ctx, tg, g.SHAs[0], false, scale.D(30*time.Second))
	var se *StageError
	if !errors.As(err, &se) || se.Stage != StageFetch || se.ExitCode != 2 || !strings.Contains(se.Output, "submodule lib: revision "+missing+" is not in") {
		t.Fatalf("deploy pinned to a missing commit: %v %+v", err, stages)
	}
}

// Pins must match the submodules one to one, with paths inside the
// revision and full object names.
func TestPinsValidated(t *testing.T) {
	base := Target{Dir: "/srv/x", ServeURL: "http://h", Repo: "r", Submodules: []string{"lib"}}
	sha := strings.Repeat("ab", 20)
	for _, c := range []struct {
		pins []SubmodulePin
		ok   bool
	}{
		{nil, true},
		{[]SubmodulePin{{"lib", sha}}, true},
		{[]SubmodulePin{{"vendor/lib dir", sha}}, true},
		{[]SubmodulePin{{"lib", sha}, {"lib2", sha}}, false},
		{[]SubmodulePin{{"", sha}}, false},
		{[]SubmodulePin{{"/lib", sha}}, false},
		{[]SubmodulePin{{"a//lib", sha}}, false},
		{[]SubmodulePin{{"a/./lib", sha}}, false},
		{[]SubmodulePin{{"../lib", sha}}, false},
		{[]SubmodulePin{{"lib/", sha}}, false},
		{[]SubmodulePin{{"li\nb", sha}}, false},
		{[]SubmodulePin{{"lib", "abc"}}, false},
		{[]SubmodulePin{{"lib", strings.Repeat("AB", 20)}}, false},
	} {
		tg := base
		tg.Pins = c.pins
		if err := tg.Validate(); (err == nil) != c.ok {
			t.Errorf("pins %q: Validate() = %v, want ok=%v", c.pins, err, c.ok)
		}
	}
}
