package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// Faults around a deploy driven from IRC: the IRC server restarted, the
// bot killed, a server with flood protection on.

// slowRestarts makes every host's restart of sha take 2 s, so a deploy
// lasts long enough for a fault in the middle.
func slowRestarts(d *deployEnv, sha string) {
	for i := range d.Fleet.Hosts {
		d.HostFile(i, "pause", sha)
	}
}

// redial connects a new client as account once the server is back.
func redial(t *testing.T, srv *ircd.Server, account, password string) *ircd.Client {
	t.Helper()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		c, err := ircd.Dial(srv.Addr, ircd.ClientOptions{Nick: account, Account: account, Password: password, Channels: []string{"#ops"}, Timeout: scale.D(10 * time.Second)})
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot reconnect %s: %v", account, err)
		}
		time.Sleep(scale.D(200 * time.Millisecond))
	}
}

// TestIRCServerRestartMidDeploy restarts InspIRCd while a deploy runs: the
// deploy completes, the bot reconnects, every notification reaches the
// channel exactly once, and the SAL has each entry once. #ops replays its
// history to whoever joins, so the operator's new client sees what the bot
// said before it was back.
func TestIRCServerRestartMidDeploy(t *testing.T) {
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{HistoryChannels: []string{"#ops"}}, "  rate: {per_second: 5, burst: 10}\n", scale.D(30*time.Second))
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick

	v2 := d.Commit("v2", 200)
	slowRestarts(d, v2)
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "svc: canary 1/1 ok", scale.D(60*time.Second))
	if err := e.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	alice2 := redial(t, e.srv, "alice", "alice-pw-1")
	expectBot(t, alice2, nick, "Finished deploy [svc@"+v2[:7]+"]", scale.D(90*time.Second))
	t.Logf("deploy finished %v after the restart", time.Since(restarted).Round(time.Millisecond))
	d.WantFleet("v2")

	// Every line the bot said, before the restart (the first client) and
	// after (the second, history included), once.
	lines := append(botLines(alice, nick), botLines(alice2, nick)...)
	want := []string{
		"alice: deploying svc " + v2[:7],
		"svc: canary 1/1 ok",
		"a 2/2 ok",
		"b 2/2 ok",
		"alice: Finished deploy [svc@" + v2[:7] + "]",
	}
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, w) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q arrived %d times; the bot said:\n%s", w, n, strings.Join(lines, "\n"))
		}
	}
	entries := salMessages(t, d.Dir)
	if countPrefix(entries, sal.SourceDeploy, "Started deploy [svc@"+v2[:7]+"]") != 1 || countPrefix(entries, sal.SourceDeploy, "Finished deploy [svc@"+v2[:7]+"]") != 1 {
		t.Fatalf("SAL entries: %+v", entries)
	}
	if n := strings.Count(b.Log.String(), `msg=connected `); n < 2 {
		t.Fatalf("the bot connected %d times, want a reconnect:\n%s", n, b.Log.String())
	}
	// The bot answers commands again.
	alice2.Say("#ops", "!status svc")
	expectBot(t, alice2, nick, "alice: svc: idle; live "+v2[:7], scale.D(20*time.Second))
}

