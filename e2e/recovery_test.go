package e2e

import (
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
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", "20s")
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick
	long := scale.D(60 * time.Second)
	v1 := d.revs["v1"]
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", long)
	bad := d.commit("v2-bad", 500)

	// killAtPrompt deploys the bad revision and kills the bot once the
	// question is posted; it returns when the question was seen.
	killAtPrompt := func(b *bot) time.Time {
		t.Helper()
		alice.Discard()
		alice.Say("#ops", "!deploy svc "+bad[:7])
		expectBot(t, alice, nick, "rolling back in 20s without an answer", long)
		asked := time.Now()
		b.cmd.Process.Kill()
		b.cmd.Wait()
		alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(nick))
		return asked
	}

	top := t // bots outlive the subtests
	t.Run("restarted after the deadline", func(t *testing.T) {
		asked := killAtPrompt(b)
		time.Sleep(time.Until(asked.Add(30 * time.Second)))
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
		d.wantFleet("v1")
		for _, l := range botLines(alice, nick) {
			if strings.Contains(l, "was interrupted") || strings.Contains(l, "was waiting for an answer") {
				t.Errorf("asked again although the deadline had passed: %q", l)
			}
		}
	})

	t.Run("restarted before the deadline", func(t *testing.T) {
		asked := killAtPrompt(e.bots[len(e.bots)-1])
		time.Sleep(time.Until(asked.Add(5 * time.Second)))
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
		if off := deadline.Sub(asked.Add(20 * time.Second)).Abs(); off > 3*time.Second {
			t.Fatalf("deadline %v, the question was asked at %v with 20 s", deadline, asked)
		}
		expectBot(t, alice, nick, "svc: no answer in time — rolling back", scale.D(40*time.Second))
		if took := time.Now(); took.Before(deadline) || took.After(deadline.Add(scale.D(5*time.Second))) {
			t.Errorf("the default was taken at %v, the deadline was %v", took, deadline)
		}
		expectBot(t, alice, nick, "Rolled back svc to "+v1[:7], long)
		d.wantFleet("v1")
	})
}
