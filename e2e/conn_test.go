package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// connConfig is a bot on server with nick (and SASL account) nick in one
// channel, fast enough to answer at once.
const connConfig = `
irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["%s"]
  rate: {per_second: 20, burst: 20}
sal:
  database: sal.db
`

// startConnBot registers nick with services (unless it exists) and starts
// a bot with that nick and account in channel.
func startConnBot(t *testing.T, srv *ircd.Server, nick, channel string) *bot {
	t.Helper()
	pass := nick + "-secret-1"
	if err := srv.Register(nick, pass); err != nil {
		t.Fatalf("register %s: %v", nick, err)
	}
	return startBot(t, fmt.Sprintf(connConfig, srv.Addr, nick, nick, channel), map[string]string{"sasl.secret": pass + "\n"})
}

// expectHelp says !help in channel and waits for the bot's answer.
func expectHelp(t *testing.T, c *ircd.Client, botNick, channel string, b *bot) {
	t.Helper()
	c.Say(channel, "!help")
	if _, err := c.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(botNick, channel)); err != nil {
		t.Fatalf("no answer to !help from %s: %v\n%s", botNick, err, b.Log.String())
	}
}

// waitLogCount waits until the bot's log contains substr n times.
func waitLogCount(t *testing.T, b *bot, substr string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(b.Log.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the bot logged %q %d times, want %d:\n%s", substr, strings.Count(b.Log.String(), substr), n, b.Log.String())
		}
		time.Sleep(scale.D(50 * time.Millisecond))
	}
}

// A channel operator kicks the bot: it rejoins within seconds and serves
// the channel again.
func TestConnRejoinAfterKick(t *testing.T) {
	srv := shared.Get(t)
	const nick, channel = "kickbot", "#kick"
	// The first to join a channel is its operator.
	op := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "kickop", Channels: []string{channel}})
	b := startConnBot(t, srv, nick, channel)
	if _, err := op.Expect(scale.D(30*time.Second), inChannel(nick, channel)); err != nil {
		t.Fatalf("the bot never joined: %v\n%s", err, b.Log.String())
	}
	op.Raw("KICK " + channel + " " + nick + " :out you go")
	if _, err := op.Expect(scale.D(5*time.Second), ircd.IsCommand("KICK")); err != nil {
		t.Fatalf("KICK not seen: %v", err)
	}
	kicked := time.Now()
	if _, err := op.Expect(scale.D(10*time.Second), ircd.IsJoinOf(nick, channel)); err != nil {
		t.Fatalf("the bot did not rejoin within 10s: %v\n%s", err, b.Log.String())
	}
	if d := time.Since(kicked); d < 4*time.Second {
		t.Fatalf("rejoined after %v: the bot should wait about 5s", d)
	}
	waitLog(t, b, `msg="kicked from a channel; rejoining" channel=#kick by=kickop reason="out you go"`)
	expectHelp(t, op, nick, channel, b)
}

// Banned, the kicked bot's rejoin is refused (474): it logs that and keeps
// retrying with backoff, and gets back in once the ban is lifted.
func TestConnRejoinRetriesWhileBanned(t *testing.T) {
	srv := shared.Get(t)
	const nick, channel = "banbot", "#banned"
	op := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "banop", Channels: []string{channel}})
	b := startConnBot(t, srv, nick, channel)
	if _, err := op.Expect(scale.D(30*time.Second), inChannel(nick, channel)); err != nil {
		t.Fatalf("the bot never joined: %v\n%s", err, b.Log.String())
	}
	op.Raw("MODE " + channel + " +b " + nick + "!*@*")
	op.Raw("KICK " + channel + " " + nick + " :banned")
	waitLogCount(t, b, `msg="cannot join a channel; retrying" channel=#banned numeric=474`, 1, scale.D(15*time.Second))
	op.Raw("MODE " + channel + " -b " + nick + "!*@*")
	if _, err := op.Expect(scale.D(15*time.Second), ircd.IsJoinOf(nick, channel)); err != nil {
		t.Fatalf("the bot did not rejoin after the ban was lifted: %v\n%s", err, b.Log.String())
	}
	expectHelp(t, op, nick, channel, b)
}

var retryRE = regexp.MustCompile(`msg="IRC connection (?:lost; reconnecting|failed; retrying)".* retry_in=(\S+)`)

