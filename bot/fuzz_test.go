package bot

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"
)

// Fuzz targets of the bot's input and output handling; `make fuzz` runs
// each for a while, `go test` runs their seeds (here and under
// testdata/fuzz/<target>/).

// FuzzParseCommand: a line is a command only when it starts with the
// prefix, and then the request says exactly what the line said.
func FuzzParseCommand(f *testing.F) {
	for _, s := range [][2]string{
		{"!", "!log restarted citoid"},
		{"!", "!DEPLOY citoid 1a2b3c4 fixing T123"},
		{"!", "! log"},
		{"!", "!"},
		{"!", "!\tlog x"},
		{"!", "!log   spaced    words  "},
		{"!", "!lög ünïcode"},
		{"!", "!log\x00nul"},
		{"!", "!\xff\xfe"},
		{"deploybot: ", "deploybot: status"},
		{">>", ">>help deploy"},
		{"!", "plain text"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, text string) {
		if prefix == "" {
			return // the configuration refuses an empty prefix
		}
		var r request
		ok := parseCommand(prefix, text, &r)
		if !strings.HasPrefix(text, prefix) {
			if ok {
				t.Fatalf("%q without the prefix %q parsed as %+v", text, prefix, r)
			}
			return
		}
		if !ok {
			body := text[len(prefix):]
			if body != "" && body[0] != ' ' && body[0] != '\t' {
				t.Fatalf("%q refused", text)
			}
			return
		}
		body := text[len(prefix):]
		name, rest, _ := strings.Cut(body, " ")
		switch {
		case r.name == "" || strings.Contains(r.name, " "):
			t.Fatalf("name %q from %q", r.name, text)
		case r.name != strings.ToLower(name):
			t.Fatalf("name %q, want %q", r.name, strings.ToLower(name))
		case r.rest != strings.TrimSpace(rest):
			t.Fatalf("rest %q, want %q", r.rest, strings.TrimSpace(rest))
		case strings.Join(r.args, " ") != strings.Join(strings.Fields(rest), " "):
			t.Fatalf("args %q from %q", r.args, rest)
		}
		for _, a := range r.args {
			if a == "" || strings.ContainsAny(a, " \t\r\n") {
				t.Fatalf("argument %q", a)
			}
		}
	})
}

// checkSent asserts what the bot would put on the wire: one line each,
// within the byte budget of its target, valid UTF-8, no CR, LF, NUL or
// CTCP marker.
func checkSent(t *testing.T, b *Bot, w *fakeWire) {
	t.Helper()
	b.out.drainTo(w)
	for _, l := range w.take() {
		target, text, _ := strings.Cut(l, " ")
		if len(text) > textBudget(target, maxPrefixLen) || text == "" {
			t.Fatalf("line of %d bytes to %s (budget %d): %q", len(text), target, textBudget(target, maxPrefixLen), text)
		}
		if !utf8.ValidString(text) || strings.ContainsAny(text, "\r\n\x00\x01") {
			t.Fatalf("unsafe line to %s: %q", target, text)
		}
	}
}

// FuzzIncomingLine feeds raw lines from the server (one input holds
// several, one per line), tags and all, through the parser and the bot's
// handling of them, as far as it goes without a connection: the member
// table (whatever it is told, a user has one services account in every
// channel), the request built from a PRIVMSG (sender, channel, services
// account from the account tag or the table) and the bot's answer to
// commands that need no database or deploy engine.
func FuzzIncomingLine(f *testing.F) {
	for _, s := range []string{
		"@account=alice :alice!a@wikimedia/ops/alice PRIVMSG #ops :!help",
		"@account=* :eve!e@h PRIVMSG #ops :!help deploy",
		"@time=2026-01-01T00:00:00.000Z;account=carol :carol!~carol@10.0.0.5 PRIVMSG deploybot :!status",
		":alice!a@h PRIVMSG #ops :!nosuchcommand \x01ACTION evil\x01",
		"@account=a\\sb\\:c\\\\ :x!y@z PRIVMSG #OPS :!HELP",
		"@account= :x!y@z PRIVMSG #ops :!help",
		"@account :x!y@z PRIVMSG #ops :!help",
		":deploybot!b@h PRIVMSG #ops :!help",
		":x!y@z PRIVMSG #elsewhere :!help",
		":x PRIVMSG #ops :!help",
		"PRIVMSG #ops :!help",
		":irc.test 354 deploybot 731 #ops u h alice H@ alice",
		":alice!a@h NICK :",
		"@a=b;c :x!y@z PRIVMSG #ops :" + strings.Repeat("é", 300),
		":x!y@z PRIVMSG #ops :!help " + strings.Repeat("w", 600),
		// The member table over a session: joins, WHOX, account changes,
		// nick changes, parts, kicks and quits.
		":deploybot!u@h JOIN #ops * :bot\n:deploybot!u@h JOIN #chatter * :bot\n" +
			":dave!d@h JOIN #ops dave :D\n:dave!d@h JOIN #chatter * :D\n:dave!d@h PRIVMSG deploybot :!help",
		":deploybot!u@h JOIN #ops * :bot\n:deploybot!u@h JOIN #chatter * :bot\n" +
			":dave!d@h JOIN #ops dave :D\n:bob!b@h JOIN #chatter bob :B\n:bob!b@h NICK dave\n:dave!d@h PRIVMSG deploybot :!help",
		":deploybot!u@h JOIN #ops * :bot\n:irc.test 354 deploybot 731 #ops u h alice H alice\n" +
			":alice!a@h ACCOUNT *\n:alice!a@h PRIVMSG #ops :!help\n:op!o@h KICK #ops deploybot :out\n:alice!a@h QUIT :bye",
	} {
		f.Add(s)
	}
	b, w, _ := newTestBot(f)
	b.accountTags = true
	const self = "deploybot"
	f.Fuzz(func(t *testing.T, input string) {
		b.link.members.init()
		for _, line := range strings.Split(input, "\n") {
			m, err := ircmsg.ParseLine(line)
			if err != nil {
				continue
			}
			b.link.members.handle(m, self)
			checkOneAccount(t, &b.link.members)
			r := b.requestFrom(m, self)
			if r == nil {
				continue
			}
			checkRequest(t, b, m, r, self)
			if len(r.replyTo) > 64 {
				continue // servers keep nicks far shorter (NICKLEN)
			}
			if c, known := commands[r.name]; !known || c.name == "help" {
				b.dispatch(context.Background(), r)
				checkSent(t, b, w)
			}
		}
	})
}

