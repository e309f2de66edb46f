package faults

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/deployer/journal"
	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// binary is the deploybot binary built for this run.
var binary string

// shared is the package's one IRC server; each case has its own bot nick
// and channel on it.
var shared harness.SharedServer

func TestMain(m *testing.M) { harness.Main(m, &binary, &shared) }

// registered are the services accounts registered on the shared server.
var registered struct {
	sync.Mutex
	done map[string]bool
}

func register(t *testing.T, srv *ircd.Server, account, password string) {
	t.Helper()
	registered.Lock()
	defer registered.Unlock()
	if registered.done == nil {
		registered.done = map[string]bool{}
	}
	if registered.done[account] {
		return
	}
	if err := srv.Register(account, password); err != nil {
		t.Fatalf("register %s: %v", account, err)
	}
	registered.done[account] = true
}

// env is one case's fleet, upstream, bot configuration, channel and
// operator (alice, a deployer).
type env struct {
	*harness.Env
	t     *testing.T
	top   *testing.T // what the bots live as long as: the case, not a step of it
	srv   *ircd.Server
	nick  string // the bot's
	ch    string // the case's channel
	conf  string // the bot's configuration text
	alice *ircd.Client
	bot   *harness.Bot // the running one
}

// canaryAndA is a canary and one group "a" of the other hosts, all at once.
func canaryAndA(f *fleet.Fleet) string {
	var a []string
	for _, h := range f.Hosts[1:] {
		a = append(a, fmt.Sprintf("%q", h.IP))
	}
	return fmt.Sprintf(`
    canary: [%q]
    groups:
      - {name: a, hosts: [%s], parallel: %d}
`, f.Hosts[0].IP, strings.Join(a, ", "), len(a))
}

// newEnv starts n hosts (canary and group a), and writes the
// configuration of a bot called nick that deploys from channel #name.
func newEnv(t *testing.T, name string, n int, promptTimeout string) *env {
	t.Helper()
	srv := shared.Get(t)
	d := harness.NewEnv(t, binary, n, canaryAndA)
	e := &env{Env: d, t: t, top: t, srv: srv, nick: "fb-" + name, ch: "#f-" + name}
	register(t, srv, e.nick, harness.BotPass)
	register(t, srv, "alice", "alice-pw-1")
	conf := harness.IRCConfig(t, d, srv, e.nick, "  rate: {per_second: 5, burst: 10}\n", promptTimeout)
	e.conf = strings.ReplaceAll(conf, `"#ops"`, `"`+e.ch+`"`)
	if err := os.WriteFile(d.Config, []byte(e.conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.alice = ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "a-" + name, Account: "alice", Password: "alice-pw-1", Channels: []string{e.ch}})
	return e
}

// startBot runs the bot and waits until it is in the channel.
func (e *env) startBot() *harness.Bot {
	e.t.Helper()
	e.bot = harness.StartBot(e.top, binary, e.conf, map[string]string{})
	if _, err := e.alice.Expect(scale.D(30*time.Second), harness.InChannel(e.nick, e.ch)); err != nil {
		e.t.Fatalf("the bot never joined %s: %v\n%s", e.ch, err, e.bot.Log.String())
	}
	return e.bot
}

// kill SIGKILLs the running bot and waits until the channel sees it quit.
func (e *env) kill() {
	e.t.Helper()
	e.bot.Kill()
	if _, err := e.alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(e.nick)); err != nil {
		e.t.Fatalf("the killed bot never quit: %v", err)
	}
}

// say sends text to the case's channel as alice.
func (e *env) say(text string) { e.alice.Say(e.ch, text) }

// expect waits for the bot's next line in the channel containing substr.
func (e *env) expect(substr string, timeout time.Duration) string {
	e.t.Helper()
	m, err := e.alice.Expect(scale.D(timeout), ircd.And(ircd.IsPrivmsgFrom(e.nick, e.ch), ircd.TextContains(substr)))
	if err != nil {
		e.t.Fatalf("no line from the bot containing %q: %v\nthe bot said:\n%s", substr, err, strings.Join(e.lines(), "\n"))
	}
	return ircd.Text(m)
}

// lines is every line the bot said in the channel so far.
func (e *env) lines() []string {
	var out []string
	for _, m := range e.alice.History() {
		if ircd.IsPrivmsgFrom(e.nick, e.ch)(m) {
			out = append(out, ircd.Text(m))
		}
	}
	return out
}

// deploy deploys rev (a label's sha) with !deploy and waits for the finish
// line.
func (e *env) deploy(label string) {
	e.t.Helper()
	sha := e.Revs[label]
	e.say("!deploy svc " + sha[:7])
	e.expect("Finished deploy [svc@"+sha[:7]+"]", 60*time.Second)
}

// journals is the service's journals, newest first.
func (e *env) journals() []journal.Summary {
	e.t.Helper()
	l, err := journal.List(e.Cfg.Deploy.JournalDir, harness.SvcName)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// latest reads the newest journal.
func (e *env) latest() *journal.Deploy {
	e.t.Helper()
	p, err := journal.Latest(e.Cfg.Deploy.JournalDir, harness.SvcName)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := journal.Read(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// wantUnlocked checks that no deploy holds the service's lock.
func (e *env) wantUnlocked() {
	e.t.Helper()
	if h, err := journal.Running(e.Cfg.Deploy.JournalDir, harness.SvcName); err != nil || h != nil {
		e.t.Errorf("the deploy lock is held: %+v %v", h, err)
	}
}
