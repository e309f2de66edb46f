package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file: where it is and what was
// expected instead. It never contains the value of a secret.
type Error struct {
	// File is the configuration file as it was named to Load or Parse.
	File string
	// Line is the 1-based line the problem is on (for a missing key: the
	// line of the mapping that lacks it). 0 only when the file could not
	// be read at all.
	Line int
	// Key is the full dotted path of the key, such as
	// "services.citoid.groups[0].failure_limit". Map keys that are not
	// plain words are quoted: sal.projects["#ops"]. Empty for problems
	// with the file as a whole.
	Key string
	// Msg says what is wrong and what is expected.
	Msg string
}

// Error formats the problem as "FILE:LINE: KEY: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration file, in line order.
// Load and Parse return it (never an empty one) when the file is not a
// valid configuration.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As and errors.Is see each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders errors by line, keeping the order they were found in
// for errors on the same line.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}
