package deployer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer/fakefleet"
	"deploybot/deployer/journal"
	"deploybot/e2e/scale"
)

// fleetFixture is an engine whose targets are an in-memory fleet, on a
// real deploy repository (the fixture's upstream, three commits).
type fleetFixture struct {
	*fixture
	fleet *fakefleet.Fleet
	eng   *Engine
}

// yamlDuration is d scaled, as a configuration duration: the timeouts of
// a test's configuration grow with the machine's load.
func yamlDuration(d time.Duration) string { return scale.D(d).String() }

// newFleetFixture configures service "svc" with the given YAML (the keys
// under services.svc besides repo, upstream and target_dir).
func newFleetFixture(t *testing.T, svcYAML string) *fleetFixture {
	t.Helper()
	f := newFixture(t)
	conf := fmt.Sprintf(`irc: {server: "127.0.0.1:1", nick: bot, channels: ["#ops"]}
sal: {database: "%[1]s/sal.db"}
deploy:
  deploy_dir: "%[1]s/deployment"
  journal_dir: "%[1]s/deploys"
  serve: %[2]s
  ssh: {user: deploy, key_file: "%[1]s/id", known_hosts: "%[1]s/known_hosts", command_timeout: %[5]s}
services:
  svc:
    repo: svc/deploy
    upstream: "%[3]s"
    target_dir: /srv/deployment/svc/deploy
    checks:
      - {name: health, http: "http://127.0.0.1:8080/health"}
%[4]s
`, f.dir, f.cfg.Deploy.Serve, f.upstream, indentYAML(svcYAML, "    "), yamlDuration(time.Second))
	p := filepath.Join(f.dir, "fleet.yaml")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	fl := fakefleet.New()
	eng := NewWithDialer(cfg, nil, DialerFunc(func(ctx context.Context, h config.Host) (Host, error) {
		c, err := fl.Dial(ctx, h)
		if err != nil {
			return nil, err
		}
		return c, nil
	}))
	t.Cleanup(func() { eng.Close() })
	return &fleetFixture{fixture: f, fleet: fl, eng: eng}
}

func indentYAML(s, ind string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = ind + l
	}
	return strings.Join(lines, "\n")
}

// installAll puts every host of svc on rev, done.
func (f *fleetFixture) installAll(rev string) {
	s, _ := f.cfg.Service("svc")
	for _, h := range s.AllHosts() {
		f.fleet.Install(h.String(), rev)
	}
}

// answerer answers every prompt of svc through Engine.Answer as who, the
// moment it is announced, with the answers in turn (the last repeats).
type answerer struct {
	e       *Engine
	who     string
	answers []Answer

	mu      sync.Mutex
	n       int
	prompts []Prompt
	events  []Event
	errs    []error
}

func (a *answerer) Observe(ev Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	if ev.Type != EventPrompt || len(a.answers) == 0 {
		return
	}
	a.prompts = append(a.prompts, *ev.Prompt)
	ans := a.answers[min(a.n, len(a.answers)-1)]
	a.n++
	if err := a.e.Answer(ev.Service, ans, a.who); err != nil {
		a.errs = append(a.errs, err)
	}
}

func (a *answerer) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.prompts {
		out = append(out, p.Kind)
	}
	return out
}

func (f *fleetFixture) deploy(t *testing.T, obs Observer, req Request) *Result {
	t.Helper()
	if req.Service == "" {
		req.Service = "svc"
	}
	if req.Who == "" {
		req.Who = "alice"
	}
	res, err := f.eng.Deploy(context.Background(), req, obs, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return res
}

// readJournal reads the journal of deploy id.
func (f *fleetFixture) readJournal(t *testing.T, id string) *journal.Deploy {
	t.Helper()
	p, err := journal.JournalPath(f.cfg.Deploy.JournalDir, "svc", id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := journal.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func answersIn(d *journal.Deploy) []string {
	var out []string
	for _, ev := range d.Events {
		if ev.Type == journal.TypeAnswer {
			out = append(out, ev.Answer+" by "+ev.Who)
		}
	}
	return out
}
