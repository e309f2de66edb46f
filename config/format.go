package config

import (
	"fmt"
	"io"
	"strings"
)

// fmt prints a value with a verb that does not suit it (%s of a struct
// holding a bool, say) through a fallback that calls no methods, so
// Secret's Format would not be consulted and a password could show. The
// types that hold a Secret (Config, IRC, SASL) therefore format
// themselves: whatever the verb, they print as %v, %+v or %#v would.
// Config and SAL also hide the password of a database URL (see RedactURL).

type (
	plainConfig Config
	plainIRC    IRC
	plainSASL   SASL
	plainSAL    SAL
)

// Format prints c as %v (%+v, %#v with those flags) does, for every verb;
// the password of sal.database shows as xxxxx.
func (c Config) Format(f fmt.State, verb rune) {
	c.SAL.Database = RedactURL(c.SAL.Database)
	formatPlain(f, "config.plainConfig", "config.Config", plainConfig(c))
}

// Format prints s as %v (%+v, %#v with those flags) does, for every verb;
// the password of Database shows as xxxxx.
func (s SAL) Format(f fmt.State, verb rune) {
	s.Database = RedactURL(s.Database)
	formatPlain(f, "config.plainSAL", "config.SAL", plainSAL(s))
}

// Format prints irc as %v (%+v, %#v with those flags) does, for every verb.
func (irc IRC) Format(f fmt.State, verb rune) {
	formatPlain(f, "config.plainIRC", "config.IRC", plainIRC(irc))
}

// Format prints s as %v (%+v, %#v with those flags) does, for every verb;
// the password shows as [redacted].
func (s SASL) Format(f fmt.State, verb rune) {
	formatPlain(f, "config.plainSASL", "config.SASL", plainSASL(s))
}

func formatPlain(f fmt.State, plainName, name string, v any) {
	format := "%v"
	switch {
	case f.Flag('#'):
		format = "%#v"
	case f.Flag('+'):
		format = "%+v"
	}
	out := fmt.Sprintf(format, v)
	if f.Flag('#') {
		out = strings.Replace(out, plainName, name, 1)
	}
	_, _ = io.WriteString(f, out)
}
