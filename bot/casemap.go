package bot

import "strings"

// caseMapping is how the server folds the case of nicks and channel
// names, as its ISUPPORT CASEMAPPING token says. Two names are the same
// to the server exactly when they fold to the same string, so the bot
// folds with the server's mapping, never with a fixed one: on an ascii
// server "nick[" and "nick{" are two different people.
type caseMapping uint32

const (
	// caseRFC1459 folds A–Z and []\~ to a–z and {}|^. It is what a server
	// that sends no CASEMAPPING uses, and what the bot assumes until the
	// server says.
	caseRFC1459 caseMapping = iota
	// caseRFC1459Strict folds A–Z and []\ to a–z and {}|, not ~.
	caseRFC1459Strict
	// caseASCII folds A–Z only. Mappings the bot does not implement
	// (precis, rfc7613, anything new) are compared as ascii: they fold
	// ASCII letters as it does, and telling two names apart that the
	// server would fold together only ever denies (a nick is not taken for
	// somebody else's), never grants.
	caseASCII
)

// parseCaseMapping returns the mapping named by a CASEMAPPING token; an
// absent token (ok false) means rfc1459.
func parseCaseMapping(token string, ok bool) caseMapping {
	if !ok {
		return caseRFC1459
	}
	switch strings.ToLower(token) {
	case "rfc1459", "":
		return caseRFC1459
	case "rfc1459-strict", "strict-rfc1459":
		return caseRFC1459Strict
	}
	return caseASCII
}

// String is the token's name.
func (cm caseMapping) String() string {
	switch cm {
	case caseRFC1459:
		return "rfc1459"
	case caseRFC1459Strict:
		return "rfc1459-strict"
	}
	return "ascii"
}

// fold returns s with its case folded by cm.
func (cm caseMapping) fold(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case cm == caseASCII:
			return r
		case r == '[':
			return '{'
		case r == ']':
			return '}'
		case r == '\\':
			return '|'
		case r == '~' && cm == caseRFC1459:
			return '^'
		}
		return r
	}, s)
}

// same reports whether a and b name the same nick, channel or account
// under cm.
func (cm caseMapping) same(a, b string) bool { return cm.fold(a) == cm.fold(b) }

// caseMapping is the case mapping of the server the bot is connected to
// (rfc1459 before the first connection).
func (b *Bot) caseMapping() caseMapping { return caseMapping(b.casemap.Load()) }

// setCaseMapping records the mapping the server advertised.
func (b *Bot) setCaseMapping(cm caseMapping) { b.casemap.Store(uint32(cm)) }

// fold folds a nick, channel or account name as the server does.
func (b *Bot) fold(s string) string { return b.caseMapping().fold(s) }

// sameName compares nicks or channel names the way the server does.
func (b *Bot) sameName(x, y string) bool { return b.caseMapping().same(x, y) }
