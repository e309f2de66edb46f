package bot

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/remote"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// recorder collects what an Announcer posts and logs.
type recorder struct {
	mu      sync.Mutex
	lines   []string
	entries []*sal.Entry
}

func (r *recorder) say(text, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, text)
}

func (r *recorder) log(e *sal.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

// waitLines waits until at least n lines were said (and not taken).
func (r *recorder) waitLines(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(scale.D(10 * time.Second)); ; time.Sleep(scale.D(5 * time.Millisecond)) {
		r.mu.Lock()
		got := len(r.lines)
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines said, want %d", got, n)
		}
	}
}

func (r *recorder) take() ([]string, []*sal.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, e := r.lines, r.entries
	r.lines, r.entries = nil, nil
	return l, e
}

const (
	revA = "1a2b3c4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	revB = "5d6e7f8bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func testAnnouncer(rec *recorder) *Announcer {
	svc := &config.Service{Name: "citoid", Port: 1970, Checks: []config.Check{{Name: "info", HTTP: "http://127.0.0.1:1970/_info?x=1"}}}
	return &Announcer{
		Service: svc, Nick: "alice", Channel: "#ops", Project: "production",
		LogURL: func(id string) string { return "https://sal.example.org/deploys/" + id },
		Say:    rec.say, Log: rec.log, Merge: 50 * time.Millisecond, Progress: time.Hour,
	}
}

func started() deployer.Event {
	return deployer.Event{Type: deployer.EventStarted, Service: "citoid", DeployID: "D1", Who: "alice", From: revA, To: revB,
		Commits: []gitrepo.Commit{{SHA: revB, Subject: "Fix T12345 timeout"}, {Subject: "b"}, {Subject: "c"}}, Total: 21}
}

func TestAnnouncerSuccess(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	a.Observe(started())
	lines, entries := rec.take()
	want := `alice: deploying citoid 1a2b3c4..5d6e7f8 (3 commits: "Fix T12345 timeout", …) on 21 hosts — log: https://sal.example.org/deploys/D1`
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("start = %q, want %q", lines, want)
	}
	if len(entries) != 1 || entries[0].Message != "Started deploy [citoid@5d6e7f8]: Fix T12345 timeout" || entries[0].Source != sal.SourceDeploy ||
		entries[0].Key != "D1:start" || entries[0].Nick != "alice" || entries[0].Project != "production" {
		t.Fatalf("start entry = %+v", entries)
	}

	// Canary with its health results, then two groups of 10 hosts that
	// finish close together: two lines in all, never one per host.
	a.Observe(deployer.Event{Type: deployer.EventGroupStarted, Group: "canary", Total: 1})
	a.Observe(deployer.Event{Type: deployer.EventCheckResult, Group: "canary", Host: "scb1001",
		Checks: []remote.CheckResult{{Name: "port", Kind: remote.CheckKindPort, OK: true, Latency: 400 * time.Millisecond}}})
	a.Observe(deployer.Event{Type: deployer.EventCheckResult, Group: "canary", Host: "scb1001",
		Checks: []remote.CheckResult{{Name: "info", Kind: remote.CheckKindHTTP, OK: true, Status: 200, Latency: 35 * time.Millisecond}}})
	a.Observe(deployer.Event{Type: deployer.EventHostDone, Group: "canary", Host: "scb1001"})
	a.Observe(deployer.Event{Type: deployer.EventGroupFinished, Group: "canary", Total: 1, OK: 1, Outcome: "success"})
	rec.waitLines(t, 1) // once the merge window has passed
	lines, _ = rec.take()
	if want := "citoid: canary 1/1 ok — port 1970 open in 0.4s, info GET /_info?x=1 200 in 35ms"; len(lines) != 1 || lines[0] != want {
		t.Fatalf("canary = %q, want %q", lines, want)
	}
	for _, g := range []string{"eqiad", "codfw"} {
		a.Observe(deployer.Event{Type: deployer.EventGroupStarted, Group: g, Total: 10})
		for i := range 10 {
			a.Observe(deployer.Event{Type: deployer.EventHostDone, Group: g, Host: fmt.Sprintf("%s%d", g, i)})
		}
		a.Observe(deployer.Event{Type: deployer.EventGroupFinished, Group: g, Total: 10, OK: 10, Outcome: "success"})
	}
	a.Observe(deployer.Event{Type: deployer.EventFinished, Outcome: deployer.OutcomeSuccess, From: revA, To: revB, Total: 21, OK: 21, Duration: 102 * time.Second})
	lines, entries = rec.take()
	wantLines := []string{
		"citoid: eqiad 10/10 ok, codfw 10/10 ok",
		"alice: Finished deploy [citoid@5d6e7f8]: Fix T12345 timeout (duration: 01m 42s)",
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("lines = %q, want %q", lines, wantLines)
	}
	if len(entries) != 1 || entries[0].Message != "Finished deploy [citoid@5d6e7f8]: Fix T12345 timeout (duration: 01m 42s)" || entries[0].Key != "D1:finish" {
		t.Fatalf("finish entry = %+v", entries)
	}
}

