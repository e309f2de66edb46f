package journal

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A deploy's log starts with where every host ended; the commands that
// passed and their scripts are left to debug level, so a seven-host
// deploy reads in a screenful.
func TestWriteLog(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 11, 26, 1, 45, 12, 0, time.UTC)
	id, err := NewID("citoid", started)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string][]string{"canary": {"h0"}, "a": {"h1", "h2", "h3"}, "b": {"h4", "h5", "h6"}}
	w, err := Create(dir, "citoid", Meta{ID: id, Who: "alice", Rev: revNew, FromRev: revOld, Started: started,
		Hosts: hosts, GroupOrder: []string{"canary", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	script := "set -e\n" + strings.Repeat("echo a-very-long-remote-script-line\n", 50)
	for _, g := range []string{"canary", "a", "b"} {
		w.Append(Event{Type: TypeGroupStarted, Group: g})
		for _, h := range hosts[g] {
			w.Append(Event{Type: TypeStageStarted, Group: g, Host: h, Stage: "deploy", Command: script})
			for _, st := range []string{"fetch", "checkout", "promote", "restart"} {
				w.Append(Event{Type: TypeStage, Group: g, Host: h, Stage: st, Command: script, ExitCode: Code(0), Duration: time.Second})
			}
			w.Append(Event{Type: TypeCheck, Group: g, Host: h, Check: &CheckRecord{Name: "port", Kind: "port", OK: true}})
			w.Append(Event{Type: TypeCheck, Group: g, Host: h, Check: &CheckRecord{Name: "health", Kind: "http", OK: true, Status: 200}})
			w.Append(Event{Type: TypeHostDone, Group: g, Host: h, Rev: revNew})
		}
		w.Append(Event{Type: TypeGroupFinished, Group: g, Outcome: OutcomeSuccess, Message: fmt.Sprintf("%d/%d ok", len(hosts[g]), len(hosts[g]))})
	}
	for i := range 7 {
		w.Append(Event{Type: TypeStage, Group: "a", Host: fmt.Sprintf("h%d", i), Stage: StageFinalize, Command: script, ExitCode: Code(0)})
	}
	w.Append(Event{Type: TypeFinished, Outcome: OutcomeSuccess, Duration: time.Minute})
	w.Close()
	path, _ := JournalPath(dir, "citoid", id)
	d, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}

	var b bytes.Buffer
	if err := WriteLog(&b, d, FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) > 40 || strings.Contains(out, "remote-script") || strings.Contains(out, "fetch") {
		t.Errorf("%d lines, scripts or passed commands shown:\n%s", len(lines), out)
	}
	// The first block is the summary: the header and one line per host.
	block, _, _ := strings.Cut(out, "\n\n")
	if !strings.HasPrefix(block, "citoid "+id+" by alice: 1a2b3c4..5d6e7f8, success") || strings.Count(block, ": done, switched to 5d6e7f8") != 7 {
		t.Errorf("first block is not the per-host summary:\n%s", block)
	}

	b.Reset()
	WriteLog(&b, d, FormatOptions{Level: LevelDebug})
	if !strings.Contains(b.String(), "a-very-long-remote-script-line") || !strings.Contains(b.String(), "h3 restart: set -e") {
		t.Errorf("debug level lacks the scripts:\n%.2000s", b.String())
	}
}
