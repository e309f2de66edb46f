package deployer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/journal"
)

// These tests need no SSH server: the targets are closed ports on
// loopback, so every dial fails at once. The fleet tests live in e2e.

type fixture struct {
	dir      string
	upstream string
	shas     []string
	cfg      *config.Config
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=a@example.org",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=a@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// closedAddrs returns n distinct loopback ports nobody listens on: all n
// listeners are held open until every port is known, so the kernel cannot
// hand out one port twice.
func closedAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is missing (scripts/install-deps.sh installs it)")
		}
		t.Skip("git is missing")
	}
	f := &fixture{dir: t.TempDir()}
	f.upstream = filepath.Join(f.dir, "upstream")
	os.MkdirAll(f.upstream, 0o755)
	gitT(t, f.upstream, "-c", "init.defaultBranch=main", "init", "-q")
	for i := 1; i <= 3; i++ {
		os.WriteFile(filepath.Join(f.upstream, "VERSION"), []byte(fmt.Sprintf("v%d\n", i)), 0o644)
		gitT(t, f.upstream, "add", "VERSION")
		gitT(t, f.upstream, "commit", "-q", "-m", fmt.Sprintf("release v%d", i))
		f.shas = append(f.shas, gitT(t, f.upstream, "rev-parse", "HEAD"))
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "id"), pem.EncodeToMemory(blk), 0o600)
	os.WriteFile(filepath.Join(f.dir, "known_hosts"), nil, 0o644)
	addrs := closedAddrs(t, 4)
	conf := fmt.Sprintf(`irc: {server: "127.0.0.1:1", nick: bot, channels: ["#ops"]}
sal: {database: "%[1]s/sal.db"}
deploy:
  deploy_dir: "%[1]s/deployment"
  journal_dir: "%[1]s/deploys"
  serve: %[2]s
  ssh: {user: deploy, key_file: "%[1]s/id", known_hosts: "%[1]s/known_hosts", connect_timeout: %[7]s}
services:
  svc:
    repo: svc/deploy
    upstream: "%[3]s"
    target_dir: /srv/deployment/svc/deploy
    prompt_timeout: %[8]s
    canary: [%[4]q]
    groups:
      - {name: a, hosts: [%[5]q, %[6]q], failure_limit: "50%%"}
`, f.dir, addrs[0], f.upstream, addrs[1], addrs[2], addrs[3], yamlDuration(2*time.Second), yamlDuration(time.Second))
	p := filepath.Join(f.dir, "deploybot.yaml")
	os.WriteFile(p, []byte(conf), 0o644)
	f.cfg, err = config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) engine(t *testing.T) *Engine {
	e, err := New(f.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func (f *fixture) journals(t *testing.T) int {
	list, err := journal.List(f.cfg.Deploy.JournalDir, "svc")
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

type rec struct {
	mu     sync.Mutex
	types  []EventType
	events []Event
}

func (r *rec) Observe(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.types = append(r.types, ev.Type)
	r.events = append(r.events, ev)
}

func TestDeployRefusedBeforeAnythingRuns(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t)
	ctx := context.Background()
	for _, rev := range []string{"zzzzzzz", "abc", strings.Repeat("a", 41), "12345678 "} {
		_, err := e.Deploy(ctx, Request{Service: "svc", Rev: rev, Who: "alice"}, nil, nil)
		var re *gitrepo.RevisionError
		if !errors.As(err, &re) {
			t.Errorf("rev %q: %v", rev, err)
		}
	}
	if _, err := os.Stat(f.cfg.Deploy.DeployDir); err == nil {
		t.Error("a syntactically bad revision touched the deploy repository")
	}
	// Unknown: needs the repository, but leaves no journal and no lock.
	_, err := e.Deploy(ctx, Request{Service: "svc", Rev: strings.Repeat("ab", 20), Who: "alice"}, nil, nil)
	var re *gitrepo.RevisionError
	if !errors.As(err, &re) || re.Reason != gitrepo.ReasonUnknown {
		t.Errorf("unknown rev: %v", err)
	}
	if _, err := e.Deploy(ctx, Request{Service: "nope", Who: "alice"}, nil, nil); err == nil || !strings.Contains(err.Error(), "unknown service") {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := e.Deploy(ctx, Request{Service: "svc"}, nil, nil); err == nil {
		t.Error("no who: accepted")
	}
	if n := f.journals(t); n != 0 {
		t.Errorf("%d journals", n)
	}
	if h, _ := journal.Running(f.cfg.Deploy.JournalDir, "svc"); h != nil {
		t.Errorf("lock held: %+v", h)
	}
	// A manual lock refuses with who and why.
	if err := journal.Lock(f.cfg.Deploy.JournalDir, "svc", journal.Holder{Who: "bob", Why: "freeze"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.Deploy(ctx, Request{Service: "svc", Who: "alice"}, nil, nil)
	var le *journal.LockedError
	if !errors.As(err, &le) || !le.Manual || le.Holder.Who != "bob" || !strings.Contains(err.Error(), "freeze") {
		t.Errorf("manual lock: %v", err)
	}
	journal.Unlock(f.cfg.Deploy.JournalDir, "svc", "bob")
}

func TestPlan(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t)
	p, err := e.Plan(context.Background(), Request{Service: "svc", Rev: f.shas[1][:8]})
	if err != nil {
		t.Fatal(err)
	}
	if p.To != f.shas[1] || p.From != "" || len(p.Range.Commits) != 2 || len(p.Groups) != 2 ||
		p.Groups[0].Name != "canary" || p.Groups[1].Name != "a" || len(p.Groups[1].Hosts) != 2 || p.Groups[1].FailureLimit != 1 || p.Groups[1].Parallel != 2 {
		t.Errorf("plan: %+v", p)
	}
	if n := f.journals(t); n != 0 {
		t.Errorf("plan wrote %d journals", n)
	}
}

// TestDeployUnreachableCanary: every host is unreachable, so the canary
// fails; no prompter means the default, rollback, of nothing (no host was
// changed). The journal is finished, the lock released, the repository
// served, and the events tell the story.
func TestDeployUnreachableCanary(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t)
	r := &rec{}
	res, err := e.Deploy(context.Background(), Request{Service: "svc", Who: "alice", Message: "try", Source: "test"}, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeRolledBack || res.To != f.shas[2] || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Reason, "unreachable") || len(res.RolledBack) != 0 {
		t.Errorf("result: %+v", res)
	}
	want := []EventType{EventStarted, EventGroupStarted, EventHostStarted, EventHostFailed, EventGroupFinished, EventPrompt, EventAnswer, EventFinished}
	if fmt.Sprint(r.types) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", r.types, want)
	}
	for _, ev := range r.events {
		if ev.Type == EventPrompt && (ev.Prompt.Kind != PromptCanaryFailed || ev.Prompt.Default != Rollback) {
			t.Errorf("prompt %+v", ev.Prompt)
		}
	}
	path, err := journal.Latest(f.cfg.Deploy.JournalDir, "svc")
	if err != nil {
		t.Fatal(err)
	}
	d, err := journal.Read(path)
	if err != nil || !d.Finished || d.Outcome != journal.OutcomeRolledBack || d.Meta.Who != "alice" || d.Meta.Source != "test" {
		t.Errorf("journal: %+v %v", d, err)
	}
	if h, _ := journal.Running(f.cfg.Deploy.JournalDir, "svc"); h != nil {
		t.Errorf("lock held: %+v", h)
	}
	resp, err := http.Get(f.cfg.Deploy.ServeURL + "/svc/deploy/.git/HEAD")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("serving: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A second engine (another process) finds the address in use and
	// uses the running server.
	e2 := f.engine(t)
	if err := e2.ensureServing(context.Background(), "svc/deploy"); err != nil {
		t.Errorf("second engine: %v", err)
	}
	if err := e2.ensureServing(context.Background(), "other/repo"); err == nil {
		t.Error("a server that does not serve the repository was accepted")
	}
}

// TestRecover: an interrupted deploy (a journal without its finished
// event, and no process holding the lock) is listed, then rolled back (its
// reached hosts are unreachable: a failed rollback, reported) or marked
// ended.
func TestRecover(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t)
	dir := f.cfg.Deploy.JournalDir
	hosts := f.cfg.Services["svc"].AllHosts()
	mk := func() string {
		id, _ := journal.NewID("svc", timeNow())
		w, err := journal.Create(dir, "svc", journal.Meta{ID: id, Who: "alice", Rev: f.shas[2], FromRev: f.shas[1],
			Hosts: map[string][]string{"canary": {hosts[0].String()}, "a": {hosts[1].String(), hosts[2].String()}}, GroupOrder: []string{"canary", "a"}})
		if err != nil {
			t.Fatal(err)
		}
		w.Append(journal.Event{Type: journal.TypeStageStarted, Group: "canary", Host: hosts[0].String(), Stage: journal.StageFetch})
		w.Close()
		return id
	}
	id := mk()
	list, err := e.Unfinished()
	if err != nil || len(list) != 1 || list[0].Meta.ID != id || !list[0].HostState[hosts[0].String()].InFlight {
		t.Fatalf("unfinished: %v %v", list, err)
	}
	res, err := e.Recover(context.Background(), id, RecoverRollback, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeFailed || len(res.Failed) != 1 || res.Failed[0].Host != hosts[0].String() || !strings.Contains(res.Failed[0].Reason, "unreachable") {
		t.Errorf("rollback: %+v", res)
	}
	if _, err := e.Recover(context.Background(), id, RecoverRollback, "bob", nil); !errors.Is(err, journal.ErrFinished) {
		t.Errorf("second recover: %v", err)
	}
	id2 := mk()
	res, err = e.Recover(context.Background(), id2, RecoverMarkEnded, "bob", nil)
	if err != nil || res.Outcome != OutcomeEnded {
		t.Errorf("mark ended: %+v %v", res, err)
	}
	if list, _ := e.Unfinished(); len(list) != 0 {
		t.Errorf("still unfinished: %d", len(list))
	}
	if _, err := e.Recover(context.Background(), "bogus", RecoverMarkEnded, "bob", nil); err == nil {
		t.Error("bogus id accepted")
	}
}

func TestAbortUnknown(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t)
	if err := e.Abort("svc"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Abort with no deploy running: %v, want ErrNotRunning", err)
	}
}

func timeNow() time.Time { return time.Now() }
