package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// TestIRCBotKilledWhilePromptWaits kills the bot while a canary-failure
// question waits (20 s to the default, rollback). Restarted after the
// deadline, the bot takes the default at once and says why; restarted
// before it, the bot asks again with the same deadline and takes the
// default on time.
func TestIRCBotKilledWhilePromptWaits(t *testing.T) {
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(20*time.Second))
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick
	long := scale.D(60 * time.Second)
	v1 := d.Revs["v1"]
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", long)
	bad := d.Commit("v2-bad", 500)

	// killAtPrompt deploys the bad revision and kills the bot once the
	// question is posted; it returns when the question was seen.
	killAtPrompt := func(b *bot) time.Time {
		t.Helper()
		alice.Discard()
		alice.Say("#ops", "!deploy svc "+bad[:7])
		expectBot(t, alice, nick, "rolling back in "+promptWords(e.prompt)+" without an answer", long)
		asked := time.Now()
		b.Cmd.Process.Kill()
		b.Cmd.Wait()
		alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(nick))
		return asked
	}

	top := t // bots outlive the subtests
	t.Run("restarted after the deadline", func(t *testing.T) {
		asked := killAtPrompt(b)
		time.Sleep(time.Until(asked.Add(e.prompt + scale.D(10*time.Second))))
		alice.Discard()
		e.startBot(top, alice)
		started := time.Now()
		line := expectBot(t, alice, nick, "while the bot was down — rolling back", scale.D(20*time.Second))
		if !regexp.MustCompile(`^svc: no answer before \d\d:\d\d:\d\d UTC while the bot was down — rolling back$`).MatchString(line) {
			t.Fatalf("line %q", line)
		}
		if took := time.Since(started); took > scale.D(15*time.Second) {
			t.Errorf("the default was taken %v after the restart", took)
		}
		expectBot(t, alice, nick, "Rolled back svc to "+v1[:7], long)
		d.WantFleet("v1")
		for _, l := range botLines(alice, nick) {
			if strings.Contains(l, "was interrupted") || strings.Contains(l, "was waiting for an answer") {
				t.Errorf("asked again although the deadline had passed: %q", l)
			}
		}
	})

	t.Run("restarted before the deadline", func(t *testing.T) {
		asked := killAtPrompt(e.bots[len(e.bots)-1])
		time.Sleep(time.Until(asked.Add(scale.D(5 * time.Second))))
		alice.Discard()
		e.startBot(top, alice)
		reminder := expectBot(t, alice, nick, "was waiting for an answer when the bot stopped", scale.D(20*time.Second))
		m := regexp.MustCompile(`rolling back in \S+ \(at (\d\d:\d\d:\d\d) UTC\) without an answer$`).FindStringSubmatch(reminder)
		if m == nil || !strings.Contains(reminder, "!rollback svc / !continue svc") {
			t.Fatalf("reminder %q", reminder)
		}
		at, err := time.Parse("15:04:05", m[1])
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		deadline := time.Date(now.Year(), now.Month(), now.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.UTC)
		if off := deadline.Sub(asked.Add(e.prompt)).Abs(); off > scale.D(3*time.Second) {
			t.Fatalf("deadline %v, the question was asked at %v with %v", deadline, asked, e.prompt)
		}
		expectBot(t, alice, nick, "svc: no answer in time — rolling back", scale.D(40*time.Second))
		if took := time.Now(); took.Before(deadline) || took.After(deadline.Add(scale.D(5*time.Second))) {
			t.Errorf("the default was taken at %v, the deadline was %v", took, deadline)
		}
		expectBot(t, alice, nick, "Rolled back svc to "+v1[:7], long)
		d.WantFleet("v1")
	})
}

