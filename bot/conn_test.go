package bot

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/config"
	"deploybot/e2e/scale"
)

func TestBackoffBounds(t *testing.T) {
	b := backoff{min: time.Second, max: 2 * time.Minute}
	base := time.Second
	for i := range 12 {
		d := b.next()
		if d < base/2 || d > base {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, base/2, base)
		}
		base = min(base*2, 2*time.Minute)
	}
	if base != 2*time.Minute {
		t.Fatalf("base never reached the cap: %v", base)
	}
	// At the cap the delay stays capped.
	for range 100 {
		if d := b.next(); d < time.Minute || d > 2*time.Minute {
			t.Fatalf("capped delay %v out of [1m, 2m]", d)
		}
	}
	b.reset()
	if d := b.next(); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("after reset: %v, want within [500ms, 1s]", d)
	}
}

// The jitter covers its range: delays from the same base differ, and
// reach both the lower and the upper quarter of [base/2, base].
func TestBackoffJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	low, high := false, false
	for range 200 {
		b := backoff{min: 8 * time.Second, max: time.Minute}
		d := b.next()
		seen[d] = true
		low = low || d < 5*time.Second
		high = high || d > 7*time.Second
	}
	if len(seen) < 100 || !low || !high {
		t.Fatalf("jitter: %d distinct delays, low quarter %t, high quarter %t", len(seen), low, high)
	}
	for range 200 {
		if d := jitter(5*time.Second, time.Second); d < 5*time.Second || d >= 6*time.Second {
			t.Fatalf("jitter(5s, 1s) = %v", d)
		}
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// linkBot returns a bot with a link but no network connection: what it
// sends fails quietly, what it decides shows in its log.
func linkBot(t *testing.T, sasl bool) (*Bot, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := &config.Config{IRC: config.IRC{Server: "127.0.0.1:1", Nick: "deploybot", Channels: []string{"#ops"}}}
	if sasl {
		cfg.IRC.SASL = &config.SASL{Account: "DeployBot"}
	}
	b := &Bot{cfg: cfg, log: slog.New(slog.NewTextHandler(logs, nil)), conn: &ircevent.Connection{}}
	b.link = newLink(b)
	t.Cleanup(b.link.shutdown)
	return b, logs
}

func parse(t *testing.T, line string) ircmsg.Message {
	t.Helper()
	m, err := ircmsg.ParseLine(line)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return m
}

// regain decides from the WHOIS of the primary nick exactly as designed.
func TestRegainDecision(t *testing.T) {
	cases := []struct {
		name       string
		sasl       bool
		heldBefore bool
		whois      []string
		want       string
	}{
		{"free", true, false, []string{":irc.test 401 deploybot_0 deploybot :No such nick", ":irc.test 318 deploybot_0 deploybot :End of /WHOIS list."}, "the primary nick is free"},
		{"impostor not logged in", true, false, []string{":irc.test 311 deploybot_0 deploybot u h * :r", ":irc.test 318 deploybot_0 deploybot :End"}, "an impostor holds the primary nick"},
		{"impostor other account", true, true, []string{":irc.test 311 deploybot_0 deploybot u h * :r", ":irc.test 330 deploybot_0 deploybot mallory :is logged in as", ":irc.test 318 deploybot_0 deploybot :End"}, "an impostor holds the primary nick"},
		{"own ghost", true, true, []string{":irc.test 311 deploybot_0 deploybot u h * :r", ":irc.test 330 deploybot_0 deploybot deploybot :is logged in as", ":irc.test 318 deploybot_0 deploybot :End"}, "ghost from its previous connection"},
		{"second copy", true, false, []string{":irc.test 311 deploybot_0 deploybot u h * :r", ":irc.test 330 deploybot_0 deploybot deploybot :is logged in as", ":irc.test 318 deploybot_0 deploybot :End"}, "another copy of the bot holds the primary nick"},
		{"no sasl", false, false, []string{":irc.test 311 deploybot_0 deploybot u h * :r", ":irc.test 318 deploybot_0 deploybot :End"}, "no services account to regain it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, logs := linkBot(t, c.sasl)
			b.link.heldBefore = c.heldBefore
			b.link.checkNick()
			for _, line := range c.whois {
				b.link.onWhois(parse(t, line))
			}
			if got := logs.String(); !strings.Contains(got, c.want) {
				t.Fatalf("log lacks %q:\n%s", c.want, got)
			}
			recovered := !b.link.lastRecover.IsZero()
			if wantRecover := strings.Contains(c.want, "impostor") || strings.Contains(c.want, "ghost"); recovered != wantRecover {
				t.Fatalf("RECOVER sent = %t, want %t", recovered, wantRecover)
			}
		})
	}
}

