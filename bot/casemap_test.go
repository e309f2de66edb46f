package bot

import (
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

func TestParseCaseMapping(t *testing.T) {
	cases := []struct {
		token string
		ok    bool
		want  caseMapping
	}{
		{"", false, caseRFC1459}, // no CASEMAPPING: the RFC's
		{"rfc1459", true, caseRFC1459},
		{"RFC1459", true, caseRFC1459},
		{"rfc1459-strict", true, caseRFC1459Strict},
		{"ascii", true, caseASCII},
		{"precis", true, caseASCII},
		{"rfc7613", true, caseASCII},
		{"something-new", true, caseASCII},
	}
	for _, c := range cases {
		if got := parseCaseMapping(c.token, c.ok); got != c.want {
			t.Errorf("parseCaseMapping(%q, %v) = %v, want %v", c.token, c.ok, got, c.want)
		}
	}
}

func TestCaseMappingFold(t *testing.T) {
	cases := []struct {
		a, b                   string
		ascii, strict, rfc1459 bool
	}{
		{"Alice", "alice", true, true, true},
		{"nick[", "nick{", false, true, true},
		{"a]b\\", "A}B|", false, true, true},
		{"x~", "x^", false, false, true},
		{"zoë", "ZOË", false, false, false}, // non-ASCII letters are never folded
		{"nick", "nick_", false, false, false},
	}
	for _, c := range cases {
		for cm, want := range map[caseMapping]bool{caseASCII: c.ascii, caseRFC1459Strict: c.strict, caseRFC1459: c.rfc1459} {
			if got := cm.same(c.a, c.b); got != want {
				t.Errorf("%v: same(%q, %q) = %v, want %v", cm, c.a, c.b, got, want)
			}
		}
	}
}

// On an ascii server nick[ and nick{ are two people: the member table
// keeps them apart, and a message from one is not the bot's own when the
// other is the bot.
func TestASCIICaseMapping(t *testing.T) {
	var tb memberTable
	tb.reset(caseASCII)
	for _, line := range []string{
		":deploybot!u@h JOIN #ops * :bot",
		":nick[!a@h JOIN #ops alice :Alice",
		":nick{!m@h JOIN #OPS * :Mallory",
	} {
		m, _ := ircmsg.ParseLine(line)
		tb.handle(m, "deploybot")
	}
	if got := tb.account("#ops", "nick["); got != "alice" {
		t.Errorf("nick[ is logged in as %q, want alice", got)
	}
	if got := tb.account("#ops", "nick{"); got != "" {
		t.Errorf("nick{ is logged in as %q, want nobody", got)
	}
	if n, _ := tb.count("#ops"); n != 3 {
		t.Errorf("%d members, want 3", n)
	}
	m, _ := ircmsg.ParseLine(":nick{!m@h QUIT :bye")
	tb.handle(m, "deploybot")
	if got := tb.account("", "nick["); got != "alice" {
		t.Errorf("after nick{ quit, nick[ is logged in as %q, want alice", got)
	}
	// The same under rfc1459, where they are one nick: the second JOIN
	// is the same person (a stale entry replaced), and so is the QUIT.
	tb.reset(caseRFC1459)
	for _, line := range []string{":deploybot!u@h JOIN #ops * :bot", ":nick[!a@h JOIN #ops alice :Alice", ":nick{!m@h QUIT :bye"} {
		m, _ := ircmsg.ParseLine(line)
		tb.handle(m, "deploybot")
	}
	if got := tb.account("", "nick["); got != "" {
		t.Errorf("rfc1459: nick[ still logged in as %q after nick{ quit", got)
	}

	b, _, _ := newTestBot(t)
	b.accountTags = true
	msg, _ := ircmsg.ParseLine("@account=mallory :deploy{bot!m@h PRIVMSG #ops :!help")
	b.setCaseMapping(caseRFC1459)
	if r := b.requestFrom(msg, "deploy[bot"); r != nil {
		t.Errorf("rfc1459: a message from deploy{bot taken for somebody else's than the bot deploy[bot's: %+v", r)
	}
	b.setCaseMapping(caseASCII)
	if r := b.requestFrom(msg, "deploy[bot"); r == nil || r.nick != "deploy{bot" {
		t.Errorf("ascii: a message from deploy{bot taken for the bot deploy[bot's own: %+v", r)
	}
}

// Configured accounts match the account tag exactly, whatever the
// server's case mapping: services, not the bot, decide what an account's
// name is.
func TestAccountCaseMapping(t *testing.T) {
	b, _, _ := newTestBot(t)
	b.accountTags = true
	b.cfg.Access.Deployers.Accounts = append(b.cfg.Access.Deployers.Accounts, "ops[team]")
	cases := []struct {
		cm      caseMapping
		account string
		want    bool
	}{
		{caseASCII, "alice", true},
		{caseASCII, "ALICE", false},
		{caseASCII, "ops[team]", true},
		{caseASCII, "OPS[TEAM]", false},
		{caseASCII, "ops{team}", false},
		{caseRFC1459, "ops{team}", false},
		{caseRFC1459, "Alice", false},
		{caseRFC1459, "alice_", false},
	}
	for _, c := range cases {
		b.setCaseMapping(c.cm)
		r := &request{nick: "x", user: "u", host: "h", account: c.account}
		if got := b.isDeployer(r); got != c.want {
			t.Errorf("%v: account %q is a deployer: %v, want %v", c.cm, c.account, got, c.want)
		}
	}
}

// With account-tag granted, a message without the tag is from somebody
// not logged in, whatever the member table remembers of the nick: not a
// deployer.
func TestUntaggedIsNotLoggedIn(t *testing.T) {
	b, _, _ := newTestBot(t)
	b.accountTags = true
	b.link.members.reset(caseRFC1459)
	for _, line := range []string{
		":deploybot!u@h JOIN #ops * :bot",
		":alice!a@h JOIN #ops Alice :Alice",
	} {
		m, _ := ircmsg.ParseLine(line)
		b.link.members.handle(m, "deploybot")
	}
	if got := b.link.members.account("#ops", "alice"); got != "Alice" {
		t.Fatalf("member table: alice is %q, want Alice", got)
	}
	bare, _ := ircmsg.ParseLine(":alice!a@h PRIVMSG #ops :!lock citoid x")
	r := b.requestFrom(bare, "deploybot")
	if r == nil {
		t.Fatal("no request")
	}
	if r.account != "" || b.isDeployer(r) {
		t.Errorf("untagged message: account %q, deployer %v; want not logged in, no deployer", r.account, b.isDeployer(r))
	}
	tagged, _ := ircmsg.ParseLine("@account=alice :alice!a@h PRIVMSG #ops :!lock citoid x")
	if r := b.requestFrom(tagged, "deploybot"); r == nil || r.account != "alice" || !b.isDeployer(r) {
		t.Errorf("tagged message: %+v, want deployer alice", r)
	}
}
