package faults

import (
	"context"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
	"deploybot/e2e/harness"
	"deploybot/e2e/scale"
)

// cacheDir is the deploy cache (<target_dir>-cache) as the hosts see it.
const cacheDir = harness.TargetDir + "-cache"

// inSessions runs command as root where host i's SSH sessions see the
// file system (fleet.Host.RootInSessions) and returns its output.
func (e *env) inSessions(i int, command string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scale.D(30*time.Second))
	defer cancel()
	out, err := e.Fleet.Hosts[i].RootInSessions(ctx, command)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// fillCache puts host i's deploy cache on a tmpfs of its own holding what
// the cache held, then fills that file system; freeCache frees it again.
func (e *env) fillCache(i int) {
	e.t.Helper()
	e.inSessions(i, fmt.Sprintf(`set -e
d=%s; keep=$(mktemp -d)
cp -a "$d/." "$keep/"
kb=$(du -sk "$keep" | cut -f1)
mount -t tmpfs -o "size=$((kb + 512))k,mode=0755,uid=$(stat -c %%u "$d"),gid=$(stat -c %%g "$d")" deploy-cache "$d"
cp -a "$keep/." "$d/"
rm -rf "$keep"
dd if=/dev/zero of="$d/.fill" bs=4k 2>/dev/null || true
sync`, cacheDir))
	if free := e.inSessions(i, "df -k --output=avail "+cacheDir+" | tail -1"); free != "0" {
		e.t.Fatalf("%s: %s KiB still free in the deploy cache", e.Fleet.Hosts[i].Name, free)
	}
}

func (e *env) freeCache(i int) { e.inSessions(i, "rm -f "+cacheDir+"/.fill") }

// currentInSessions is the revision host i's current symlink points at,
// as its sessions see it (the tmpfs, not the host's directory beneath).
func (e *env) currentInSessions(i int) string {
	return path.Base(e.inSessions(i, "readlink "+cacheDir+"/current"))
}

// TestDiskFull deploys to a fleet where one host's deploy cache is on a
// full file system: that host fails with the reason, the group's prompt
// is answered !rollback and every host is back on the live revision
// (the full one never left it), the journal says why. With space freed,
// the next deploy goes through everywhere.
func TestDiskFull(t *testing.T) {
	e := newEnv(t, "diskfull", 3, "60s")
	e.startBot()
	e.deploy("v1")
	v2 := e.Commit("v2", 200)
	e.fillCache(a1)
	ip := e.Fleet.Hosts[a1].IP

	e.alice.Discard()
	e.say("!deploy svc " + v2[:7])
	prompt := e.expect("!rollback svc", 60*time.Second)
	t.Logf("prompt: %s", prompt)
	failure := e.hostFailureLine(ip)
	t.Logf("failure: %s", failure)
	if !strings.Contains(failure, "No space left on device") {
		t.Errorf("the failure of %s does not say the disk is full: %q", ip, failure)
	}
	e.say("!rollback svc")
	e.expect("Rolled back svc", 60*time.Second)
	d := e.latest()
	if !d.Finished || d.Outcome != journal.OutcomeRolledBack {
		t.Errorf("journal %s: finished %v, outcome %q (%s)", d.Meta.ID, d.Finished, d.Outcome, d.Err)
	}
	if hs := d.HostState[ip]; !hs.Failed || !strings.Contains(hs.Err, "No space left on device") {
		t.Errorf("journal %s, %s: %+v", d.Meta.ID, ip, hs)
	}
	e.wantUnlocked()
	e.WantFleet("v1", canary, a2)
	if got := e.currentInSessions(a1); got != e.Revs["v1"] {
		t.Errorf("%s: current %.7s, want v1", ip, got)
	}

	e.freeCache(a1)
	e.deploy("v2")
	e.WantFleet("v2", canary, a2)
	if got, health := e.currentInSessions(a1), e.Health(a1); got != v2 || health != "200 v2" {
		t.Errorf("%s after space was freed: current %.7s, /health %q; want v2", ip, got, health)
	}
}

// hostFailureLine is the bot's line so far naming host's failure.
func (e *env) hostFailureLine(host string) string {
	e.t.Helper()
	for _, l := range e.lines() {
		if strings.Contains(l, host) && strings.Contains(strings.ToLower(l), "fail") {
			return l
		}
	}
	e.t.Fatalf("no line of the bot says %s failed:\n%s", host, strings.Join(e.lines(), "\n"))
	return ""
}
