package scap

import (
	"errors"
	"strings"
)

// splitCommand splits a check's command line into words as Scap3 does
// (Python's shlex.split: POSIX quoting, no comments) before running it
// without a shell.
func splitCommand(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // inside a word (possibly an empty quoted one)
	)
	const (
		plain = iota
		single
		double
	)
	state := plain
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case plain:
			switch c {
			case ' ', '\t', '\r', '\n':
				if in {
					words = append(words, word.String())
					word.Reset()
					in = false
				}
			case '\'':
				state, in = single, true
			case '"':
				state, in = double, true
			case '\\':
				if i+1 >= len(s) {
					return nil, errors.New("no character after the final backslash")
				}
				i++
				word.WriteByte(s[i])
				in = true
			default:
				word.WriteByte(c)
				in = true
			}
		case single:
			if c == '\'' {
				state = plain
			} else {
				word.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				state = plain
			case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
				i++
				word.WriteByte(s[i])
			default:
				word.WriteByte(c)
			}
		}
	}
	if state != plain {
		return nil, errors.New("no closing quotation")
	}
	if in {
		words = append(words, word.String())
	}
	return words, nil
}

// shellQuote quotes a word for a POSIX shell: as is when it holds only
// characters no shell treats specially, else in single quotes.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// shellJoin makes words one shell command line that runs them as they
// are: the first word is quoted when the shell would read it as a variable
// assignment or a reserved word rather than the program to run.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
		if i == 0 && q[i] == w && (strings.Contains(w, "=") || shellReserved[w]) {
			q[i] = "'" + w + "'"
		}
	}
	return strings.Join(q, " ")
}

// shellReserved are the POSIX shell's reserved words made of characters
// shellQuote leaves alone.
var shellReserved = map[string]bool{
	"case": true, "do": true, "done": true, "elif": true, "else": true, "esac": true,
	"fi": true, "for": true, "if": true, "in": true, "then": true, "until": true, "while": true,
}
