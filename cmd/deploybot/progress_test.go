package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"deploybot/deployer"
)

// events of a 4-host deploy: canary ok, group a with one failure.
func progressEvents() []deployer.Event {
	ev := func(typ deployer.EventType, group, host string) deployer.Event {
		return deployer.Event{Type: typ, Service: "svc", DeployID: "D1", Group: group, Host: host}
	}
	fail := ev(deployer.EventHostFailed, "a", "a2")
	fail.Reason = "restart failed with exit 3"
	gcan := ev(deployer.EventGroupFinished, "canary", "")
	gcan.Outcome, gcan.Total, gcan.OK = deployer.OutcomeSuccess, 1, 1
	ga := ev(deployer.EventGroupFinished, "a", "")
	ga.Outcome, ga.Total, ga.OK, ga.Failed = deployer.OutcomeSuccess, 3, 2, 1
	start := ev(deployer.EventStarted, "", "")
	start.Total, start.Who, start.To = 4, "alice", strings.Repeat("5", 40)
	c0, a0 := ev(deployer.EventGroupStarted, "canary", ""), ev(deployer.EventGroupStarted, "a", "")
	c0.Total, a0.Total = 1, 3
	end := ev(deployer.EventFinished, "", "")
	end.Outcome, end.Total, end.OK, end.Duration, end.To = deployer.OutcomeSuccess, 4, 3, time.Second, start.To
	return []deployer.Event{start, c0,
		ev(deployer.EventHostStarted, "canary", "c1"), ev(deployer.EventHostDone, "canary", "c1"), gcan, a0,
		ev(deployer.EventHostStarted, "a", "a1"), ev(deployer.EventHostStarted, "a", "a2"), ev(deployer.EventHostDone, "a", "a1"),
		ev(deployer.EventHostStarted, "a", "a3"), fail, ev(deployer.EventHostDone, "a", "a3"), ga, end}
}

// Without a terminal: plain lines, no escape sequences, no table.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b}
	for _, ev := range progressEvents() {
		p.Observe(ev)
	}
	out := b.String()
	want := "[canary] started: 1 hosts\n[canary] success: 1/1 ok, 0 failed in 0s\n[a] started: 3 hosts\n[a] a2 FAILED: restart failed with exit 3\n" +
		"[a] success: 2/3 ok, 1 failed in 0s\ndeploy D1 success in 1s: 3/4 hosts on 5555555\n"
	if !strings.HasSuffix(out, want) || strings.ContainsAny(out, "\r\033") || strings.Contains(out, "in flight") || strings.Contains(out, "rolled back") {
		t.Errorf("plain output:\n%q\nwant it to end with\n%q", out, want)
	}
}

// On a terminal: a live line with done, failed and in flight per group,
// erased before each plain line, and a table at the end.
func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, width: 200}
	var lives []string
	for _, ev := range progressEvents() {
		p.Observe(ev)
		if p.live {
			lives = append(lives, p.liveText())
		}
	}
	out := b.String()
	for _, want := range []string{
		"[canary] 1/1 done success · [a] 0/3 done, 2 in flight",
		"[canary] 1/1 done success · [a] 2/3 done, 1 failed, 1 in flight",
	} {
		if !strings.Contains(strings.Join(lives, "\n"), want) || !strings.Contains(out, want+"\r\033[K") {
			t.Errorf("no live line %q in\n%q", want, out)
		}
	}
	table := "   group  hosts  ok  failed  rolled back\n  canary      1   1       0            0\n       a      3   2       1            0\n   total      4   3       1            0\n"
	if !strings.Contains(out, "\r\033[K"+table+"deploy D1 success") {
		t.Errorf("no summary table:\n%s\nwant\n%s", out, table)
	}
	if p.live {
		t.Error("the live line stays after the end")
	}

	// The live line never wraps: it is cut to the terminal's width.
	p = &progress{w: &b, tty: true, width: 30}
	b.Reset()
	for _, ev := range progressEvents()[:8] {
		p.Observe(ev)
	}
	s := b.String()
	last := s[strings.LastIndex(s, "\r\033[K")+4:]
	if !strings.HasSuffix(last, "…") || len([]rune(last)) != 29 {
		t.Errorf("live line not cut to 29 columns: %q", last)
	}
}

// A no-op says so, and only that.
func TestProgressNoop(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, width: 80}
	p.Observe(deployer.Event{Type: deployer.EventFinished, Service: "svc", Outcome: deployer.OutcomeNoop, To: strings.Repeat("5", 40), Total: 7, OK: 7})
	if got, want := b.String(), "nothing to deploy: svc is already on 5555555 on every host (7 hosts)\n"; got != want {
		t.Errorf("no-op: %q, want %q", got, want)
	}
}

// newProgress is live on a terminal (a pseudo-terminal here) and plain on
// a pipe or a buffer.
func TestProgressDetectsTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	if p := newProgress(tty); !p.tty || p.width != 100 {
		t.Errorf("on a terminal: tty %v, width %d", p.tty, p.width)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newProgress(w); p.tty {
		t.Error("a pipe taken for a terminal")
	}
	if p := newProgress(&bytes.Buffer{}); p.tty {
		t.Error("a buffer taken for a terminal")
	}
}