// checkOneAccount asserts that the member table knows at most one account
// for each nick, across channels.
func checkOneAccount(t *testing.T, tb *memberTable) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	seen := map[string]string{}
	for ch, members := range tb.chans {
		for key, mb := range members {
			if mb.account == "" {
				continue
			}
			if other, ok := seen[key]; ok && other != mb.account {
				t.Fatalf("%s is logged in as %q in one channel and %q in %s", key, other, mb.account, ch)
			}
			seen[key] = mb.account
		}
	}
}

// checkRequest asserts what a request built from m must say.
func checkRequest(t *testing.T, b *Bot, m ircmsg.Message, r *request, self string) {
	t.Helper()
	nuh, _ := m.NUH()
	switch {
	case m.Command != "PRIVMSG":
		t.Fatalf("a request from a %s", m.Command)
	case r.nick != nuh.Name || b.sameName(r.nick, self):
		t.Fatalf("request from %q, line from %q", r.nick, nuh.Name)
	case r.channel != "" && (!b.listensOn(r.channel) || r.replyTo != r.channel):
		t.Fatalf("channel %q, reply to %q", r.channel, r.replyTo)
	case r.channel == "" && r.replyTo != r.nick:
		t.Fatalf("private message answered to %q", r.replyTo)
	case r.account == "*":
		t.Fatal(`account "*" means nobody`)
	}
	if ok, acct := m.GetTag("account"); ok && r.account != accountName(acct) {
		t.Fatalf("account %q, tag %q", r.account, acct)
	} else if !ok && r.account != "" {
		t.Fatalf("account %q without a tag: an untagged message is from somebody not logged in", r.account)
	}
}

// FuzzSplitText: whatever the text and the target, the bot sends lines
// within the budget, never splits a UTF-8 character, never sends CR, LF or
// NUL, and loses no word.
func FuzzSplitText(f *testing.F) {
	for _, s := range []struct {
		target, text string
	}{
		{"#ops", "deploy citoid: canary done"},
		{"#ops", strings.Repeat("deploy citoid ", 100)},
		{"alice", strings.Repeat("☃", 300)},
		{"#ops", "a\r\nPRIVMSG #x :evil\x00\x01ACTION"},
		{"#ops", strings.Repeat("x", 399) + "é" + strings.Repeat("y", 10)},
		{"#ops", "\xff\xfe\xfd broken"},
		{"#a", "tabs\tand\u00a0nbsp\u3000ideographic space\u2028line sep"},
		{"#" + strings.Repeat("c", 49), strings.Repeat("😀", 200)},
	} {
		f.Add(s.target, s.text)
	}
	f.Fuzz(func(t *testing.T, target, text string) {
		if target == "" || len(target) > 64 {
			return // channels (50 bytes) and nicks (32) are shorter
		}
		budget := textBudget(target, maxPrefixLen)
		clean := sanitize(text)
		parts := splitText(clean, budget)
		for _, p := range parts {
			switch {
			case p == "":
				t.Fatal("empty part")
			case len(p) > budget:
				t.Fatalf("part of %d bytes, budget %d", len(p), budget)
			case !utf8.ValidString(p):
				t.Fatalf("part splits a character: %q", p)
			case strings.ContainsAny(p, "\r\n\x00\x01"):
				t.Fatalf("part holds a line break, NUL or CTCP: %q", p)
			}
			if wire := ":" + strings.Repeat("x", maxPrefixLen) + " PRIVMSG " + target + " :" + p + "\r\n"; len(wire) > 512 {
				t.Fatalf("line of %d bytes on the wire", len(wire))
			}
		}
		if got, want := strings.ReplaceAll(strings.Join(parts, ""), " ", ""), strings.ReplaceAll(clean, " ", ""); got != want {
			t.Fatalf("text changed:\n got %q\nwant %q", got, want)
		}
	})
}
