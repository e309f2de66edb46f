package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

const floodConfig = `
irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["#ops"]
sal:
  database: sal.db
  listen: %s
  projects: {"#ops": production}
access:
  deployers:
    accounts: [alice]
`

// TestIRCFloodFromUserWithoutAccount: a user without an account sends 60
// !status in a burst in the channel and 60 in private, on a server with
// InspIRCd's flood protection on (which lets them through at about one a
// second) and the bot's default pacing. A deployer's !log, sent at the
// start of the flood and in its middle, is acknowledged within 10 s each
// time; the flooder gets a handful of lines in all, one of them telling it
// to slow down; the bot is never disconnected.
func TestIRCFloodFromUserWithoutAccount(t *testing.T) {
	srv := ircd.StartT(t, ircd.Options{FloodProtection: true})
	const botNick, botPass = "floodbot", "bot-secret-1"
	for acct, pass := range map[string]string{botNick: botPass, "alice": "alice-pw-1"} {
		if err := srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	b := startBot(t, fmt.Sprintf(floodConfig, srv.Addr, botNick, botNick, freeAddr(t)), map[string]string{"sasl.secret": botPass + "\n"})
	cs := ircd.DialAllT(t, srv.Addr,
		ircd.ClientOptions{Nick: "alice", Account: "alice", Password: "alice-pw-1", Channels: []string{"#ops"}},
		ircd.ClientOptions{Nick: "mallory", Channels: []string{"#ops"}})
	alice, mallory := cs[0], cs[1]
	if _, err := alice.Expect(scale.D(30*time.Second), inChannel(botNick, "#ops")); err != nil {
		t.Fatalf("the bot never joined #ops: %v\n%s", err, b.Log.String())
	}
	// The bot answers mallory before the flood: mallory is heard.
	mallory.Say("#ops", "!help")
	if _, err := mallory.Expect(scale.D(10*time.Second), ircd.And(ircd.IsPrivmsgFrom(botNick, "#ops"), ircd.TextHasPrefix("mallory: commands:"))); err != nil {
		t.Fatal(err)
	}
	// Let mallory's flood allowance at the server, and its backlog at the
	// bot, clear.
	time.Sleep(scale.D(6 * time.Second))
	before := len(mallory.History())

	logged := func(what string) {
		t.Helper()
		start := time.Now()
		alice.Say("#ops", "!log "+what)
		if _, err := alice.Expect(scale.D(10*time.Second), ircd.And(ircd.IsPrivmsgFrom(botNick, "#ops"), ircd.TextHasPrefix("Logged the message at "))); err != nil {
			t.Fatalf("alice's !log %s was not acknowledged within 10 s: %v", what, err)
		}
		t.Logf("alice's !log %s acknowledged in %v", what, time.Since(start).Round(time.Millisecond))
	}

	var burst []string
	for range 60 {
		burst = append(burst, "PRIVMSG #ops :!status")
	}
	for range 60 {
		burst = append(burst, "PRIVMSG "+botNick+" :!status")
	}
	floodStart := time.Now()
	if err := mallory.Raw(strings.Join(burst, "\r\n")); err != nil {
		t.Fatal(err)
	}
	logged("at the start of the flood")
	time.Sleep(scale.D(20 * time.Second))
	logged("in the middle of the flood")

	// The server passes mallory's lines on in order: once it answers a
	// PING sent after them, the bot has them all.
	if err := mallory.Sync(scale.D(4 * time.Minute)); err != nil {
		t.Fatalf("mallory's flood never got through the server: %v", err)
	}
	t.Logf("the server passed the flood on in %v", time.Since(floodStart).Round(time.Second))
	mallory.Collect(scale.D(10*time.Second), nil) // what the bot still had to say

	toMallory := func(m ircmsg.Message) bool {
		if ircd.IsPrivmsgFrom(botNick, "mallory")(m) {
			return true
		}
		text := ircd.Text(m)
		return ircd.IsPrivmsgFrom(botNick, "#ops")(m) && (strings.HasPrefix(text, "mallory:") || strings.HasSuffix(text, "dropped)"))
	}
	var got []string
	slow := 0
	for _, m := range mallory.History()[before:] {
		if toMallory(m) {
			got = append(got, m.Params[0]+" "+ircd.Text(m))
			if strings.Contains(ircd.Text(m), "slow down") {
				slow++
			}
		}
	}
	t.Logf("mallory got %d lines:\n%s", len(got), strings.Join(got, "\n"))
	if len(got) < 2 || len(got) > 6 || slow != 1 {
		t.Errorf("mallory got %d lines (%d telling it to slow down); want a few answers and one slow-down line, at most 6 in all", len(got), slow)
	}

	// The bot is still there and answers at once.
	logged("after the flood")
	log := b.Log.String()
	if n := strings.Count(log, `msg=connected `); n != 1 {
		t.Errorf("the bot connected %d times; it was disconnected:\n%s", n, log)
	}
	for _, bad := range []string{"Excess Flood", "Excess flood", "connection lost", "reconnect"} {
		if strings.Contains(log, bad) {
			t.Errorf("the bot's log mentions %q:\n%s", bad, log)
		}
	}
}
