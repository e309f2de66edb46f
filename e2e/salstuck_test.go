package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/pgsql"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// TestIRCDeployWithStuckSAL stops the SAL's PostgreSQL with SIGSTOP (its
// connections hang, nothing is refused) during a deploy: the deploy and
// its channel lines go on as with the database up, a !log typed meanwhile
// is answered that it is queued, and once the database is back every
// entry is stored exactly once.
func TestIRCDeployWithStuckSAL(t *testing.T) {
	pg := pgsql.StartT(t)
	url := pg.DatabaseT(t)
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(30*time.Second))
	d := e.deployEnv
	// The SAL on PostgreSQL, its spool in the test's directory.
	salBlock := fmt.Sprintf("sal:\n  database: %s/sal.db\n", d.Dir)
	if !strings.Contains(e.botConf, salBlock) {
		t.Fatalf("the configuration changed shape:\n%s", e.botConf)
	}
	spool := filepath.Join(d.Dir, "sal.spool")
	e.botConf = strings.Replace(e.botConf, salBlock, fmt.Sprintf("sal:\n  database: %q\n  spool: %s\n", url, spool), 1)
	alice := e.operator(t, "alice", "alice-pw-1")
	e.startBot(t, alice)
	nick := e.botNick
	long := scale.D(60 * time.Second)

	// deploy deploys label's revision (every restart taking 2 s, so the
	// deploy lasts a few seconds) and returns how long it took, from the
	// command to the finish line.
	deploy := func(label string) (time.Duration, string) {
		t.Helper()
		rev := d.Commit(label, 200)
		slowRestarts(d, rev)
		alice.Discard()
		start := time.Now()
		alice.Say("#ops", "!deploy svc "+rev[:7]+" "+label)
		expectBot(t, alice, nick, "alice: deploying svc ", long)
		expectBot(t, alice, nick, "Finished deploy [svc@"+rev[:7]+"]: "+label, long)
		return time.Since(start), rev
	}
	normal, _ := deploy("normal")

	pg.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			pg.Thaw()
		}
	}()
	stuck, rev := deploy("stuck")
	t.Logf("deploy with the SAL up: %v; with it stopped: %v", normal, stuck)
	if limit := normal + normal/10 + scale.D(time.Second); stuck > limit {
		t.Errorf("the deploy took %v with the SAL stopped, %v with it up", stuck, normal)
	}
	alice.Say("#ops", "!log restarted the cache by hand")
	sent := time.Now()
	reply := expectBot(t, alice, nick, "alice: ", scale.D(10*time.Second))
	if !strings.Contains(reply, "queued") {
		t.Fatalf("!log with the SAL stopped: %q", reply)
	}
	t.Logf("!log answered in %v", time.Since(sent))

	pg.Thaw()
	thawed = true
	store, err := sal.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	want := map[string]int{
		"Started deploy [svc@" + rev[:7] + "]: stuck":  1,
		"Finished deploy [svc@" + rev[:7] + "]: stuck": 1,
		"restarted the cache by hand":                  1,
	}
	var got map[string]int
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		list, err := store.List(t.Context(), sal.Query{Limit: 100})
		got = map[string]int{}
		for _, en := range list {
			for w := range want {
				if strings.HasPrefix(en.Message, w) {
					got[w]++
				}
			}
		}
		done := err == nil
		for w, n := range want {
			done = done && got[w] >= n
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(scale.D(200 * time.Millisecond))
	}
	time.Sleep(scale.D(time.Second)) // a double would show by now
	list, _ := store.List(t.Context(), sal.Query{Limit: 100})
	got = map[string]int{}
	for _, en := range list {
		for w := range want {
			if strings.HasPrefix(en.Message, w) {
				got[w]++
			}
		}
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("%q stored %d times, want %d", w, got[w], n)
		}
	}
}
