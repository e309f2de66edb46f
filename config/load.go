package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads, decodes and validates the configuration file at path. On
// success the Config is complete: defaults applied, relative paths made
// absolute against the file's directory, secrets read. On failure the
// error is an Errors listing every problem found, in line order.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Errors{{File: path, Msg: "cannot read the configuration: " + err.Error()}}
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration held in data, as Load does.
// path names the file in errors, and relative paths in the configuration
// (and password files) are taken relative to its directory.
func Parse(path string, data []byte) (*Config, error) {
	s := newState(path)
	dir := "."
	if abs, err := filepath.Abs(path); err == nil {
		dir = filepath.Dir(abs)
	}

	if e := scanText(data); e != nil {
		e.File = path
		return nil, Errors{e}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return nil, Errors{syntaxError(path, data, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, Errors{syntaxError(path, data, err)}
	default:
		line := extra.Line
		empty := len(extra.Content) == 0 || extra.Content[0].Kind == yaml.ScalarNode && extra.Content[0].Tag == tagNull && extra.Content[0].Value == ""
		if !empty {
			line = extra.Content[0].Line
		} else if l := lastDocumentStart(data); l > 0 {
			line = l // an empty document: its --- line
		}
		line = min(line, bytes.Count(data, []byte("\n"))+1)
		return nil, Errors{{File: path, Line: line, Msg: "a second YAML document (after ---): want a single document per file"}}
	}

	cfg := &Config{Path: path}
	s.decodeDocument(&root, cfg)
	c := &checker{state: s, cfg: cfg, dir: dir}
	c.validate()
	if len(s.errs) > 0 {
		sortErrors(s.errs)
		return nil, s.errs
	}
	c.applyDefaults()
	c.warn()
	return cfg, nil
}

// lastDocumentStart is the line of the last "---" document marker in
// data, or 0.
func lastDocumentStart(data []byte) int {
	last := 0
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") {
			last = i + 1
		}
	}
	return last
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
	// flowCommentRE finds a # where a value was meant: "[#ops", ", #dev".
	flowCommentRE = regexp.MustCompile(`[\[{,]\s*#`)
)

// syntaxError turns a YAML parser error into an Error with its line.
func syntaxError(path string, data []byte, err error) *Error {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if yamlAnchorRE.MatchString(err.Error()) {
		msg += ": want an alias (*name) of an anchor (&name) defined above it"
	}
	// yaml.v3 often points at the start of the enclosing block (or counts
	// from 0). The first line after the longest prefix of the file that
	// still parses is where the document went wrong.
	if len(lines) <= maxSyntaxSearch {
		line = 1
		for j := len(lines) - 1; j > 0; j-- {
			var n yaml.Node
			if yaml.Unmarshal([]byte(strings.Join(lines[:j], "\n")+"\n"), &n) == nil {
				line = j + 1
				break
			}
		}
	}
	line = min(max(line, 1), len(lines))
	if flowCommentRE.MatchString(lines[line-1]) {
		msg += " (an unquoted # starts a YAML comment: quote values such as \"#ops\")"
	}
	return &Error{File: path, Line: line, Msg: "invalid YAML: " + msg}
}

// maxSyntaxSearch bounds the files whose syntax errors are located by
// re-parsing prefixes (quadratic in the number of lines).
const maxSyntaxSearch = 5000

// scanText finds what the YAML parser would refuse without saying where
// (invalid UTF-8 and control characters), and the line breaks other than
// LF and CRLF, which YAML counts as lines and editors do not.
func scanText(data []byte) *Error {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return &Error{Line: line, Msg: "invalid UTF-8: want a UTF-8 text file"}
		case r == '\n':
			line++
		case r == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			// YAML would count a line here that editors and errors do
			// not: refuse it rather than point at the wrong line.
			return &Error{Line: line, Msg: "carriage return without a line feed: want Unix (LF) or Windows (CRLF) line ends"}
		case r == '\u0085' || r == '\u2028' || r == '\u2029':
			return &Error{Line: line, Msg: "line separator " + fmt.Sprintf("U+%04X", r) + ": YAML reads it as a line break; want LF line ends (write it escaped in a double-quoted string)"}
		case r == '\t' || r == '\r' || r == '\uFEFF':
		case r < 0x20 || r == 0x7f:
			return &Error{Line: line, Msg: "control character " + strconv.QuoteRune(r) + ": want plain text (write it escaped in a double-quoted string)"}
		}
		i += size
	}
	return nil
}
