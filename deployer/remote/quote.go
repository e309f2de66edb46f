package remote

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ShellQuote returns s as one POSIX shell word that the shell reads back as
// exactly s: s between single quotes, each single quote in s written as
//
//	'\''
//
// (close the quotes, an escaped quote, reopen). A non-empty s made only of
// letters, digits and /._-+,:@% is returned as it is, for readable
// journals. Nothing inside single quotes is special ($, `, \, ", newlines),
// so no value quoted with it can run anything. Every value the scripts of
// this package place into a script goes through it.
//
// A shell word cannot hold a NUL byte: ShellQuote panics on one. Values
// reach it only after validation (Target.Validate, ValidSHA), which rejects
// NUL, so a panic here is a bug in this package.
func ShellQuote(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		panic("remote.ShellQuote: NUL byte in a shell word")
	}
	if s != "" && safeUnquoted(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// safeUnquoted reports whether s can stand in a script without quotes:
// only characters no POSIX shell treats specially anywhere in a word.
func safeUnquoted(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == ',' || c == ':' || c == '@' || c == '%':
		default:
			return false
		}
	}
	// '~' (expands at the start of a word) and '=' (makes an assignment
	// of a leading word) are not in the set, nor any glob character.
	return true
}

var shaRe = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// ValidSHA reports whether s is a full git object name: 40 (SHA-1) or 64
// (SHA-256) lowercase hexadecimal digits. Only such names are deployed.
// The all-zero name (git's "no object") is not valid.
func ValidSHA(s string) bool { return shaRe.MatchString(s) && strings.Trim(s, "0") != "" }

func checkSHA(sha string) error {
	if !ValidSHA(sha) {
		return fmt.Errorf("invalid revision %q: want a full sha1 (40 lowercase hex digits)", clip(sha, 80))
	}
	return nil
}

var (
	serviceRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	submoduleRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$`)
	opIDRe      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,80}$`)
)

// Validate checks every field of t that a script uses. Deploy, Finalize,
// Rollback, State, DeployScript and CheckCommand call it; an invalid
// Target never reaches a shell.
func (t Target) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if t.Service != "" && !serviceRe.MatchString(t.Service) {
		bad("invalid service name %q: want ^[a-z0-9][a-z0-9._-]{0,63}$", clip(t.Service, 80))
	}
	switch {
	case t.Dir == "":
		bad("target dir is empty")
	case !utf8.ValidString(t.Dir) || hasControl(t.Dir):
		bad("invalid target dir %q: control characters or invalid UTF-8", clip(t.Dir, 200))
	case !path.IsAbs(t.Dir) || path.Clean(t.Dir) != t.Dir || t.Dir == "/":
		bad("invalid target dir %q: want an absolute, clean path other than /", clip(t.Dir, 200))
	}
	if t.ServeURL == "" {
		bad("serve URL is empty")
	} else if u, err := url.Parse(t.ServeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(t.ServeURL, "/") || hasControl(t.ServeURL) || strings.ContainsAny(t.ServeURL, " \"\\'") {
		bad("invalid serve URL %q: want http(s)://host[:port][/path] without a trailing slash, query or quotes", clip(t.ServeURL, 200))
	}
	if t.Repo == "" || !utf8.ValidString(t.Repo) || hasControl(t.Repo) || path.IsAbs(t.Repo) || path.Clean(t.Repo) != t.Repo ||
		t.Repo == "." || t.Repo == ".." || strings.HasPrefix(t.Repo, "../") {
		bad("invalid repo %q: want a clean relative path without ..", clip(t.Repo, 200))
	}
	for _, s := range t.Submodules {
		if !submoduleRe.MatchString(s) || strings.Contains(s, "//") || strings.HasSuffix(s, "/") ||
			slicesContains(strings.Split(s, "/"), "..") || slicesContains(strings.Split(s, "/"), ".") {
			bad("invalid submodule name %q: want letters, digits and ._-/ without . or .. components", clip(s, 200))
		}
	}
	if len(t.Pins) > 0 && len(t.Pins) != len(t.Submodules) {
		bad("%d submodule pins for %d submodules", len(t.Pins), len(t.Submodules))
	}
	for _, p := range t.Pins {
		if !validModulePath(p.Path) {
			bad("invalid submodule path %q: want a relative path without empty, . or .. components", clip(p.Path, 200))
		}
		if !ValidSHA(p.Commit) {
			bad("invalid submodule commit %q: want a full git object name", clip(p.Commit, 80))
		}
	}
	if t.Undo != "" && !ValidSHA(t.Undo) {
		bad("invalid revision to undo %q: want a full git object name", clip(t.Undo, 80))
	}
	if strings.IndexByte(t.Restart, 0) >= 0 {
		bad("restart command contains a NUL byte")
	}
	if t.KeepRevs < 0 {
		bad("keep_revs %d: want at least 1", t.KeepRevs)
	}
	errs = append(errs, validateConfigFiles(t.ConfigFiles)...)
	if t.OpID != "" && !opIDRe.MatchString(t.OpID) {
		bad("invalid operation id %q: want 1 to 80 letters, digits and ._-", clip(t.OpID, 100))
	}
	return errors.Join(errs...)
}

// validModulePath reports whether p is a path inside a revision: relative,
// printable, no empty, "." or ".." component.
func validModulePath(p string) bool {
	if p == "" || !utf8.ValidString(p) || hasControl(p) || strings.HasPrefix(p, "/") {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// hasControl reports whether s has a C0 control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
