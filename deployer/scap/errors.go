package scap

import (
	"fmt"
	"strings"
)

// Error is one problem that keeps a deploy repository's Scap3 settings
// from being read or mapped: where it is and what is wrong.
type Error struct {
	// File is the path of the file within the repository, such as
	// "scap/scap.cfg"; empty for a problem with the settings as a whole.
	File string
	// Line is 1-based; 0 when the problem has no single line.
	Line int
	// Key is the setting concerned ("dsh_targets", "checks.endpoints"),
	// or empty.
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

// Errors is every problem found, in the order found. Load and
// Settings.Apply return it (never an empty one) on failure.
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

// err returns es as an error, or nil when it is empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Unsupported is one Scap3 setting that deploybot does not carry out as
// Scap3 would: a key it has no equivalent for, a check type it cannot
// run, a host-specific section, a line of a target list that Scap3 itself
// skips. Nothing in a deploy repository is dropped without one.
type Unsupported struct {
	// Key names the setting: a scap.cfg key ("git_fat"), a section
	// ("[deploy1001.eqiad.wmnet]"), a check ("checks.endpoints"), a
	// config file ("config_files./etc/citoid/config.yaml"), or a target
	// list line ("dsh_targets line 4").
	Key string
	// File is the path of the file within the repository, such as
	// "scap/environments/beta/scap.cfg".
	File string
	// Line is 1-based; 0 when the setting has no single line.
	Line int
	// Why says what Scap3 does with it and what deploybot does instead.
	Why string
}

// String formats u as "FILE:LINE: KEY: why".
func (u Unsupported) String() string {
	return (&Error{File: u.File, Line: u.Line, Key: u.Key, Msg: u.Why}).Error()
}