// The server goes away for a while: the bot retries with growing delays,
// logging each, and serves again once the server is back.
func TestConnReconnectBackoff(t *testing.T) {
	srv := ircd.StartT(t, ircd.Options{})
	const nick, channel = "backbot", "#back"
	b := startConnBot(t, srv, nick, channel)
	waitLog(t, b, "holding the primary nick")
	waitLog(t, b, `msg="channel members" channel=#back`)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// One "lost" and at least three refused attempts: delays in about
	// [0.5,1], [1,2], [2,4], [4,8] seconds.
	waitLogCount(t, b, "retry_in=", 4, scale.D(20*time.Second))
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	for _, m := range retryRE.FindAllStringSubmatch(b.Log.String(), -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("retry_in=%s: %v", m[1], err)
		}
		delays = append(delays, d)
	}
	if len(delays) < 4 {
		t.Fatalf("retry delays %v, want at least 4:\n%s", delays, b.Log.String())
	}
	for i := 1; i < 4; i++ {
		if delays[i] < delays[i-1] {
			t.Fatalf("retry delays %v do not grow", delays)
		}
	}
	if delays[0] > time.Second || delays[3] < 4*time.Second || delays[3] > 8*time.Second {
		t.Fatalf("retry delays %v: want the first within 1s and the fourth within [4s, 8s]", delays)
	}
	waitLogCount(t, b, "msg=connected", 2, scale.D(30*time.Second))
	c := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "backuser", Channels: []string{channel}})
	if _, err := c.Expect(scale.D(15*time.Second), inChannel(nick, channel)); err != nil {
		t.Fatalf("the bot is not back in %s: %v\n%s", channel, err, b.Log.String())
	}
	expectHelp(t, c, nick, channel, b)
}

// Someone not logged in takes the bot's nick before it starts: the bot,
// logged in to the account that owns the nick, has NickServ recover it and
// then serves under it.
func TestConnRegainNickFromImpostor(t *testing.T) {
	srv := shared.Get(t)
	const nick, channel = "impbot", "#imp"
	pass := nick + "-secret-1"
	if err := srv.Register(nick, pass); err != nil {
		t.Fatal(err)
	}
	impostor := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: nick, Channels: []string{channel}})
	b := startBot(t, fmt.Sprintf(connConfig, srv.Addr, nick, nick, channel), map[string]string{"sasl.secret": pass + "\n"})
	waitLog(t, b, `msg="an impostor holds the primary nick; asking NickServ to recover it" nick=impbot holder_account=(none)`)
	// The bot ends up with the nick (NICK seen by the channel).
	if _, err := impostor.Expect(scale.D(20*time.Second), func(m ircmsg.Message) bool {
		return m.Command == "NICK" && len(m.Params) > 0 && strings.EqualFold(m.Params[0], nick) && !strings.EqualFold(m.Nick(), impostor.Nick())
	}); err != nil {
		t.Fatalf("the bot never took its nick: %v\n%s", err, b.Log.String())
	}
	waitLog(t, b, "holding the primary nick; acting on commands")
	if strings.EqualFold(impostor.Nick(), nick) {
		t.Fatalf("the impostor still has %s", nick)
	}
	expectHelp(t, impostor, nick, channel, b)
}

// Members already in the channel when the bot joins are learnt with WHOX,
// accounts included.
func TestConnMemberAccountsFromWHOX(t *testing.T) {
	srv := ircd.StartT(t, ircd.Options{})
	const nick, channel = "membot", "#mem"
	if err := srv.Register("dora", "dora-pw-1"); err != nil {
		t.Fatal(err)
	}
	ircd.DialAllT(t, srv.Addr,
		ircd.ClientOptions{Nick: "dora", Account: "dora", Password: "dora-pw-1", Channels: []string{channel}},
		ircd.ClientOptions{Nick: "eve", Channels: []string{channel}},
	)
	b := startConnBot(t, srv, nick, channel)
	// dora (logged in), eve (not) and the bot (logged in).
	waitLog(t, b, `msg="channel members" channel=#mem members=3 accounts=2`)
}

// A second copy of the bot, logged in to the same account, leaves the
// first copy alone, and takes the nick (and starts serving) as soon as the
// first copy stops.
func TestConnSecondCopyTakesOverWhenFirstStops(t *testing.T) {
	srv := shared.Get(t)
	const nick, channel = "twinbot", "#twin"
	first := startConnBot(t, srv, nick, channel)
	waitLog(t, first, "holding the primary nick")
	pass := nick + "-secret-1"
	second := startBot(t, fmt.Sprintf(connConfig, srv.Addr, nick, nick, channel), map[string]string{"sasl.secret": pass + "\n"})
	waitLog(t, second, `msg="another copy of the bot holds the primary nick; staying quiet until it leaves" nick=twinbot holder_account=twinbot`)
	c := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "twinuser", Channels: []string{channel}})
	if _, err := c.Expect(scale.D(10*time.Second), inChannel("twinbot_0", channel)); err != nil {
		t.Fatalf("the second copy is not in %s: %v\n%s", channel, err, second.Log.String())
	}

	first.Cmd.Process.Signal(os.Interrupt)
	first.Cmd.Wait()
	if _, err := c.Expect(scale.D(10*time.Second), func(m ircmsg.Message) bool {
		return m.Command == "NICK" && len(m.Params) > 0 && strings.EqualFold(m.Nick(), "twinbot_0") && strings.EqualFold(m.Params[0], nick)
	}); err != nil {
		t.Fatalf("the second copy did not take the nick: %v\n%s", err, second.Log.String())
	}
	if strings.Contains(second.Log.String(), "RECOVER") || strings.Contains(second.Log.String(), "recover it") {
		t.Fatalf("the second copy asked NickServ to recover the nick:\n%s", second.Log.String())
	}
	expectHelp(t, c, nick, channel, second)
}
