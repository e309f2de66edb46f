package bot

import (
	"deploybot/config"
	"strings"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircutils"
)

// maxTextBytes is the most text the bot puts in one PRIVMSG, whatever the
// target: the server prepends ":nick!user@host " when it relays the line,
// and the whole must stay within 512 bytes.
const maxTextBytes = 400

// textBudget is how many bytes of text fit in one PRIVMSG to target when
// the server adds a source prefix of at most prefixLen bytes.
func textBudget(target string, prefixLen int) int {
	// ":" prefix " PRIVMSG " target " :" text "\r\n"
	n := 512 - 1 - prefixLen - len(" PRIVMSG ") - len(target) - len(" :") - 2
	return min(n, maxTextBytes)
}

// maxPrefixLen is a generous bound on ":nick!user@host": nick 30, user 10
// (with ~), host 63.
const maxPrefixLen = 30 + 1 + 11 + 1 + 63

// sanitize makes text safe to put on the wire: CR and NUL are dropped, LF
// and other whitespace become spaces, and CTCP's \x01 is removed so a
// message can never turn into an ACTION or a CTCP request.
func sanitize(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = ircutils.SanitizeText(text, len(text)*2+2)
	return strings.ReplaceAll(text, "\x01", "")
}

// splitText cuts text into pieces of at most budget bytes, on word
// boundaries where it can and never inside a UTF-8 character. Text must
// already be sanitized.
func splitText(text string, budget int) []string {
	text = strings.TrimSpace(text)
	if budget < utf8.UTFMax {
		budget = utf8.UTFMax
	}
	var out []string
	for len(text) > budget {
		cut := strings.LastIndexByte(text[:budget+1], ' ')
		if cut <= 0 {
			// One word longer than the budget: cut at a rune boundary.
			cut = budget
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
			out = append(out, text[:cut])
			text = strings.TrimLeft(text[cut:], " ")
			continue
		}
		out = append(out, strings.TrimRight(text[:cut], " "))
		text = strings.TrimLeft(text[cut+1:], " ")
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

// sameName compares message targets with rfc1459 folding, the widest
// mapping, for the send queues only: two targets it folds together share
// a queue, which costs nothing. Everything that decides who somebody is
// uses the server's own mapping (Bot.sameName).
func sameName(a, b string) bool { return config.SameName(a, b) }