func TestAnnouncerCanaryFailure(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	ev := started()
	ev.Message = "try the fix"
	a.Observe(ev)
	rec.take()
	a.Observe(deployer.Event{Type: deployer.EventGroupStarted, Group: "canary", Total: 1})
	a.Observe(deployer.Event{Type: deployer.EventHostFailed, Group: "canary", Host: "scb1001", Reason: "check info failed: status 500",
		Checks: []remote.CheckResult{{Name: "info", Kind: remote.CheckKindHTTP, Status: 500, Body: "db down\n"}}})
	a.Observe(deployer.Event{Type: deployer.EventGroupFinished, Group: "canary", Total: 1, Failed: 1, Outcome: "failed"})
	p := &deployer.Prompt{Service: "citoid", Kind: deployer.PromptCanaryFailed, Group: "canary", Default: deployer.Rollback, Deadline: time.Now().Add(10 * time.Minute)} // scale:fixed: a deadline in the data, not a wait
	a.Observe(deployer.Event{Type: deployer.EventPrompt, Group: "canary", Prompt: p})
	a.Observe(deployer.Event{Type: deployer.EventAnswer, Group: "canary", Prompt: p, Answer: deployer.Rollback, Who: "timeout"})
	a.Observe(deployer.Event{Type: deployer.EventRollback, Group: "canary", Total: 1, OK: 1})
	a.Observe(deployer.Event{Type: deployer.EventFinished, Outcome: deployer.OutcomeRolledBack, Reason: "canary failed", From: revA, To: revB, Duration: 12 * time.Second})
	lines, entries := rec.take()
	wantLines := []string{
		`citoid: canary FAILED on 1/1 — info GET /_info?x=1 500 (body: "db down") on scb1001`,
		"alice: roll back citoid to 1a2b3c4? !rollback citoid / !continue citoid — rolling back in 10m without an answer",
		"citoid: no answer in time — rolling back",
		"alice: Rolled back citoid to 1a2b3c4 (canary failed; 1 host restored; duration: 00m 12s)",
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	var msgs []string
	for _, e := range entries {
		msgs = append(msgs, e.Key+" "+e.Message)
	}
	wantEntries := []string{
		`D1:fail:canary FAILED deploy [citoid@5d6e7f8]: try the fix (canary failed on 1/1: info GET /_info?x=1 500 (body: "db down") on scb1001)`,
		"D1:finish Rolled back citoid to 1a2b3c4 (canary failed; 1 host restored; duration: 00m 12s)",
	}
	if strings.Join(msgs, "\n") != strings.Join(wantEntries, "\n") {
		t.Fatalf("entries =\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(wantEntries, "\n"))
	}
}

// A group of 100 hosts with 40 failures (within its limit) gives one line
// that names three hosts and counts the rest.
func TestAnnouncerManyFailuresOneLine(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	a.Observe(started())
	rec.take()
	a.Observe(deployer.Event{Type: deployer.EventGroupStarted, Group: "eqiad", Total: 100})
	for i := range 100 {
		h := fmt.Sprintf("scb%04d", i)
		if i%5 < 2 {
			a.Observe(deployer.Event{Type: deployer.EventHostFailed, Group: "eqiad", Host: h, Reason: "unreachable: dial tcp: i/o timeout"})
		} else {
			a.Observe(deployer.Event{Type: deployer.EventHostDone, Group: "eqiad", Host: h})
		}
	}
	a.Observe(deployer.Event{Type: deployer.EventGroupFinished, Group: "eqiad", Total: 100, OK: 60, Failed: 40, Outcome: "success"})
	lines, _ := rec.take()
	want := "citoid: eqiad 60/100 ok, 40 failed (within the failure limit) — unreachable: dial tcp: i/o timeout on scb0000; unreachable: dial tcp: i/o timeout on scb0001; unreachable: dial tcp: i/o timeout on scb0005; and 37 more"
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("lines = %q\nwant %q", lines, want)
	}
}

func TestAnnouncerProgress(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	a.Progress = 40 * time.Millisecond
	var keys []string
	a.Say = func(text, key string) { rec.say(text, key); rec.mu.Lock(); keys = append(keys, key); rec.mu.Unlock() }
	a.Observe(started())
	a.Observe(deployer.Event{Type: deployer.EventGroupStarted, Group: "eqiad", Total: 100})
	for i := range 30 {
		a.Observe(deployer.Event{Type: deployer.EventHostDone, Group: "eqiad", Host: fmt.Sprint(i)})
	}
	rec.waitLines(t, 2) // the start line, then the first progress report
	a.Close()
	lines, _ := rec.take()
	if len(lines) < 2 || lines[1] != "citoid: eqiad 30/100 done" {
		t.Fatalf("lines = %q", lines)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if keys[1] != "progress:D1" {
		t.Fatalf("progress key = %q", keys[1])
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		102 * time.Second:                       "01m 42s",
		0:                                       "00m 00s",
		time.Hour + 2*time.Minute + time.Second: "1h 02m 01s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", 30 * time.Second: "30s", 90 * time.Minute: "1h30m", time.Hour: "1h", 0: "1s", 95 * time.Second: "1m35s",
	} {
		if got := durationWords(d); got != want {
			t.Errorf("durationWords(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLooksLikeRev(t *testing.T) {
	for w, want := range map[string]bool{"5d6e7f8": true, "abc": false, "add": false, "face": false, "abc1": true, "deadbeefcafe": true, "fix": false, "12": true} {
		if got := looksLikeRev(w); got != want {
			t.Errorf("looksLikeRev(%q) = %v", w, got)
		}
	}
}

// A deploy run from a shell asks on its terminal: the channel is told
// where to answer, not given commands that cannot answer it.
func TestAnnouncerPromptAnsweredElsewhere(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	a.AnswerAt = "(answer at the terminal of deploybot deploy)"
	a.Observe(started())
	p := &deployer.Prompt{Kind: deployer.PromptPause, Group: "codfw", Default: deployer.Rollback, Deadline: time.Now().Add(2 * time.Minute)} // scale:fixed: the deadline the line names
	a.Observe(deployer.Event{Type: deployer.EventPrompt, Group: "codfw", Prompt: p})
	lines, _ := rec.take()
	want := "alice: citoid is paused before codfw. roll back citoid to 1a2b3c4? (answer at the terminal of deploybot deploy) — rolling back in 2m without an answer"
	if len(lines) != 2 || lines[1] != want {
		t.Fatalf("lines = %q\nwant %q", lines, want)
	}
}

// A no-op has no start (the engine decides it first): one line saying
// there is nothing to deploy, and no SAL entry.
func TestAnnouncerNoop(t *testing.T) {
	rec := &recorder{}
	a := testAnnouncer(rec)
	a.Observe(deployer.Event{Type: deployer.EventFinished, Service: "citoid", To: revB, Outcome: deployer.OutcomeNoop, Total: 7, OK: 7})
	lines, entries := rec.take()
	want := "alice: citoid is already on 5d6e7f8 on every host: nothing to deploy (force it with the CLI's --force)"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if len(entries) != 0 {
		t.Errorf("SAL entries for a no-op: %+v", entries[0])
	}
}

// A first deploy names the newest subjects of its history, up to a limit.
func TestAnnouncerFirstDeploySubjects(t *testing.T) {
	for _, tc := range []struct {
		subjects []string
		more     bool
		want     string
	}{
		{[]string{"Init"}, false, `(first deploy: "Init") on 21 hosts`},
		{[]string{"c", "b", "a"}, false, `(first deploy: "c", "b", "a") on 21 hosts`},
		{[]string{"d", "c", "b", "a"}, false, `(first deploy: "d", "c", "b", …) on 21 hosts`},
		{[]string{"b", "a"}, true, `(first deploy: "b", "a", …) on 21 hosts`},
	} {
		rec := &recorder{}
		a := testAnnouncer(rec)
		ev := started()
		ev.From, ev.More, ev.Commits = "", tc.more, nil
		for i, s := range tc.subjects {
			ev.Commits = append(ev.Commits, gitrepo.Commit{SHA: fmt.Sprintf("%040d", i), Subject: s})
		}
		a.Observe(ev)
		lines, _ := rec.take()
		if len(lines) != 1 || !strings.Contains(lines[0], "deploying citoid 5d6e7f8 "+tc.want) {
			t.Errorf("%v: start %q, want it to hold %q", tc.subjects, lines, tc.want)
		}
	}
}
