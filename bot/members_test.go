package bot

import (
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

func TestMemberTable(t *testing.T) {
	var tb memberTable
	tb.init()
	const self = "deploybot"
	steps := []struct {
		line   string
		joined string // want memberEvent.joined
		listed string // want memberEvent.listed
		check  map[string]string
	}{
		// The bot joins; WHOX lists who was there before it.
		{line: ":deploybot!u@h JOIN #ops deploybot :bot", joined: "#ops", check: map[string]string{"deploybot": "deploybot"}},
		{line: ":irc.test 354 deploybot 731 #ops alice host1 alice H@ alice"},
		{line: ":irc.test 354 deploybot 731 #ops m host2 mallory H 0"},
		{line: ":irc.test 354 deploybot 999 #ops e host3 eve H eve"}, // someone else's WHOX
		{line: ":irc.test 315 deploybot #ops :End of /WHO list.", listed: "#ops",
			check: map[string]string{"alice": "alice", "mallory": "", "eve": ""}},
		// extended-join: logged in, and not.
		{line: ":Bob!b@h JOIN #ops bob :Bob", check: map[string]string{"bob": "bob"}},
		{line: ":carol!c@h JOIN #ops * :Carol", check: map[string]string{"carol": ""}},
		// account-notify.
		{line: ":carol!c@h ACCOUNT carol", check: map[string]string{"carol": "carol"}},
		{line: ":alice!a@h ACCOUNT *", check: map[string]string{"alice": ""}},
		{line: ":alice!a@h ACCOUNT alice2", check: map[string]string{"alice": "alice2"}},
		// NICK keeps the account under the new nick (case-folded).
		{line: ":bob!b@h NICK :Robert", check: map[string]string{"bob": "", "robert": "bob", "ROBERT": "bob"}},
		// PART, KICK, QUIT forget.
		{line: ":robert!b@h PART #ops :bye", check: map[string]string{"robert": ""}},
		{line: ":op!o@h KICK #ops carol :out", check: map[string]string{"carol": ""}},
		{line: ":alice!a@h QUIT :gone", check: map[string]string{"alice": ""}},
	}
	for _, s := range steps {
		m, err := ircmsg.ParseLine(s.line)
		if err != nil {
			t.Fatal(err)
		}
		ev := tb.handle(m, self)
		if ev.joined != s.joined || ev.listed != s.listed {
			t.Fatalf("%s: event %+v, want joined %q listed %q", s.line, ev, s.joined, s.listed)
		}
		for nick, want := range s.check {
			if got := tb.account("#OPS", nick); got != want {
				t.Fatalf("after %s: account of %s = %q, want %q", s.line, nick, got, want)
			}
		}
	}
	if n, a := tb.count("#ops"); n != 2 || a != 1 { // deploybot (deploybot), mallory
		t.Fatalf("count = %d members, %d accounts; want 2, 1", n, a)
	}
	// Being kicked forgets the channel.
	m, _ := ircmsg.ParseLine(":op!o@h KICK #ops deploybot :out")
	tb.handle(m, self)
	if n, _ := tb.count("#ops"); n != 0 {
		t.Fatalf("%d members left after the bot was kicked", n)
	}
}

// ACCOUNT and QUIT reach every channel; a PART only its own.
func TestMemberTableAcrossChannels(t *testing.T) {
	var tb memberTable
	for _, line := range []string{
		":deploybot!u@h JOIN #a * :bot",
		":deploybot!u@h JOIN #b * :bot",
		":dave!d@h JOIN #a * :Dave",
		":dave!d@h JOIN #b * :Dave",
		":dave!d@h ACCOUNT dave",
		":dave!d@h PART #a",
	} {
		m, _ := ircmsg.ParseLine(line)
		tb.handle(m, "deploybot")
	}
	if got := tb.account("#a", "dave"); got != "" {
		t.Fatalf("#a still knows dave as %q", got)
	}
	if got := tb.account("#b", "dave"); got != "dave" {
		t.Fatalf("#b: %q", got)
	}
	if got := tb.account("", "dave"); got != "dave" {
		t.Fatalf("any channel: %q", got)
	}
	m, _ := ircmsg.ParseLine(":dave!d@h QUIT :bye")
	tb.handle(m, "deploybot")
	if got := tb.account("", "dave"); got != "" {
		t.Fatalf("after QUIT: %q", got)
	}
}

func TestAccountOf(t *testing.T) {
	b, _ := linkBot(t, true)
	for _, line := range []string{
		":deploybot!u@h JOIN #ops deploybot :bot",
		":alice!a@h JOIN #ops alice :Alice",
	} {
		m, _ := ircmsg.ParseLine(line)
		b.link.members.handle(m, "deploybot")
	}
	if got := b.link.members.account("#ops", "alice"); got != "alice" {
		t.Fatalf("member table: alice is %q, want logged in as alice", got)
	}
	msg := func(line string) ircmsg.Message {
		m, err := ircmsg.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tagged := msg("@account=alice :alice!a@h PRIVMSG #ops :!help")
	star := msg("@account=* :alice!a@h PRIVMSG #ops :!help")
	bare := msg(":alice!a@h PRIVMSG #ops :!help")
	other := msg("@account=eve :alice!a@h PRIVMSG #ops :!help")
	cases := []struct {
		name string
		tags bool
		m    ircmsg.Message
		want string
	}{
		{"no account-tag: never", false, tagged, ""},
		{"tag", true, tagged, "alice"},
		{"tag is authoritative over the table", true, other, "eve"},
		{"star", true, star, ""},
		// The table says alice is logged in, but with account-tag granted
		// a message without the tag is from somebody who is not: whoever
		// holds the nick now may have logged out, or taken it since.
		{"no tag: not logged in, whatever the table says", true, bare, ""},
	}
	for _, c := range cases {
		b.accountTags = c.tags
		if got := b.accountOf(c.m); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// What the server says of an account on a JOIN or in a WHOX reply is true
// of every channel: a stale account left in another channel must not
// answer for a private message.
func TestMemberAccountIsOnePerUser(t *testing.T) {
	var tb memberTable
	for _, line := range []string{
		":deploybot!u@h JOIN #a * :bot",
		":deploybot!u@h JOIN #b * :bot",
		":dave!d@h JOIN #a dave :Dave",
		":dave!d@h JOIN #b * :Dave", // logged out since, no account-notify seen
	} {
		m, _ := ircmsg.ParseLine(line)
		tb.handle(m, "deploybot")
	}
	for _, ch := range []string{"#a", "#b", ""} {
		if got := tb.account(ch, "dave"); got != "" {
			t.Fatalf("account of dave in %q = %q after the JOIN said none", ch, got)
		}
	}
	m, _ := ircmsg.ParseLine(":irc.test 354 deploybot 731 #b d h dave H dave2")
	tb.handle(m, "deploybot")
	for _, ch := range []string{"#a", "#b", ""} {
		if got := tb.account(ch, "dave"); got != "dave2" {
			t.Fatalf("account of dave in %q = %q after WHOX said dave2", ch, got)
		}
	}
	// A plain JOIN (no extended-join) says nothing of the account.
	m, _ = ircmsg.ParseLine(":dave!d@h JOIN #c")
	tb.handle(m, "deploybot")
	if got := tb.account("#a", "dave"); got != "dave2" {
		t.Fatalf("a plain JOIN changed the account to %q", got)
	}
	// #c is not a channel the bot is in.
	if tb.in("#c") {
		t.Fatal("somebody else's JOIN made the bot think it is in #c")
	}
}
