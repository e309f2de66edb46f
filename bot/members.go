package bot

import (
	"sync"

	"github.com/ergochat/irc-go/ircmsg"
)

// whoxToken marks the bot's own WHOX queries (WHO #chan %tcnuhfa,<token>)
// so that their 354 replies are told apart from anybody else's.
const whoxToken = "731"

// whoxFields are the WHOX fields the bot asks for. The server answers them
// in its fixed order: token, channel, user, host, nick, flags, account.
const whoxFields = "%tcnuhfa"

// member is one user in a channel as the bot knows them.
type member struct {
	nick    string // as last seen
	account string // services account; "" when not logged in or unknown
}

// memberTable knows, for every channel the bot is in, who is there and
// which services account each of them is logged in to. It learns it from
// extended-join JOINs, WHOX replies (354) to the query the bot sends when
// it joins, and account-notify ACCOUNT messages, and follows NICK, PART,
// KICK and QUIT. Names are keyed folded with the server's case mapping.
//
// The table says who is in a channel; it never decides rights: with
// account-tag every message carries its sender's account, and a table
// that lags behind a logout or a nick change must not stand in for it.
type memberTable struct {
	mu    sync.Mutex
	cm    caseMapping                  // the server's, set by reset
	chans map[string]map[string]member // channel → nick → member
	whox  map[string]bool              // channels whose WHOX reply is coming
}

// memberEvent is what handle reports to its caller.
type memberEvent struct {
	joined string // the bot itself joined this channel: query it with WHOX
	listed string // the WHOX reply for this channel has ended
}

// init empties the table.
func (t *memberTable) init() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.chans = make(map[string]map[string]member)
	t.whox = make(map[string]bool)
}

// clear forgets everything: the connection ended.
func (t *memberTable) clear() { t.init() }

// reset forgets everything and keys names folded by cm from now on: a
// new connection began, to a server with that case mapping.
func (t *memberTable) reset(cm caseMapping) {
	t.init()
	t.mu.Lock()
	t.cm = cm
	t.mu.Unlock()
}

// fold folds a nick or channel name with the table's case mapping; t.mu
// is held.
func (t *memberTable) fold(s string) string { return t.cm.fold(s) }

// handle updates the table from m; self is the bot's current nick.
func (t *memberTable) handle(m ircmsg.Message, self string) memberEvent {
	var ev memberEvent
	nick := m.Nick()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.chans == nil {
		t.chans = make(map[string]map[string]member)
		t.whox = make(map[string]bool)
	}
	switch m.Command {
	case "JOIN":
		if len(m.Params) < 1 {
			break
		}
		ch := t.fold(m.Params[0])
		if t.cm.same(nick, self) {
			t.chans[ch] = make(map[string]member)
			t.whox[ch] = true
			ev.joined = m.Params[0]
		}
		if len(m.Params) >= 2 { // extended-join: JOIN #chan account :realname
			t.setKnown(ch, nick, accountName(m.Params[1]))
		} else {
			t.set(ch, nick, "", true)
		}
	case "PART":
		if len(m.Params) >= 1 {
			t.remove(t.fold(m.Params[0]), nick, self)
		}
	case "KICK":
		if len(m.Params) >= 2 {
			t.remove(t.fold(m.Params[0]), m.Params[1], self)
		}
	case "QUIT":
		for _, members := range t.chans {
			delete(members, t.fold(nick))
		}
	case "NICK":
		if len(m.Params) < 1 {
			break
		}
		from, to := t.fold(nick), m.Params[0]
		for _, members := range t.chans {
			// The server gave the nick away, so whoever had it is gone.
			if key := t.fold(to); key != from {
				delete(members, key)
			}
			if mb, ok := members[from]; ok {
				delete(members, from)
				mb.nick = to
				members[t.fold(to)] = mb
			}
		}
	case "ACCOUNT":
		if len(m.Params) < 1 {
			break
		}
		for ch := range t.chans {
			t.set(ch, nick, accountName(m.Params[0]), false)
		}
	case "354":
		// me token channel user host nick flags account
		if len(m.Params) < 8 || m.Params[1] != whoxToken {
			break
		}
		acct := m.Params[7]
		if acct == "0" {
			acct = ""
		}
		t.setKnown(t.fold(m.Params[2]), m.Params[5], acct)
	case "315":
		if len(m.Params) < 2 {
			break
		}
		ch := t.fold(m.Params[1])
		if t.whox[ch] {
			delete(t.whox, ch)
			ev.listed = m.Params[1]
		}
	}
	return ev
}

