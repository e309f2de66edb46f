package faults

import (
	"os"
	"path/filepath"
	"time"

	"deploybot/deployer/journal"
	"deploybot/e2e/scale"
)

// Gates hold a deploy at a chosen point on a host so that the bot can be
// killed there, every time: files in the host's /srv/deployment that the
// restart script, the test service and a git hook in the host's deploy
// cache look for.

// refHook is the deploy cache's reference-transaction hook (git runs it
// for every ref update, in the session that updates them). When the
// host's file hold-fetch exists, the first update of a fetched ref waits
// there (hold-fetch.waiting says so); with hold-finalize, the first
// deletion of a revision's keep-ref (finalize pruning an old revision)
// does. Each gate opens once: the hook removes its file.
const refHook = `#!/bin/sh
d=/srv/deployment
[ "$1" = prepared ] || exit 0
while read -r _old new ref; do
	case $ref in
	refs/remotes/*) g=$d/hold-fetch ;;
	refs/deploybot/revs/*) [ "$new" = 0000000000000000000000000000000000000000 ] || continue; g=$d/hold-finalize ;;
	*) continue ;;
	esac
	[ -f "$g" ] || continue
	rm -f "$g"
	: >"$g.waiting"
	sleep 30
	exit 0
done
exit 0
`

// installRefHook puts refHook into host i's deploy cache (which the first
// deploy created).
func (e *env) installRefHook(i int) {
	e.t.Helper()
	dir := filepath.Join(e.Fleet.Hosts[i].Root, "svc", "deploy-cache", "cache", "hooks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reference-transaction"), []byte(refHook), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// waitHostFile waits until host i has the file name in /srv/deployment.
func (e *env) waitHostFile(i int, name string) {
	e.t.Helper()
	p := filepath.Join(e.Fleet.Hosts[i].Root, name)
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never got %s; the bot said:\n%v", e.Fleet.Hosts[i].Name, name, e.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvent waits until the newest journal of the service, other than
// the one called notID, has an event for which match is true.
func (e *env) waitEvent(notID string, match func(journal.Event) bool) *journal.Deploy {
	e.t.Helper()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		if p, err := journal.Latest(e.Cfg.Deploy.JournalDir, "svc"); err == nil {
			if d, err := journal.Read(p); err == nil && d.Meta.ID != notID {
				for _, ev := range d.Events {
					if match(ev) {
						return d
					}
				}
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no such journal event; the bot said:\n%v", e.lines())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// latestID is the id of the newest journal, "" when there is none.
func (e *env) latestID() string {
	p, err := journal.Latest(e.Cfg.Deploy.JournalDir, "svc")
	if err != nil {
		return ""
	}
	d, err := journal.Read(p)
	if err != nil {
		return ""
	}
	return d.Meta.ID
}
