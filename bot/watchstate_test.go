package bot

import (
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
)

// With a shared state, a deploy whose process died on another host while
// the bot runs is announced once, with the state of its hosts; one the
// bot announced already is not announced again.
func TestWatchUnfinishedAnnouncesOnce(t *testing.T) {
	b, w, f := newEngineBot(t)
	meta := func(id string) journal.Meta {
		return journal.Meta{ID: id, Service: "citoid", Who: "bob", Rev: revB, FromRev: revA, Started: time.Now(),
			Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}}
	}
	f.unfinished = []*journal.Deploy{
		{Meta: meta("citoid-NEW"), HostState: map[string]journal.HostState{"scb1001": {Host: "scb1001", Group: "canary", Stage: "deploy", InFlight: true}}},
		{Meta: meta("citoid-OLD"), HostState: map[string]journal.HostState{}},
	}
	seen := map[string]bool{"citoid-OLD": true}
	b.postNewUnfinished(seen)
	got := collect(t, b, w, "citoid-NEW")
	b.postNewUnfinished(seen) // another round: nothing more is posted
	b.out.drainTo(w)
	got = append(got, w.take()...)
	var posted []string
	for _, l := range got {
		if strings.Contains(l, "was interrupted") {
			posted = append(posted, l)
		}
	}
	if len(posted) != 1 || !strings.Contains(posted[0], "citoid-NEW") || !strings.Contains(posted[0], "canary: 1 in flight (state unknown)") {
		t.Fatalf("posted %q, want citoid-NEW once with its hosts", posted)
	}
}