// set records nick's account in channel ch (folded), a channel the bot
// is in. With add false it only updates a nick already there.
func (t *memberTable) set(ch, nick, account string, add bool) {
	members := t.chans[ch]
	if members == nil {
		return // not a channel the bot is in: nothing to know there
	}
	key := t.fold(nick)
	if _, ok := members[key]; !ok && !add {
		return
	}
	members[key] = member{nick: nick, account: account}
}

// setKnown records nick in channel ch (folded) with the account the
// server just told, and updates every other channel that has nick: an
// account belongs to the user, not to a channel, and a stale one left in
// another channel could answer for a private message.
func (t *memberTable) setKnown(ch, nick, account string) {
	t.set(ch, nick, account, true)
	for other := range t.chans {
		if other != ch {
			t.set(other, nick, account, false)
		}
	}
}

// remove takes nick out of channel ch (folded), or forgets the channel
// when nick is the bot itself.
func (t *memberTable) remove(ch, nick, self string) {
	if t.cm.same(nick, self) {
		delete(t.chans, ch)
		delete(t.whox, ch)
		return
	}
	delete(t.chans[ch], t.fold(nick))
}

// account returns the account nick is logged in to as known from channel
// (from any channel when channel is ""), or "".
func (t *memberTable) account(channel, nick string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := t.fold(nick)
	if channel != "" {
		return t.chans[t.fold(channel)][key].account
	}
	for _, members := range t.chans {
		if mb, ok := members[key]; ok && mb.account != "" {
			return mb.account
		}
	}
	return ""
}

// in reports whether the bot is in channel: it joined it and has not
// left it (or been kicked) since the connection began.
func (t *memberTable) in(channel string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.chans[t.fold(channel)]
	return ok
}

// count returns how many members channel has and how many of them are
// logged in.
func (t *memberTable) count(channel string) (members, accounts int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, mb := range t.chans[t.fold(channel)] {
		members++
		if mb.account != "" {
			accounts++
		}
	}
	return members, accounts
}

// accountName turns an account field of extended-join or ACCOUNT into an
// account name: "*" means none.
func accountName(s string) string {
	if s == "*" {
		return ""
	}
	return s
}

// onMembers keeps the member table and queries a channel with WHOX when
// the bot joins it.
func (l *link) onMembers(m ircmsg.Message) {
	ev := l.members.handle(m, l.ownNick())
	if ev.joined != "" {
		if _, ok := l.b.conn.ISupport()["WHOX"]; ok {
			l.b.conn.Send("WHO", ev.joined, whoxFields+","+whoxToken)
		} else {
			l.b.log.Info("the server has no WHOX: accounts of members already in the channel are unknown", "channel", ev.joined)
		}
	}
	if ev.listed != "" {
		n, a := l.members.count(ev.listed)
		l.b.log.Info("channel members", "channel", ev.listed, "members", n, "accounts", a)
	}
}

// accountOf returns the services account of the sender of m, or "" when
// they are not logged in or it cannot be known. Without account-tag it is
// always "": only hostmask rules authorize then. With it, m's account tag
// is the whole truth: "*" or no tag at all means not logged in. The
// member table is never asked: it may still hold an account its owner
// logged out of, or that belonged to whoever had the nick before.
func (b *Bot) accountOf(m ircmsg.Message) string {
	b.mu.Lock()
	tags := b.accountTags
	b.mu.Unlock()
	if !tags {
		return ""
	}
	if ok, acct := m.GetTag("account"); ok {
		return accountName(acct)
	}
	return ""
}