// TestIRCBotKilledMidDeploy kills the bot (SIGKILL) in the middle of a
// deploy: the bot started again posts the interrupted deploy with the
// state of its hosts, and !rollback brings the fleet back.
func TestIRCBotKilledMidDeploy(t *testing.T) {
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(30*time.Second))
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick
	v1 := d.Revs["v1"]

	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", scale.D(60*time.Second))
	v2 := d.Commit("v2", 200)
	slowRestarts(d, v2)
	alice.Discard()
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "svc: canary 1/1 ok", scale.D(60*time.Second))
	time.Sleep(scale.D(500 * time.Millisecond)) // group a is restarting
	b.Cmd.Process.Kill()
	b.Cmd.Wait()
	alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(nick))

	alice.Discard()
	e.startBot(t, alice)
	posted := expectBot(t, alice, nick, "was interrupted", scale.D(30*time.Second))
	for _, w := range []string{"-svc-", "by alice of " + v2[:7] + " (from " + v1[:7] + ")", "canary: 1 on " + v2[:7], "a: 2 in flight (state unknown); b: 2 not reached", "!rollback svc puts them back on " + v1[:7], "!continue svc finishes the deploy of " + v2[:7]} {
		if !strings.Contains(posted, w) {
			t.Fatalf("posted %q, lacking %q", posted, w)
		}
	}
	alice.Say("#ops", "!status svc")
	st := expectBot(t, alice, nick, "an interrupted deploy waits: !rollback svc or !continue svc", scale.D(20*time.Second))
	// Hosts whose state is unknown are never reported at the starting
	// revision.
	if !strings.Contains(st, "per group: canary "+v2[:7]+", a ? (2 in flight), b "+v1[:7]) {
		t.Fatalf("status after the crash %q", st)
	}
	alice.Say("#ops", "!rollback svc")
	expectBot(t, alice, nick, "rolling back the interrupted deploy ", scale.D(30*time.Second))
	expectBot(t, alice, nick, "Rolled back svc to "+v1[:7], scale.D(60*time.Second))
	d.WantFleet("v1")
	// Nothing is left to recover.
	alice.Say("#ops", "!rollback svc")
	expectBot(t, alice, nick, "nothing to answer for svc", scale.D(20*time.Second))

	// Killed again mid-deploy; this time !continue finishes the deploy.
	b2 := e.bots[len(e.bots)-1]
	alice.Discard()
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "svc: canary 1/1 ok", scale.D(60*time.Second))
	time.Sleep(scale.D(500 * time.Millisecond))
	b2.Cmd.Process.Kill()
	b2.Cmd.Wait()
	alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(nick))
	e.startBot(t, alice)
	expectBot(t, alice, nick, "was interrupted", scale.D(30*time.Second))
	alice.Say("#ops", "!continue svc")
	expectBot(t, alice, nick, "Finished deploy [svc@"+v2[:7]+"]: resuming ", scale.D(60*time.Second))
	d.WantFleet("v2")
}

// TestIRCFloodProtection deploys to 30 hosts while four users send three
// !status requests each, on a server with InspIRCd's flood protection on
// and the bot's default pacing: the bot is never disconnected and answers
// every user. Three requests are within a sender's bound, so nobody is
// told to slow down; answers that describe the same state, or a state
// superseded by a newer answer while waiting, are sent once.
func TestIRCFloodProtection(t *testing.T) {
	groups := func(f *fleet.Fleet) string {
		var a, b []string
		for i := 1; i < 30; i++ {
			if i < 15 {
				a = append(a, fmt.Sprintf("%q", f.Hosts[i].IP))
			} else {
				b = append(b, fmt.Sprintf("%q", f.Hosts[i].IP))
			}
		}
		return fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%s], parallel: 14}
      - {name: b, hosts: [%s], parallel: 15}
`, f.Hosts[0].IP, strings.Join(a, ", "), strings.Join(b, ", "))
	}
	e := newIRCEnv(t, 30, groups, ircd.Options{FloodProtection: true}, "", scale.D(30*time.Second))
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick
	v1 := e.Revs["v1"]
	users := []*ircd.Client{alice}
	for _, n := range []string{"u1", "u2", "u3"} {
		users = append(users, ircd.DialT(t, e.srv.Addr, ircd.ClientOptions{Nick: n, Channels: []string{"#ops"}}))
	}

	alice.Say("#ops", "!deploy svc")
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for range 3 {
				u.Say("#ops", "!status svc")
				time.Sleep(scale.D(300 * time.Millisecond))
			}
		})
	}
	wg.Wait()
	expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", scale.D(3*time.Minute))
	e.WantFleet("v1")
	for _, u := range users {
		prefix := u.Nick() + ": svc: "
		answers := u.Collect(scale.D(10*time.Second), ircd.And(ircd.IsPrivmsgFrom(nick, "#ops"), ircd.TextHasPrefix(prefix)))
		if len(answers) == 0 {
			t.Errorf("%s got no answer to its !status", u.Nick())
		}
	}
	for _, l := range botLines(alice, nick) {
		if strings.Contains(l, "slow down") {
			t.Errorf("a user within the bound was told to slow down: %q", l)
		}
	}
	// The deploy itself: a handful of lines for 30 hosts, not one per host.
	var deployLines []string
	for _, l := range botLines(alice, nick) {
		if !strings.Contains(l, ": svc: ") {
			deployLines = append(deployLines, l)
		}
	}
	if len(deployLines) > 5 {
		t.Errorf("%d lines for the 30-host deploy:\n%s", len(deployLines), strings.Join(deployLines, "\n"))
	}
	log := b.Log.String()
	if n := strings.Count(log, `msg=connected `); n != 1 {
		t.Errorf("the bot connected %d times; it was disconnected:\n%s", n, log)
	}
	for _, bad := range []string{"Excess Flood", "Excess flood", "disconnected", "reconnect"} {
		if strings.Contains(log, bad) {
			t.Errorf("the bot's log mentions %q:\n%s", bad, log)
		}
	}
}