// leftAlive reports the hosts (of idx) where the restart script a killed
// deploy started ("slow": its pid in restart.pid) still runs.
func leftAlive(d *deployEnv, idx ...int) []int {
	var alive []int
	for _, i := range idx {
		b, err := os.ReadFile(filepath.Join(d.Fleet.Hosts[i].Root, "restart.pid"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
		if err == nil && !strings.Contains(string(stat), ") Z ") {
			alive = append(alive, i)
		}
	}
	return alive
}

// restartsOf is the revisions host i was restarted on, in order.
func restartsOf(d *deployEnv, i int) []string {
	b, _ := os.ReadFile(filepath.Join(d.Fleet.Hosts[i].Root, "restarts"))
	return strings.Fields(string(b))
}

// TestIRCBotKilledDuringSlowRestart kills the bot while group a runs a
// restart that takes 30 s. Whatever finishes the interrupted deploy —
// !rollback, !continue, deploybot recover --rollback — acts only once
// nothing of the killed deploy runs on any host, and no host is restarted
// by it afterwards.
func TestIRCBotKilledDuringSlowRestart(t *testing.T) {
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(30*time.Second))
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	bots := []*bot{e.startBot(t, alice)}
	nick := e.botNick
	long := scale.D(60 * time.Second)
	v1 := d.Revs["v1"]
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", long)

	// killMidRestart deploys rev with a 30 s restart on group a and kills
	// the bot while it runs; it returns when.
	killMidRestart := func(rev string) time.Time {
		t.Helper()
		for _, i := range []int{1, 2} {
			d.HostFile(i, "slow", rev)
			os.Remove(filepath.Join(d.Fleet.Hosts[i].Root, "restart.pid"))
		}
		alice.Discard()
		alice.Say("#ops", "!deploy svc "+rev[:7])
		expectBot(t, alice, nick, "svc: canary 1/1 ok", long)
		deadline := time.Now().Add(scale.D(20 * time.Second))
		for len(leftAlive(d, 1, 2)) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("group a never started its slow restart")
			}
			time.Sleep(scale.D(50 * time.Millisecond))
		}
		b := bots[len(bots)-1]
		b.Cmd.Process.Kill()
		b.Cmd.Wait()
		killed := time.Now()
		alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(nick))
		for _, i := range []int{1, 2} {
			d.HostFile(i, "slow", "")
		}
		alice.Discard()
		bots = append(bots, e.startBot(t, alice))
		expectBot(t, alice, nick, "was interrupted", scale.D(30*time.Second))
		return killed
	}

	v2 := d.Commit("v2", 200)
	t.Run("rollback", func(t *testing.T) {
		killed := killMidRestart(v2)
		alice.Say("#ops", "!rollback svc")
		expectBot(t, alice, nick, "Rolled back svc to "+v1[:7], long)
		if alive := leftAlive(d, 1, 2); len(alive) > 0 {
			t.Fatalf("rolled back while the killed deploy's restart still ran on hosts %v", alive)
		}
		d.WantFleet("v1")
		// Past the end of the killed restart: nothing restarted a host on
		// its revision after the rollback.
		time.Sleep(time.Until(killed.Add(32 * time.Second)))
		for _, i := range []int{1, 2} {
			r := restartsOf(d, i)
			if len(r) == 0 || r[len(r)-1] != v1 {
				t.Errorf("host %d restarted on %v", i, r)
			}
		}
		d.WantFleet("v1")
	})

	t.Run("continue", func(t *testing.T) {
		killMidRestart(v2)
		alice.Say("#ops", "!continue svc")
		fin := expectBot(t, alice, nick, "Finished deploy [svc@"+v2[:7]+"]: resuming ", long)
		if alive := leftAlive(d, 1, 2); len(alive) > 0 {
			t.Fatalf("finished while the killed deploy's restart still ran on hosts %v", alive)
		}
		t.Logf("finish line: %s", fin)
		d.WantFleet("v2")
	})

	v3 := d.Commit("v3", 200)
	t.Run("recover from a shell", func(t *testing.T) {
		killMidRestart(v3)
		list, err := d.engine().Unfinished()
		if err != nil || len(list) != 1 {
			t.Fatalf("unfinished %v %v", list, err)
		}
		code, out, errOut := d.CLI("", "recover", list[0].Meta.ID, "--rollback")
		if code != 0 || !strings.Contains(out, "rolled_back") {
			t.Fatalf("recover: exit %d\n%s\n%s", code, out, errOut)
		}
		if alive := leftAlive(d, 1, 2); len(alive) > 0 {
			t.Fatalf("rolled back while the killed deploy's restart still ran on hosts %v", alive)
		}
		d.WantFleet("v2")
	})
}
