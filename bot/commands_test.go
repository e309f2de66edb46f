package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"deploybot/config"
	"deploybot/sal"
)

// fakeWire records what the bot sends, for fast tests of the command table.
// The end-to-end tests in e2e/ run the same paths against a real server.
type fakeWire struct {
	mu    sync.Mutex
	lines []string
}

func (w *fakeWire) CanSend(string) bool { return true }
func (w *fakeWire) Privmsg(target, text string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, target+" "+text)
	return nil
}

func (w *fakeWire) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.lines
	w.lines = nil
	return out
}

const testConfig = `
irc:
  server: 127.0.0.1:6667
  nick: deploybot
  channels: ["#ops", "#chatter"]
  relays: [logmsgbot]
  relay_hostmasks: ["*!*@relay.example.org"]
sal:
  database: sal.db
  public_url: https://sal.example.org
  projects: {"#ops": production}
deploy:
  journal_dir: deploys
  ssh: {user: deploy, key_file: ssh/id, known_hosts: ssh/known_hosts}
access:
  deployers:
    accounts: [alice]
    hostmasks: ["*!*@wikimedia/ops/*", "carol!~carol@10.0.0.?"]
services:
  citoid:
    repo: citoid/deploy
    upstream: https://example.org/citoid.git
    target_dir: /srv/deployment/citoid/deploy
    canary: [scb1001]
    groups:
      - {name: eqiad, hosts: [scb1002, scb1003]}
    deployers:
      accounts: [dave]
      hostmasks: ["*!*@cloak/citoid/*"]
  mathoid:
    repo: mathoid/deploy
    upstream: https://example.org/mathoid.git
    target_dir: /srv/deployment/mathoid/deploy
    canary: [scb1001]
`

