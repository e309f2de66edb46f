package scap

import (
	"deploybot/config"
)

// Error is one problem that keeps a deploy repository's Scap3 settings
// from being read or mapped: where it is (File is the path within the
// repository, such as "scap/scap.cfg", empty for the settings as a whole)
// and what is wrong. It is the configuration's own error type, so both
// read the same.
type Error = config.Error

// Errors is every problem found, in the order found. Load and
// Settings.Apply return it (never an empty one) on failure.
type Errors = config.Errors

// errOf returns es as an error, or nil when it is empty.
func errOf(es Errors) error {
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