// A WHOIS reply nobody asked for, or about another nick, decides nothing.
func TestRegainIgnoresOtherWhois(t *testing.T) {
	b, logs := linkBot(t, true)
	b.link.onWhois(parse(t, ":irc.test 318 x deploybot :End"))
	b.link.checkNick()
	b.link.onWhois(parse(t, ":irc.test 318 x someoneelse :End"))
	if logs.String() != "" {
		t.Fatalf("logged:\n%s", logs.String())
	}
}

// Being recovered away by NickServ means the nick is not this process's
// to claim back on its next connection.
func TestYieldedNickIsNotClaimedBack(t *testing.T) {
	b, _ := linkBot(t, true)
	b.link.held = true
	b.link.onDisconnect(ircmsg.Message{})
	if !b.link.heldBefore {
		t.Fatal("held before a plain disconnect: heldBefore false")
	}
	b.link.held = true
	b.link.onNotice(parse(t, ":NickServ!services@services.test NOTICE deploybot :This nickname has been recovered by deploybot_0."))
	b.link.onDisconnect(ircmsg.Message{})
	if b.link.heldBefore {
		t.Fatal("heldBefore true after NickServ recovered the nick from us")
	}
}

// onNick follows the bot's own nick and nobody else's.
func TestOwnNickTransitions(t *testing.T) {
	b, logs := linkBot(t, true)
	b.link.nick = "deploybot_0"
	b.link.onNick(parse(t, ":alice!a@h NICK :deploybot"))
	if b.link.held || b.link.nick != "deploybot_0" {
		t.Fatalf("another user's NICK changed the bot's: %+v", b.link.nick)
	}
	b.link.onNick(parse(t, ":deploybot_0!u@h NICK :deploybot"))
	if !b.link.held || b.link.nick != "deploybot" {
		t.Fatalf("after own NICK: held %t nick %q", b.link.held, b.link.nick)
	}
	b.link.onNick(parse(t, ":deploybot!u@h NICK :Guest123"))
	if b.link.held {
		t.Fatal("still holding after NICK to Guest123")
	}
	for _, want := range []string{"from=deploybot_0 to=deploybot", "holding the primary nick", "lost the primary nick"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// A failed dial waits a backoff delay and logs it; the next failure waits
// longer.
func TestDialFailureBacksOff(t *testing.T) {
	b, logs := linkBot(t, false)
	b.link.reconnect = backoff{min: 20 * time.Millisecond, max: time.Second}
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if _, err := b.link.dial(t.Context(), "tcp", "127.0.0.1:1"); err == nil {
			t.Fatal("dial to port 1 succeeded")
		}
		took = append(took, time.Since(start))
	}
	if took[0] < 10*time.Millisecond || took[2] < 40*time.Millisecond {
		t.Fatalf("waits %v: want >= 10ms, then >= 40ms on the third", took)
	}
	if n := strings.Count(logs.String(), "IRC connection failed; retrying"); n != 3 {
		t.Fatalf("%d retry log lines, want 3:\n%s", n, logs.String())
	}
	// After shutdown nothing waits.
	b.link.reconnect = backoff{min: time.Hour, max: time.Hour}
	b.link.shutdown()
	start := time.Now()
	b.link.dial(t.Context(), "tcp", "127.0.0.1:1")
	if time.Since(start) > scale.D(time.Second) {
		t.Fatal("dial waited after shutdown")
	}
}
