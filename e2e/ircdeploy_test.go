package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// Deploys driven from IRC: the real bot binary over real InspIRCd + Anope,
// deploying to a real sshd fleet, with operators as raw IRC clients.

const ircBotPass = harness.BotPass

// ircEnv is a fleet and upstream (deployEnv), an IRC server, and the
// configuration of a bot deploying to the fleet from #ops.
type ircEnv struct {
	*deployEnv
	srv     *ircd.Server
	botNick string
	botConf string        // the configuration text
	bots    []*bot        // started by startBot, in order
	prompt  time.Duration // the services' prompt_timeout, scaled
}

// newIRCEnv starts a fleet of n hosts and an IRC server (opts), registers
// the bot's and the operators' accounts, and writes the bot's
// configuration; promptTimeout is the services' prompt_timeout.
func newIRCEnv(t *testing.T, n int, groups func(f *fleet.Fleet) string, opts ircd.Options, rate string, promptTimeout time.Duration) *ircEnv {
	t.Helper()
	harness.RequireTools(t)
	srv := ircd.StartT(t, opts)
	d := newDeployEnv(t, n, groups)
	e := &ircEnv{deployEnv: d, srv: srv, botNick: "deploybot", prompt: promptTimeout}
	for acct, pass := range map[string]string{e.botNick: ircBotPass, "alice": "alice-pw-1", "bob": "bob-pw-1", "eve": "eve-pw-1"} {
		if err := srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	e.botConf = harness.IRCConfig(t, d.Env, srv, e.botNick, rate, promptTimeout.String())
	return e
}

// startBot runs the bot and waits until client sees it in #ops.
func (e *ircEnv) startBot(t *testing.T, client *ircd.Client) *bot {
	t.Helper()
	b := startBot(t, e.botConf, map[string]string{})
	e.bots = append(e.bots, b)
	if _, err := client.Expect(scale.D(30*time.Second), inChannel(e.botNick, "#ops")); err != nil {
		t.Fatalf("the bot never joined #ops: %v\n%s", err, b.Log.String())
	}
	return b
}

// operator dials a client logged in to account (nick = account).
func (e *ircEnv) operator(t *testing.T, account, password string) *ircd.Client {
	t.Helper()
	return ircd.DialT(t, e.srv.Addr, ircd.ClientOptions{Nick: account, Account: account, Password: password, Channels: []string{"#ops"}})
}

// expectBot waits for the bot's next line in #ops containing substr and
// returns its text.
var expectBot = harness.ExpectBot

// botLines returns the bot's lines in #ops that c received so far.
var botLines = harness.BotLines

func salMessages(t *testing.T, dir string) []sal.Entry {
	t.Helper()
	// Deploy entries reach the log through the spool: wait until it is
	// drained.
	for deadline := time.Now().Add(scale.D(10 * time.Second)); ; time.Sleep(scale.D(20 * time.Millisecond)) {
		fi, err := os.Stat(filepath.Join(dir, "sal.db.spool"))
		if err != nil || fi.Size() == 0 || time.Now().After(deadline) {
			break
		}
	}
	store, err := sal.OpenSQLite(filepath.Join(dir, "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list, err := store.List(context.Background(), sal.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func countPrefix(entries []sal.Entry, source sal.Source, prefix string) int {
	n := 0
	for _, e := range entries {
		if e.Source == source && strings.HasPrefix(e.Message, prefix) {
			n++
		}
	}
	return n
}

func threeGroups(f *fleet.Fleet) string {
	h := func(i int) string { return f.Hosts[i].IP }
	return fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%q, %q], parallel: 2}
      - {name: b, hosts: [%q, %q], parallel: 2}
`, h(0), h(1), h(2), h(3), h(4))
}

var durationRE = regexp.MustCompile(`\(duration: \d\dm \d\ds\)$`)

// TestIRCDeployStory is an operator's session: !log, a deploy, a bad
// deploy whose canary fails and is rolled back on !rollback, a prompt left
// unanswered, a revert, !status; and users without the right refused.
func TestIRCDeployStory(t *testing.T) {
	e := newIRCEnv(t, 5, threeGroups, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(8*time.Second))
	d := e.deployEnv
	alice := e.operator(t, "alice", "alice-pw-1")
	b := e.startBot(t, alice)
	nick := e.botNick
	long := scale.D(60 * time.Second)

	// A second copy of the bot, configured the same (but for its
	// listeners), runs throughout and must do nothing: it never holds the
	// nick while the first one does.
	second := startBot(t, secondCopy(t, e.botConf), map[string]string{})
	waitLog(t, second, "another copy of the bot holds the primary nick; staying quiet")
	defer func() {
		for _, m := range alice.History() {
			if m.Command == "PRIVMSG" && !strings.EqualFold(m.Nick(), nick) && strings.HasPrefix(strings.ToLower(m.Nick()), nick) {
				t.Errorf("the second copy (%s) said %q", m.Nick(), ircd.Text(m))
			}
		}
		for _, bad := range []string{"deploy requested", "msg=logged", "refused"} {
			if strings.Contains(second.Log.String(), bad) {
				t.Errorf("the second copy acted (%q):\n%s", bad, second.Log.String())
			}
		}
	}()

	t.Run("log", func(t *testing.T) {
		alice.Say("#ops", "!log deploying svc soon")
		expectBot(t, alice, nick, "Logged the message at http://", scale.D(10*time.Second))
	})

	v2 := d.Commit("v2", 200)
	t.Run("deploy", func(t *testing.T) {
		alice.Say("#ops", "!deploy svc")
		start := expectBot(t, alice, nick, "alice: deploying svc ", long)
		// A first deploy names the newest subjects of its history.
		wantStart := fmt.Sprintf(`alice: deploying svc %s (first deploy: "release v2", "release v1"`, v2[:7])
		if !strings.HasPrefix(start, wantStart) || !strings.Contains(start, " on 5 hosts — log: http://") {
			t.Fatalf("start line %q, want prefix %q", start, wantStart)
		}
		canary := expectBot(t, alice, nick, "svc: canary", long)
		if !regexp.MustCompile(`^svc: canary 1/1 ok — port 18080 open in \S+, health GET /health 200 in \S+$`).MatchString(canary) {
			t.Fatalf("canary line %q", canary)
		}
		expectBot(t, alice, nick, "a 2/2 ok", long)
		fin := expectBot(t, alice, nick, "Finished deploy", long)
		if !strings.HasPrefix(fin, fmt.Sprintf("alice: Finished deploy [svc@%s]: release v2 (duration: ", v2[:7])) || !durationRE.MatchString(fin) {
			t.Fatalf("finish line %q", fin)
		}
		d.WantFleet("v2")
		entries := salMessages(t, d.Dir)
		// One name per person: the !log and the deploy entries carry the
		// same nick and account.
		for _, e := range entries {
			if (e.Source == sal.SourceIRC || e.Source == sal.SourceDeploy) && (e.Nick != "alice" || e.Account != "alice") {
				t.Errorf("%s entry %q: nick %q, account %q, want alice and alice", e.Source, e.Message, e.Nick, e.Account)
			}
		}
		if countPrefix(entries, sal.SourceDeploy, fmt.Sprintf("Started deploy [svc@%s]: release v2", v2[:7])) != 1 ||
			countPrefix(entries, sal.SourceDeploy, fmt.Sprintf("Finished deploy [svc@%s]: release v2 (duration: ", v2[:7])) != 1 {
			t.Fatalf("SAL entries: %+v", entries)
		}
		// Not one line per host: start, canary, groups, finish.
		if lines := botLines(alice, nick); len(lines) > 6 {
			t.Fatalf("%d lines for a 5-host deploy:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		// The posted log link serves the deploy: where every host ended
		// first, and every command and check at ?level=debug.
		link := regexp.MustCompile(`log: (\S+)`).FindStringSubmatch(start)[1]
		body := httpGet(t, link)
		if want := d.Fleet.Hosts[4].IP + ": done, switched to " + v2[:7]; !strings.Contains(strings.SplitN(body, "\n\n", 2)[0], want) {
			t.Fatalf("the deploy log at %s does not start with %q:\n%s", link, want, body)
		}
		body = httpGet(t, link+"?level=debug")
		for _, want := range []string{"promote", "health", d.Fleet.Hosts[4].IP} {
			if !strings.Contains(body, want) {
				t.Fatalf("the deploy log at %s?level=debug lacks %q:\n%s", link, want, body)
			}
		}
	})

	v3 := d.Commit("v3-bad", 500)
	t.Run("bad deploy rolled back on !rollback", func(t *testing.T) {
		alice.Say("#ops", "!deploy svc "+v3[:10]+" try v3")
		expectBot(t, alice, nick, "alice: deploying svc "+v2[:7]+".."+v3[:7], long)
		failed := expectBot(t, alice, nick, "svc: canary FAILED", long)
		if !strings.Contains(failed, "health GET /health 500") || !strings.Contains(failed, d.Fleet.Hosts[0].IP) {
			t.Fatalf("failure line %q", failed)
		}
		prompt := expectBot(t, alice, nick, "!rollback svc / !continue svc", scale.D(10*time.Second))
		if !strings.HasPrefix(prompt, "alice: roll back svc to "+v2[:7]+"?") || !strings.HasSuffix(prompt, "rolling back in "+promptWords(e.prompt)+" without an answer") {
			t.Fatalf("prompt %q", prompt)
		}
		alice.Say("#ops", "!rollback svc")
		expectBot(t, alice, nick, "svc: rolling back", scale.D(10*time.Second))
		fin := expectBot(t, alice, nick, "Rolled back svc to "+v2[:7], long)
		if !strings.HasPrefix(fin, "alice: Rolled back svc to "+v2[:7]+" (canary failed; 1 host restored;") {
			t.Fatalf("rollback line %q", fin)
		}
		d.WantFleet("v2")
		entries := salMessages(t, d.Dir)
		if countPrefix(entries, sal.SourceDeploy, fmt.Sprintf("FAILED deploy [svc@%s]: try v3 (canary failed on 1/1", v3[:7])) != 1 ||
			countPrefix(entries, sal.SourceDeploy, "Rolled back svc to "+v2[:7]) != 1 {
			t.Fatalf("SAL entries: %+v", entries)
		}
	})

	t.Run("prompt timeout rolls back", func(t *testing.T) {
		alice.Say("#ops", "!deploy svc "+v3)
		expectBot(t, alice, nick, "svc: canary FAILED", long)
		expectBot(t, alice, nick, "rolling back in "+promptWords(e.prompt)+" without an answer", scale.D(10*time.Second))
		expectBot(t, alice, nick, "svc: no answer in time — rolling back", e.prompt+scale.D(12*time.Second))
		expectBot(t, alice, nick, "Rolled back svc to "+v2[:7], long)
		d.WantFleet("v2")
	})

	t.Run("users without the right are refused", func(t *testing.T) {
		before := d.journals()
		// eve: logged in, but not a deployer. bob: a deployer's nick, not
		// logged in. carol: no account, and no hostmask rule matches.
		eve := ircd.DialT(t, e.srv.Addr, ircd.ClientOptions{Nick: "eve", Account: "eve", Password: "eve-pw-1", Channels: []string{"#ops"}})
		spoof := ircd.DialT(t, e.srv.Addr, ircd.ClientOptions{Nick: "bob", Channels: []string{"#ops"}})
		carol := ircd.DialT(t, e.srv.Addr, ircd.ClientOptions{Nick: "carol", Channels: []string{"#ops"}})
		for _, c := range []*ircd.Client{eve, spoof, carol} {
			for _, cmd := range []string{"!deploy svc", "!revert svc " + v2[:7], "!rollback svc", "!lock svc mine"} {
				c.Say("#ops", cmd)
				m, err := c.Expect(scale.D(15*time.Second), ircd.And(ircd.IsPrivmsgFrom(nick, "#ops"), ircd.TextHasPrefix(c.Nick()+": ")))
				if err != nil {
					t.Fatalf("%s %q: no answer: %v", c.Nick(), cmd, err)
				}
				if want := c.Nick() + ": you are not a deployer of svc"; !strings.HasPrefix(ircd.Text(m), want) {
					t.Fatalf("%s %q: answer %q, want %q…", c.Nick(), cmd, ircd.Text(m), want)
				}
			}
		}
		if after := d.journals(); after != before {
			t.Fatalf("a refused command ran a deploy: %d journals, then %d", before, after)
		}
		// The bot's log reaches the test through a pipe: the last line may
		// still be on its way when the last answer arrives.
		refusals := func() int { return strings.Count(b.Log.String(), "refused: not a deployer") }
		for deadline := time.Now().Add(scale.D(5 * time.Second)); refusals() < 12 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if n := refusals(); n < 12 {
			t.Fatalf("the bot's log holds %d refusals, want 12:\n%s", n, b.Log.String())
		}
	})

	v1 := d.Revs["v1"]
	t.Run("revert then status", func(t *testing.T) {
		alice.Say("#ops", "!revert svc "+v1[:7])
		start := expectBot(t, alice, nick, "alice: reverting svc "+v2[:7]+".."+v1[:7], long)
		if !strings.Contains(start, "revert to "+v1[:7]) {
			t.Fatalf("start line %q", start)
		}
		expectBot(t, alice, nick, "Finished deploy [svc@"+v1[:7]+"]", long)
		expectBot(t, alice, nick, "svc is locked (reverted by alice) until !unlock svc", scale.D(10*time.Second))
		d.WantFleet("v1")
		entries := salMessages(t, d.Dir)
		if countPrefix(entries, sal.SourceDeploy, "Started deploy [svc@"+v1[:7]+"]: revert to "+v1[:7]) != 1 ||
			countPrefix(entries, sal.SourceDeploy, "Finished deploy [svc@"+v1[:7]+"]: revert to "+v1[:7]+" (duration: ") != 1 {
			t.Fatalf("SAL entries of the revert: %+v", entries)
		}

		alice.Say("#ops", "!status svc")
		st := expectBot(t, alice, nick, "alice: svc: ", scale.D(10*time.Second))
		for _, want := range []string{"idle", "live " + v1[:7] + " (deployed by alice", "per group: canary " + v1[:7] + ", a " + v1[:7] + ", b " + v1[:7], "locked by alice since", "reverted by alice"} {
			if !strings.Contains(st, want) {
				t.Fatalf("status %q lacks %q", st, want)
			}
		}
		// Locked: a deploy is refused, naming who and why.
		alice.Say("#ops", "!deploy svc")
		refused := expectBot(t, alice, nick, "svc not deployed", scale.D(20*time.Second))
		if !strings.Contains(refused, "alice") || !strings.Contains(refused, "reverted by alice") {
			t.Fatalf("refusal %q", refused)
		}
		alice.Say("#ops", "!unlock svc")
		expectBot(t, alice, nick, "Unlocked svc", scale.D(10*time.Second))
		// Without a sha1, !revert takes the revision live before the
		// current one: v2.
		alice.Say("#ops", "!revert svc")
		expectBot(t, alice, nick, "alice: deploying svc "+v1[:7]+".."+v2[:7], long)
		expectBot(t, alice, nick, "Finished deploy [svc@"+v2[:7]+"]", long)
		expectBot(t, alice, nick, "svc is locked (reverted by alice)", scale.D(10*time.Second))
		d.WantFleet("v2")
	})

	t.Run("the CLI announces through the bot", func(t *testing.T) {
		alice.Say("#ops", "!unlock svc")
		expectBot(t, alice, nick, "Unlocked svc", scale.D(10*time.Second))
		v4 := d.Commit("v4", 200)
		code, out, errOut := d.CLI("", "deploy", svcName, "-m", "from the shell")
		if code != 0 {
			t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
		}
		expectBot(t, alice, nick, fmt.Sprintf("alice: deploying svc %s..%s (2 commits: ", v2[:7], v4[:7]), scale.D(30*time.Second))
		expectBot(t, alice, nick, "Finished deploy [svc@"+v4[:7]+"]: from the shell", scale.D(30*time.Second))
		entries := salMessages(t, d.Dir)
		if countPrefix(entries, sal.SourceDeploy, "Finished deploy [svc@"+v4[:7]+"]: from the shell") != 1 {
			t.Fatalf("SAL entries: %+v", entries)
		}

		// deploybot revert does what !revert does: the revision live
		// before (v2), the same channel lines and SAL entries, and the
		// lock.
		code, out, errOut = d.CLI("", "revert", svcName)
		if code != 0 || !strings.Contains(out, "svc is locked (reverted by alice) until 'deploybot unlock svc'") {
			t.Fatalf("revert: exit %d\n%s\n%s", code, out, errOut)
		}
		msg := fmt.Sprintf("revert %s to %s", v4[:7], v2[:7])
		start := expectBot(t, alice, nick, fmt.Sprintf("alice: reverting svc %s..%s (2 commits taken away: ", v4[:7], v2[:7]), scale.D(30*time.Second))
		if !strings.Contains(start, ": "+msg+" on 5 hosts") {
			t.Fatalf("start line %q", start)
		}
		expectBot(t, alice, nick, "Finished deploy [svc@"+v2[:7]+"]: "+msg, scale.D(30*time.Second))
		d.WantFleet("v2")
		entries = salMessages(t, d.Dir)
		if countPrefix(entries, sal.SourceDeploy, "Started deploy [svc@"+v2[:7]+"]: "+msg) != 1 ||
			countPrefix(entries, sal.SourceDeploy, "Finished deploy [svc@"+v2[:7]+"]: "+msg+" (duration: ") != 1 {
			t.Fatalf("SAL entries of the CLI revert: %+v", entries)
		}
		alice.Say("#ops", "!status svc")
		if st := expectBot(t, alice, nick, "alice: svc: ", scale.D(10*time.Second)); !strings.Contains(st, "locked by alice since") || !strings.Contains(st, "reverted by alice") {
			t.Fatalf("status after the CLI revert: %q", st)
		}
		code, out, errOut = d.CLI("", "deploy", svcName)
		if code == 0 || !strings.Contains(errOut, "reverted by alice") {
			t.Fatalf("deploy after the CLI revert: exit %d\n%s\n%s", code, out, errOut)
		}
	})
}

// secondCopy is conf with fresh addresses for the listeners, so a second
// bot can run on the same machine.
func secondCopy(t *testing.T, conf string) string {
	t.Helper()
	for _, key := range []string{"  relay_listen: ", "  listen: ", "  serve: "} {
		i := strings.Index(conf, key)
		if i < 0 {
			t.Fatalf("no %q in the configuration", key)
		}
		j := i + strings.IndexByte(conf[i:], '\n')
		conf = conf[:i] + key + freeAddr(t) + conf[j:]
	}
	return conf
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

var httpClient = &http.Client{Timeout: scale.D(10 * time.Second)}
