package ircd

import (
	"deploybot/config"
	"sort"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"
)

// Matcher selects messages for Client.Expect and Client.Collect. It is an
// alias, so a plain func(ircmsg.Message) bool works wherever one is asked.
type Matcher = func(ircmsg.Message) bool

// Nick and channel comparisons below use the server's case mapping,
// rfc1459 (CASEMAPPING=rfc1459): ASCII letters and []\~ fold to {}|^.

// IsCommand matches messages whose command (or numeric, e.g. "903") is one
// of cmds, ignoring case.
func IsCommand(cmds ...string) Matcher {
	return func(m ircmsg.Message) bool {
		for _, c := range cmds {
			if strings.EqualFold(m.Command, c) {
				return true
			}
		}
		return false
	}
}

// IsPrivmsgFrom matches PRIVMSGs sent by nick to target (a channel or a
// nick). An empty nick or target matches any.
func IsPrivmsgFrom(nick, target string) Matcher {
	return isMessageFrom("PRIVMSG", nick, target)
}

// IsNoticeFrom matches NOTICEs sent by nick to target. An empty nick or
// target matches any.
func IsNoticeFrom(nick, target string) Matcher {
	return isMessageFrom("NOTICE", nick, target)
}

func isMessageFrom(cmd, nick, target string) Matcher {
	return func(m ircmsg.Message) bool {
		return m.Command == cmd && len(m.Params) >= 2 &&
			(nick == "" || equalFold(m.Nick(), nick)) &&
			(target == "" || equalFold(m.Params[0], target))
	}
}

// IsJoinOf matches nick joining channel. An empty nick or channel matches
// any.
func IsJoinOf(nick, channel string) Matcher {
	return func(m ircmsg.Message) bool {
		return m.Command == "JOIN" && len(m.Params) >= 1 &&
			(nick == "" || equalFold(m.Nick(), nick)) &&
			(channel == "" || equalFold(m.Params[0], channel))
	}
}

// IsQuitOf matches nick quitting (QUIT as seen by a client in a common
// channel). An empty nick matches any.
func IsQuitOf(nick string) Matcher {
	return func(m ircmsg.Message) bool {
		return m.Command == "QUIT" && (nick == "" || equalFold(m.Nick(), nick))
	}
}

// TextContains matches messages whose last parameter (the text of a
// PRIVMSG or NOTICE) contains substr.
func TextContains(substr string) Matcher {
	return func(m ircmsg.Message) bool {
		return len(m.Params) > 0 && strings.Contains(lastParam(m), substr)
	}
}

// TextHasPrefix matches messages whose last parameter starts with prefix
// (e.g. "alice: " for a reply addressed to alice).
func TextHasPrefix(prefix string) Matcher {
	return func(m ircmsg.Message) bool {
		return len(m.Params) > 0 && strings.HasPrefix(lastParam(m), prefix)
	}
}

// HasTag matches messages carrying the message tag name (e.g. "account");
// with a non-empty value, also that value.
func HasTag(name, value string) Matcher {
	return func(m ircmsg.Message) bool {
		ok, v := m.GetTag(name)
		return ok && (value == "" || v == value)
	}
}

// And matches when every matcher matches.
func And(ms ...Matcher) Matcher {
	return func(m ircmsg.Message) bool {
		for _, f := range ms {
			if !f(m) {
				return false
			}
		}
		return true
	}
}

// Or matches when any matcher matches.
func Or(ms ...Matcher) Matcher {
	return func(m ircmsg.Message) bool {
		for _, f := range ms {
			if f(m) {
				return true
			}
		}
		return false
	}
}

// Text returns the last parameter of m (the text of a PRIVMSG or NOTICE),
// or "".
func Text(m ircmsg.Message) string { return lastParam(m) }

func lastParam(m ircmsg.Message) string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// FoldNick folds s with the rfc1459 case mapping the server uses, for
// comparing nicks and channel names (the same mapping the bot's
// configuration uses).
func FoldNick(s string) string { return config.FoldName(s) }

func equalFold(a, b string) bool { return FoldNick(a) == FoldNick(b) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
