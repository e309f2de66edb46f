package simfleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/remote"
	"deploybot/e2e/scale"
)

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gitServed makes a repository of n commits (the first ones packed, the
// last loose, as a deploy repository is after updates) served as the
// deploy host serves it; it returns the serve URL and the commits.
func gitServed(t *testing.T, n int) (string, []string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "svc", "deploy")
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q")
	var shas []string
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "VERSION")
		git("commit", "-q", "-m", "v"+strconv.Itoa(i))
		shas = append(shas, git("rev-parse", "HEAD"))
		if i == 0 {
			git("repack", "-q", "-a", "-d")
		}
	}
	git("update-server-info")
	srv := httptest.NewServer(gitrepo.Handler(root, "svc/deploy"))
	t.Cleanup(srv.Close)
	return srv.URL, shas
}

// The simulated hosts answer remote.Conn as real targets do: a deploy
// fetches from the git server (a packed commit, then loose ones) and
// reports its four stages; checks go through the connection; finalize,
// status and a rollback undoing a finalized revision keep the layout's
// revisions; an injected failure fails the restart stage.
func TestSimulatedHosts(t *testing.T) {
	url, shas := gitServed(t, 3)
	hostKey, clientKey := newKey(t), newKey(t)
	f, err := Start(Config{Hosts: 2, HostKey: hostKey, ClientKey: clientKey.PublicKey(), FailEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &remote.Dialer{User: "deploy", Signers: []ssh.Signer{clientKey}, HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()), Keepalive: -1}
	ctx, cancel := context.WithTimeout(context.Background(), scale.D(30*time.Second))
	defer cancel()
	hc, err := config.ParseHost(f.Hosts()[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg := remote.Target{Service: "svc", Dir: "/srv/deployment/svc/deploy", ServeURL: url, Repo: "svc/deploy", Restart: "restart", OpID: "op-1"}
	for i, sha := range shas[:2] {
		stages, err := c.Deploy(ctx, tg, sha, false, 0)
		if err != nil || len(stages) != 4 || stages[3].Stage != remote.StageRestart || !strings.Contains(stages[0].Output, "fetched "+sha) {
			t.Fatalf("deploy %d: %v %+v", i, err, stages)
		}
		if r := c.CheckPort(ctx, 8080, scale.D(time.Second)); !r.OK {
			t.Errorf("port check: %+v", r)
		}
		chk := config.Check{Name: "health", HTTP: "http://127.0.0.1:8080/health", ExpectStatus: 200, ExpectBody: "^rev " + sha}
		if r := c.CheckHTTP(ctx, chk); !r.OK {
			t.Errorf("http check: %+v", r)
		}
		if _, err := c.Finalize(ctx, tg, sha); err != nil {
			t.Fatal(err)
		}
	}
	if stages, err := c.Deploy(ctx, tg, shas[1], false, 0); err != nil || len(stages) != 1 || stages[0].Stage != remote.StageNoop {
		t.Errorf("noop: %v %+v", err, stages)
	}
	if _, err := c.Deploy(ctx, tg, strings.Repeat("ab", 20), false, 0); err == nil || !strings.Contains(err.Error(), "fetch") {
		t.Errorf("unknown revision: %v", err)
	}
	if _, err := c.Deploy(ctx, tg, shas[2], false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, tg, shas[2]); err != nil {
		t.Fatal(err)
	}
	undo := tg
	undo.Undo = shas[2]
	if _, rev, err := c.Rollback(ctx, undo); err != nil || rev != shas[1] {
		t.Errorf("rollback undoing: %s %v", rev, err)
	}
	if st, err := c.Status(ctx, tg); err != nil || st != (remote.TargetState{Current: shas[1], Done: shas[1]}) {
		t.Errorf("status: %+v %v", st, err)
	}
	if op, err := c.Op(ctx, tg); err != nil || op.Found {
		t.Errorf("op: %+v %v", op, err)
	}

	// The second host fails its restart.
	hc2, _ := config.ParseHost(f.Hosts()[1].Addr)
	c2, err := d.Dial(ctx, hc2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = c2.Deploy(ctx, tg, shas[0], false, 0)
	if se, ok := err.(*remote.StageError); !ok || se.Stage != remote.StageRestart || se.ExitCode != 1 {
		t.Errorf("injected failure: %v", err)
	}
}
