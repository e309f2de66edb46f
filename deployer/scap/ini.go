package scap

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"unicode"
)

// The INI dialect of scap.cfg is Python's configparser with its defaults,
// which is what Scap3 reads it with:
//
//   - "[name]" starts a section; "[DEFAULT]" holds defaults for every other
//     section;
//   - "key = value" or "key: value" (the first '=' or ':' splits); keys are
//     case-insensitive (configparser lowercases them), values are trimmed;
//   - a line indented deeper than its key continues the key's value (the
//     lines are joined with "\n"); blank lines inside such a value are kept,
//     trailing ones dropped;
//   - a line whose first non-blank character is '#' or ';' is a comment,
//     also inside a multi-line value; there are no inline comments ("a = b
//     # c" is the value "b # c");
//   - a key or section given twice in one file is an error; a later file
//     (the environment's scap.cfg) overrides an earlier one key by key;
//   - no interpolation: Scap3 reads values raw.

// iniOption is one "key = value" of a section.
type iniOption struct {
	// Key is the key as written (trimmed); compare with Name.
	Key string
	// Name is the key lowercased, as configparser keys it.
	Name  string
	Value string
	File  string
	Line  int
}

// iniSection is one [section] of one or more files, options in the order
// they were first set.
type iniSection struct {
	Name    string
	File    string
	Line    int
	Options []*iniOption
	byName  map[string]*iniOption
}

func (s *iniSection) get(name string) (*iniOption, bool) {
	o, ok := s.byName[name]
	return o, ok
}

func (s *iniSection) set(o *iniOption) {
	if old, ok := s.byName[o.Name]; ok {
		*old = *o
		return
	}
	s.Options = append(s.Options, o)
	s.byName[o.Name] = o
}

// iniFile is the sections read from one or more files, in the order they
// first appeared.
type iniFile struct {
	Sections []*iniSection
	byName   map[string]*iniSection
}

func newINI() *iniFile {
	return &iniFile{byName: map[string]*iniSection{}}
}

func (f *iniFile) section(name string) (*iniSection, bool) {
	s, ok := f.byName[name]
	return s, ok
}

// parse reads one file into f; keys it sets replace those already there.
// Every malformed line is reported.
func (f *iniFile) parse(file string, data []byte) Errors {
	var errs Errors
	bad := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	type pending struct {
		opt   *iniOption
		sect  *iniSection
		lines []string
	}
	var (
		cur         *iniSection
		cont        *pending // the option whose value continuation lines extend
		indent      int
		seenSection = map[string]bool{}
		seenOption  = map[string]bool{}
	)
	flush := func() {
		if cont == nil {
			return
		}
		cont.opt.Value = strings.TrimRightFunc(strings.Join(cont.lines, "\n"), unicode.IsSpace)
		cont.sect.set(cont.opt)
		cont = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\uFEFF")
		}
		text := strings.TrimSpace(raw)
		if strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";") {
			continue
		}
		if text == "" {
			if cont != nil {
				cont.lines = append(cont.lines, "")
			}
			continue
		}
		lead := len(raw) - len(strings.TrimLeftFunc(raw, unicode.IsSpace))
		if cont != nil && lead > indent {
			cont.lines = append(cont.lines, text)
			continue
		}
		flush()
		indent = lead
		if j := strings.LastIndex(text, "]"); strings.HasPrefix(text, "[") && j > 1 {
			// As configparser: text after the last ']' is ignored.
			name := text[1:j]
			if seenSection[name] {
				bad(n, "section [%s] appears twice in this file", name)
			}
			seenSection[name] = true
			s, ok := f.byName[name]
			if !ok {
				s = &iniSection{Name: name, File: file, Line: n, byName: map[string]*iniOption{}}
				f.byName[name] = s
				f.Sections = append(f.Sections, s)
			}
			cur = s
			continue
		}
		if cur == nil {
			bad(n, "%q is before any [section]: want a [global] section first", text)
			continue
		}
		i := strings.IndexAny(text, "=:")
		if i < 0 {
			bad(n, "%q is neither a [section] nor key = value (or key: value)", text)
			continue
		}
		key := strings.TrimSpace(text[:i])
		if key == "" {
			bad(n, "%q has no key before %q", text, text[i:i+1])
			continue
		}
		name := strings.ToLower(key)
		if seenOption[cur.Name+"\x00"+name] {
			bad(n, "%s is set twice in [%s] of this file", name, cur.Name)
		}
		seenOption[cur.Name+"\x00"+name] = true
		val := strings.TrimSpace(text[i+1:])
		cont = &pending{
			opt:   &iniOption{Key: key, Name: name, File: file, Line: n},
			sect:  cur,
			lines: []string{val},
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		bad(n+1, "cannot read: %v", err)
	}
	return errs
}
