package faults

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestUpstreamUnreachable takes the upstream away while the bot updates
// the deploy repository: the channel gets a clear error, nothing is
// deployed, no deploy is left running or unfinished, and the lock is free
// (the next deploy, once the upstream is back, goes through).
func TestUpstreamUnreachable(t *testing.T) {
	e := newEnv(t, "upstream", 3, "30s")
	e.startBot()
	e.deploy("v1")
	before := e.latestID()
	v2 := e.Commit("v2", 200)
	away := e.Upstream + ".away"
	e.must(os.Rename(e.Upstream, away))
	restored := false
	defer func() {
		if !restored {
			os.Rename(away, e.Upstream)
		}
	}()

	e.alice.Discard()
	e.say("!deploy svc")
	reply := e.expect(e.alice.Nick()+": ", 30*time.Second)
	t.Logf("the bot answered: %s", reply)
	low := strings.ToLower(reply)
	if !strings.Contains(low, "svc") || !(strings.Contains(low, "upstream") || strings.Contains(low, "repository")) ||
		strings.Contains(reply, "Finished deploy") {
		t.Errorf("the answer does not say the repository update failed: %q", reply)
	}
	if id := e.latestID(); id != before {
		if d := e.latest(); !d.Finished || d.Outcome == "success" {
			t.Errorf("journal %s for the failed update: finished %v, outcome %q", id, d.Finished, d.Outcome)
		}
	}
	e.wantUnlocked()
	e.WantFleet("v1")

	e.must(os.Rename(away, e.Upstream))
	restored = true
	e.say("!deploy svc")
	e.expect("Finished deploy [svc@"+v2[:7]+"]", 60*time.Second)
	e.WantFleet("v2")
}
