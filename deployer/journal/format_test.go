package journal

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func formatAll(t *testing.T, evs []Event, opts FormatOptions) string {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		if err := Format(&b, ev, opts); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 11, 26, 1, 45, 12, 345e6, time.UTC)
	meta := &Meta{ID: "20261126-014512-citoid-3f9a", Service: "citoid", Who: "alice", Rev: revNew, FromRev: revOld,
		Message: "Fix T12345", Hosts: testHosts, GroupOrder: []string{"canary", "eqiad"}}
	evs := []Event{
		{Time: at, Type: TypeStarted, Meta: meta},
		{Time: at, Type: TypeStageStarted, Group: "eqiad", Host: "scb1002.eqiad.wmnet", Stage: StageFetch, Command: "git fetch"},
		{Time: at, Type: TypeStage, Group: "eqiad", Host: "scb1002.eqiad.wmnet", Stage: StageFetch, Command: "git fetch origin", ExitCode: Code(0), Duration: 1200 * time.Millisecond, Output: "From http://deploy\n"},
		{Time: at, Type: TypeStage, Group: "eqiad", Host: "scb1003.eqiad.wmnet", Stage: StageFetch, Command: "git fetch origin", ExitCode: Code(128), Duration: 300 * time.Millisecond, Output: "fatal: unable to access\r\nretrying\x1b[31m\n\n"},
		{Time: at, Type: TypeCheck, Group: "canary", Host: "scb1001.eqiad.wmnet", Check: &CheckRecord{Name: "info", Kind: "http", Target: "GET /_info", OK: false, Status: 500, Latency: 35 * time.Millisecond, Body: "db down"}},
		{Time: at, Type: TypeHostFailed, Group: "eqiad", Host: "scb1003.eqiad.wmnet", Stage: StageFetch, Err: "fetch: exit 128"},
		{Time: at, Type: TypePrompt, Prompt: "roll back citoid to 1a2b3c4?"},
		{Time: at, Type: TypeFinished, Outcome: OutcomeSuccess, Duration: 102 * time.Second},
	}
	for i := range evs {
		evs[i].Level = DefaultLevel(evs[i])
	}

	out := formatAll(t, evs, FormatOptions{})
	for _, want := range []string{
		"01:45:12.345 alice: deploying citoid 1a2b3c4..5d6e7f8 (2026-11-26 UTC, id 20261126-014512-citoid-3f9a): Fix T12345\n    groups: canary (1 host), eqiad (4 hosts)\n",
		"01:45:12.345 [eqiad] scb1003.eqiad.wmnet fetch → exit 128 in 300ms\n    fatal: unable to access\n    retrying\\x1b[31m\n01:45:12.345 [canary]",
		`01:45:12.345 [canary] scb1001.eqiad.wmnet check info (http GET /_info): FAILED 500 in 35ms (body: "db down")`,
		"01:45:12.345 [eqiad] scb1003.eqiad.wmnet FAILED at fetch: fetch: exit 128\n",
		"01:45:12.345 asked: roll back citoid to 1a2b3c4?\n",
		"01:45:12.345 deploy finished: success after 1m42s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\n--- in ---\n%s", want, out)
		}
	}
	if strings.Contains(out, "From http://deploy") || strings.Contains(out, "fetch: git fetch …") || strings.Contains(out, "scb1002") ||
		strings.Contains(out, "git fetch origin") {
		t.Errorf("info level shows debug events, commands that passed, scripts or successful output:\n%s", out)
	}

	// Output: the commands that passed too, with their output, but not the scripts.
	out = formatAll(t, evs, FormatOptions{Output: true})
	if !strings.Contains(out, "scb1002.eqiad.wmnet fetch → exit 0 in 1.2s\n    From http://deploy\n") || strings.Contains(out, "git fetch origin") {
		t.Errorf("output:\n%s", out)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("control characters reach the terminal: %q", out)
	}

	// Debug: stage starts and successful output too.
	out = formatAll(t, evs, FormatOptions{Level: "debug"})
	if !strings.Contains(out, "scb1002.eqiad.wmnet fetch: git fetch …\n") || !strings.Contains(out, "    From http://deploy\n") ||
		!strings.Contains(out, "scb1003.eqiad.wmnet fetch: git fetch origin → exit 128") {
		t.Errorf("debug level:\n%s", out)
	}

	// Host glob: events of other hosts go, events about no host stay.
	for _, glob := range []string{"scb1003*", "scb1003", "scb100[3]", "scb1003.eqiad.wmnet"} {
		out = formatAll(t, evs, FormatOptions{HostGlob: glob})
		if strings.Contains(out, "scb1002") || strings.Contains(out, "scb1001") || !strings.Contains(out, "scb1003.eqiad.wmnet FAILED") ||
			!strings.Contains(out, "deploying citoid") || !strings.Contains(out, "asked:") || !strings.Contains(out, "deploy finished") {
			t.Errorf("host glob %q:\n%s", glob, out)
		}
	}

	// Level: warn keeps warnings and errors only.
	out = formatAll(t, evs, FormatOptions{Level: "warn"})
	lines := strings.Count(out, "\n01:45") + 1
	if strings.Contains(out, "exit 0") || strings.Contains(out, "deploying citoid") || strings.Contains(out, "deploy finished") ||
		!strings.Contains(out, "exit 128") || !strings.Contains(out, "asked:") || !strings.Contains(out, "check info") || lines != 4 {
		t.Errorf("level warn (%d events):\n%s", lines, out)
	}
	out = formatAll(t, evs, FormatOptions{Level: "error", HostGlob: "scb1001*"})
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "check info") {
		t.Errorf("level error on scb1001:\n%s", out)
	}

	// Bad options are errors, not silence.
	var b bytes.Buffer
	if err := Format(&b, evs[0], FormatOptions{HostGlob: "scb[1"}); err == nil {
		t.Error("bad glob accepted")
	}
	if err := Format(&b, evs[0], FormatOptions{Level: "loud"}); err == nil {
		t.Error("bad level accepted")
	}
	if l, err := ParseLevel("WARNING"); err != nil || l != LevelWarn {
		t.Errorf("ParseLevel(WARNING) = %q %v", l, err)
	}

	// Times in another zone when asked.
	loc := time.FixedZone("X", 3600)
	out = formatAll(t, evs[7:], FormatOptions{Location: loc})
	if !strings.HasPrefix(out, "02:45:12.345 ") {
		t.Errorf("location: %q", out)
	}
}

func TestFormatHostileText(t *testing.T) {
	ev := Event{Time: time.Now(), Type: TypeStage, Host: "h\x1b]0;pwned\x07", Stage: "fetch", Command: "a\nb\u202ec", Err: "x\ry", Output: "\x00\xff"}
	var b bytes.Buffer
	Format(&b, ev, FormatOptions{})
	out := b.String()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "\x00", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("%q reaches the output: %q", bad, out)
		}
	}
	if strings.Count(out, "\n") != 2 { // the line and one output line
		t.Errorf("newlines in fields break lines: %q", out)
	}
}
