package scap

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Check is one check of checks.yaml, as Scap3 reads it.
type Check struct {
	// Name is the key under checks:.
	Name string
	// Type is "command" (the default), "script", "nrpe", or whatever the
	// file says.
	Type string
	// Stage is the stage after which the check runs: its stage: or
	// after: option.
	Stage string
	// Before is the stage before which the check runs (before:), if set.
	Before string
	// Command is what to run: a command line (split as a POSIX shell
	// would, then run without a shell), a script of scap/scripts, or an
	// NRPE command name, by Type.
	Command string
	// Timeout is the check's timeout; 0 when not set (Scap3's default is
	// 30s).
	Timeout time.Duration
	// Group limits the check to one server group, if set.
	Group string
	// Other lists the options Scap3 does not know (and ignores), sorted.
	Other []string
	// File and Line say where the check is defined (the environment's
	// checks.yaml when it overrides the base one).
	File string
	Line int
}

// DefaultCheckTimeout is Scap3's timeout of a check that sets none.
const DefaultCheckTimeout = 30 * time.Second

// checkOptions are the options Scap3's checks take.
var checkOptions = map[string]bool{
	"type": true, "stage": true, "after": true, "before": true,
	"command": true, "timeout": true, "group": true,
}

// readChecks reads scap/checks.yaml (or .yml), then the environment's,
// whose checks replace the base ones of the same name; an empty check
// removes it.
func (s *Settings) readChecks() Errors {
	var errs Errors
	var order []string
	byName := map[string]*Check{}
	for _, dir := range reverse(s.envPaths("")) {
		file, ok, e := s.oneOf(dir, "checks.yaml", "checks.yml")
		if e != nil {
			errs = append(errs, e)
		}
		if !ok {
			continue
		}
		checks, removed, es := s.parseChecks(file)
		errs = append(errs, es...)
		for _, name := range removed {
			delete(byName, name)
		}
		for _, c := range checks {
			if _, ok := byName[c.Name]; !ok {
				order = append(order, c.Name)
			}
			byName[c.Name] = c
		}
	}
	for _, name := range order {
		if c, ok := byName[name]; ok {
			s.Checks = append(s.Checks, *c)
		}
	}
	return errs
}

func reverse(ss []string) []string {
	out := make([]string, len(ss))
	for i, v := range ss {
		out[len(ss)-1-i] = v
	}
	return out
}

// oneOf returns the one of names that exists in dir. Scap3 globs
// "checks.y*ml" and takes one; both existing is refused here, since which
// one Scap3 takes depends on the directory order.
func (s *Settings) oneOf(dir string, names ...string) (string, bool, *Error) {
	var found []string
	for _, n := range names {
		p := dir + "/" + n
		if fi, err := fs.Stat(s.fsys, p); err == nil && !fi.IsDir() {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", false, nil
	case 1:
		return found[0], true, nil
	}
	return "", false, &Error{File: found[1], Msg: fmt.Sprintf("both %s and %s exist: keep one", found[0], found[1])}
}

// parseChecks reads one checks file: the checks it defines and the names
// it empties (overrides that remove a check).
func (s *Settings) parseChecks(file string) (checks []*Check, removed []string, errs Errors) {
	data, err := fs.ReadFile(s.fsys, file)
	if err != nil {
		return nil, nil, Errors{{File: file, Msg: "cannot read: " + plainErr(err)}}
	}
	bad := func(n *yaml.Node, key, format string, args ...any) {
		line := 0
		if n != nil {
			line = n.Line
		}
		errs = append(errs, &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, Errors{{File: file, Msg: "invalid YAML: " + err.Error()}}
	}
	if len(doc.Content) == 0 {
		bad(nil, "checks", "empty file: want a mapping with a checks: key")
		return nil, nil, errs
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		bad(root, "", "want a mapping with a checks: key")
		return nil, nil, errs
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "checks" {
			list = v
			continue
		}
		s.found = append(s.found, Unsupported{Key: k.Value, File: file, Line: k.Line, Why: "Scap3 reads only checks: from this file and ignores this key; so does deploybot"})
	}
	if list == nil {
		bad(root, "checks", "missing: Scap3 reads the checks from a checks: mapping")
		return nil, nil, errs
	}
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, nil, errs
	}
	if list.Kind != yaml.MappingNode {
		bad(list, "checks", "want a mapping of check names to their options")
		return nil, nil, errs
	}
	for i := 0; i+1 < len(list.Content); i += 2 {
		k, v := list.Content[i], list.Content[i+1]
		name := k.Value
		key := "checks." + name
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" || v.Kind == yaml.MappingNode && len(v.Content) == 0 {
			removed = append(removed, name)
			continue
		}
		if v.Kind != yaml.MappingNode {
			bad(v, key, "want a mapping of options (type, stage, command, timeout…), or nothing to disable the check")
			continue
		}
		c := &Check{Name: name, Type: "command", File: file, Line: k.Line}
		for j := 0; j+1 < len(v.Content); j += 2 {
			ok, ov := v.Content[j], v.Content[j+1]
			opt := ok.Value
			if !checkOptions[opt] {
				c.Other = append(c.Other, opt)
				continue
			}
			if ov.Kind != yaml.ScalarNode {
				bad(ov, key+"."+opt, "want a single value")
				continue
			}
			switch opt {
			case "type":
				c.Type = ov.Value
			case "stage", "after":
				c.Stage = ov.Value
			case "before":
				c.Before = ov.Value
			case "command":
				c.Command = ov.Value
			case "group":
				c.Group = ov.Value
			case "timeout":
				d, err := parseSeconds(ov.Value)
				if err != nil {
					bad(ov, key+".timeout", "%v", err)
					continue
				}
				c.Timeout = d
			}
		}
		sort.Strings(c.Other)
		checks = append(checks, c)
	}
	return checks, removed, errs
}

// parseSeconds reads a timeout in seconds, whole or not.
func parseSeconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid timeout %q: want a number of seconds such as 30", v)
	}
	if f <= 0 {
		return 0, errors.New("the timeout must be greater than 0 seconds")
	}
	if f > math.MaxInt64/float64(time.Second) {
		return 0, fmt.Errorf("timeout %q is too long", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