func newTestBot(t testing.TB) (*Bot, *fakeWire, sal.Store) {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sal.OpenSQLite(filepath.Join(t.TempDir(), "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b, err := New(cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWire{}
	b.out.w = w
	return b, w, store
}

// run dispatches one message and sends what it produced.
func (b *Bot) runLine(t *testing.T, w *fakeWire, nick, account, target, text string) []string {
	t.Helper()
	r := &request{nick: nick, user: "u", host: "h", account: account}
	if strings.HasPrefix(target, "#") {
		r.channel, r.replyTo = target, target
	} else {
		r.replyTo = nick
	}
	if !parseCommand(b.cfg.IRC.Prefix, text, r) {
		return nil
	}
	b.dispatch(context.Background(), r)
	var out []string
	b.out.drainTo(w)
	out = w.take()
	return out
}

func TestLogCommand(t *testing.T) {
	b, w, store := newTestBot(t)
	ctx := context.Background()

	got := b.runLine(t, w, "alice", "alice", "#ops", "!log restarted \x02citoid\x02")
	entries, _ := store.List(ctx, sal.Query{})
	if len(entries) != 1 {
		t.Fatalf("entries = %+v", entries)
	}
	e := entries[0]
	want := fmt.Sprintf("#ops Logged the message at https://sal.example.org/log/%d", e.ID)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("reply = %q, want %q", got, want)
	}
	if e.Nick != "alice" || e.Account != "alice" || e.Channel != "#ops" || e.Project != "production" || e.Message != "restarted citoid" || e.Source != sal.SourceIRC {
		t.Fatalf("entry = %+v", e)
	}

	for _, text := range []string{"!log", "!log   ", "!log \x02\x02"} {
		got = b.runLine(t, w, "alice", "", "#ops", text)
		if len(got) != 1 || got[0] != "#ops alice: Message missing. Nothing logged." {
			t.Fatalf("%q: reply = %q", text, got)
		}
	}

	got = b.runLine(t, w, "alice", "", "#chatter", "!log not here")
	if len(got) != 1 || !strings.Contains(got[0], "works only in a channel with a Server Admin Log: #ops") {
		t.Fatalf("reply in non-SAL channel = %q", got)
	}
	got = b.runLine(t, w, "alice", "", "alice", "!log in private")
	if len(got) != 1 || !strings.HasPrefix(got[0], "alice !log works only") {
		t.Fatalf("reply in private = %q", got)
	}
	if n, _ := store.List(ctx, sal.Query{}); len(n) != 1 {
		t.Fatalf("refused lines were logged: %+v", n)
	}
}

// A relay is known by its services account or its hostmask, never by its
// nick: somebody without an account who took the relay's nick logs as
// themselves. A relayed entry records who really sent it.
func TestLogRelayAttribution(t *testing.T) {
	b, w, store := newTestBot(t)
	b.accountTags = true
	ctx := context.Background()
	const line = "!log ops1@deploy1001 restarted citoid"
	cases := []struct {
		name                      string
		tags                      bool
		nick, user, host, account string
		text                      string
		wantNick, wantMsg         string
		wantSource                sal.Source
		wantSender, wantAccount   string
	}{
		{"relay by account", true, "LogMsgBot", "lmb", "wikimedia/bot", "logmsgbot", line,
			"ops1@deploy1001", "restarted citoid", sal.SourceRelay, "LogMsgBot!lmb@wikimedia/bot (logmsgbot)", ""},
		{"somebody else", true, "mallory", "m", "h", "mallory", line,
			"mallory", "ops1@deploy1001 restarted citoid", sal.SourceIRC, "", "mallory"},
		{"the relay's nick without an account", true, "logmsgbot", "lmb", "evil.example.net", "", line,
			"logmsgbot", "ops1@deploy1001 restarted citoid", sal.SourceIRC, "", ""},
		{"the relay's nick, another account", true, "logmsgbot", "lmb", "evil.example.net", "mallory", line,
			"logmsgbot", "ops1@deploy1001 restarted citoid", sal.SourceIRC, "", "mallory"},
		{"the relay's account without account-tag", false, "logmsgbot", "lmb", "evil.example.net", "logmsgbot", line,
			"logmsgbot", "ops1@deploy1001 restarted citoid", sal.SourceIRC, "", "logmsgbot"},
		{"relay by hostmask", true, "tcpbot", "t", "relay.example.org", "", line,
			"ops1@deploy1001", "restarted citoid", sal.SourceRelay, "tcpbot!t@relay.example.org", ""},
		{"relay without user@host", true, "logmsgbot", "lmb", "wikimedia/bot", "logmsgbot", "!log no-attribution here",
			"logmsgbot", "no-attribution here", sal.SourceIRC, "", "logmsgbot"},
	}
	for _, c := range cases {
		b.accountTags = c.tags
		r := &request{nick: c.nick, user: c.user, host: c.host, account: c.account, channel: "#ops", replyTo: "#ops"}
		if !parseCommand(b.cfg.IRC.Prefix, c.text, r) {
			t.Fatalf("%s: %q is no command", c.name, c.text)
		}
		b.dispatch(ctx, r)
		b.out.drainTo(w)
		w.take()
		es, err := store.List(ctx, sal.Query{Limit: 1})
		if err != nil || len(es) != 1 {
			t.Fatalf("%s: entries %+v, %v", c.name, es, err)
		}
		e := es[0]
		if e.Nick != c.wantNick || e.Message != c.wantMsg || e.Source != c.wantSource || e.Sender != c.wantSender || e.Account != c.wantAccount {
			t.Errorf("%s: entry %+v\nwant nick %q msg %q source %q sender %q account %q",
				c.name, e, c.wantNick, c.wantMsg, c.wantSource, c.wantSender, c.wantAccount)
		}
	}
}

func TestHelpAndUnknown(t *testing.T) {
	b, w, _ := newTestBot(t)
	got := b.runLine(t, w, "bob", "", "#chatter", "!help")
	if len(got) != 1 || !strings.Contains(got[0], "!help") || !strings.Contains(got[0], "!log") {
		t.Fatalf("help = %q", got)
	}
	got = b.runLine(t, w, "bob", "", "#chatter", "!help log")
	if len(got) != 1 || !strings.Contains(got[0], "!log <message>") {
		t.Fatalf("help log = %q", got)
	}
	got = b.runLine(t, w, "bob", "", "#chatter", "!frobnicate now")
	if len(got) != 1 || !strings.Contains(got[0], "unknown command !frobnicate") {
		t.Fatalf("unknown = %q", got)
	}
	if got := b.runLine(t, w, "bob", "", "#chatter", "just chatting"); got != nil {
		t.Fatalf("chatter answered: %q", got)
	}
}

func TestParseCommand(t *testing.T) {
	var r request
	if parseCommand("!", "! log x", &r) || parseCommand("!", "log x", &r) || parseCommand("!", "!", &r) {
		t.Fatal("non-commands parsed")
	}
	if !parseCommand("!", "!LOG  a  b ", &r) || r.name != "log" || r.rest != "a  b" || len(r.args) != 2 {
		t.Fatalf("parsed %+v", r)
	}
}

// drainTo sends every queued line to w at once, unpaced, in the order
// the sender would send them.
func (s *sender) drainTo(w wire) {
	for {
		l, ok := s.take()
		if !ok {
			return
		}
		w.Privmsg(l.target, l.text)
	}
}

// An answer given as a function says what holds when it goes out, and
// addresses its asker in a channel; a newer one replaces it while it
// waits, and another asker's is left alone.
func TestReplyFuncComputedWhenSent(t *testing.T) {
	b, w, _ := newTestBot(t)
	state := "idle"
	for _, nick := range []string{"bob", "bob", "carol"} {
		r := &request{nick: nick, user: "u", host: "h", channel: "#ops", replyTo: "#ops"}
		b.replyFunc(r, "status:citoid", func() string { return "citoid: " + state })
	}
	private := &request{nick: "dan", user: "u", host: "h", replyTo: "dan"}
	b.replyFunc(private, "status:citoid", func() string { return "citoid: " + state })
	state = "deploying"
	b.out.drainTo(w)
	got := strings.Join(w.take(), "|")
	if got != "#ops bob: citoid: deploying|#ops carol: citoid: deploying|dan citoid: deploying" {
		t.Fatalf("sent %q", got)
	}
}
