package scap

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// readGroups resolves server_groups to target lists and reads them.
func (s *Settings) readGroups() Errors {
	var errs Errors
	seen := map[string]string{} // host → group that has it
	names := map[string]bool{}
	for _, name := range s.serverGroups() {
		key := groupKey(name)
		if name == "" {
			errs = append(errs, s.keyError("server_groups", "an empty group name: want names separated by commas, such as \"canary, default\""))
			continue
		}
		if names[name] {
			errs = append(errs, s.keyError("server_groups", "group %q is listed twice", name))
			continue
		}
		names[name] = true
		v, ok := s.key(key)
		if !ok {
			errs = append(errs, &Error{File: s.Keys["server_groups"].File, Line: s.Keys["server_groups"].Line, Key: key,
				Msg: fmt.Sprintf("missing: group %q needs %s, the name of its target list (a file beside scap.cfg)", name, key)})
			continue
		}
		file, e := s.targetFile(key, v)
		if e != nil {
			errs = append(errs, e)
			continue
		}
		data, err := fs.ReadFile(s.fsys, file)
		if err != nil {
			errs = append(errs, &Error{File: file, Key: key, Msg: "cannot read the target list: " + plainErr(err)})
			continue
		}
		hosts, skipped := parseTargets(data)
		for _, sk := range skipped {
			s.found = append(s.found, Unsupported{Key: fmt.Sprintf("%s line %d", key, sk.line), File: file, Line: sk.line, Why: sk.why})
		}
		g := Group{Name: name, Key: key, File: file}
		var dupOrder []string
		dups := map[string][]string{} // earlier group → hosts of g it has
		for _, h := range hosts {
			if first, dup := seen[h]; dup {
				if len(dups[first]) == 0 {
					dupOrder = append(dupOrder, first)
				}
				dups[first] = append(dups[first], h)
				continue
			}
			seen[h] = name
			g.Hosts = append(g.Hosts, h)
		}
		for _, first := range dupOrder {
			s.found = append(s.found, Unsupported{Key: key, File: file,
				Why: fmt.Sprintf("%s also in group %s, which comes first: deployed with %s only, as Scap3 does", strings.Join(dups[first], ", "), first, first)})
		}
		s.Groups = append(s.Groups, g)
	}
	return errs
}

// targetFile finds the target list named by key's value v: the
// environment's copy, else the one in scap/. Scap3 would then try
// /etc/dsh/group on the deploy host, and takes an absolute path as is;
// deploybot reads target lists from the repository only.
func (s *Settings) targetFile(key string, v Value) (string, *Error) {
	name := v.Value
	switch {
	case name == "":
		return "", &Error{File: v.File, Line: v.Line, Key: key, Msg: "empty: want the name of a target list beside scap.cfg"}
	case strings.HasPrefix(name, "/"):
		return "", &Error{File: v.File, Line: v.Line, Key: key,
			Msg: fmt.Sprintf("%s is outside the deploy repository: deploybot reads target lists from the repository (scap/ or scap/environments/<env>/); copy the list there", name)}
	}
	rel := path.Clean(name)
	if !fs.ValidPath(rel) || rel == "." || strings.HasPrefix(rel, "../") || rel == ".." {
		return "", &Error{File: v.File, Line: v.Line, Key: key, Msg: fmt.Sprintf("invalid target list %q: want a file name beside scap.cfg", name)}
	}
	if p, ok := s.envFile(rel); ok {
		return p, nil
	}
	return "", &Error{File: v.File, Line: v.Line, Key: key,
		Msg: fmt.Sprintf("target list %q not found in %s (Scap3 would also look in /etc/dsh/group on the deploy host; deploybot reads target lists from the repository only)", name, strings.Join(s.envPaths(rel), " or "))}
}

// skippedLine is a line of a target list that holds no host, or more
// than one.
type skippedLine struct {
	line int
	why  string
}

// parseTargets reads a target list as Scap3 does: each line that starts
// with a host name character (letters, digits, '_', '.', '-') gives the
// host name those characters spell; every other line is skipped. Lines
// Scap3 skips or reads only in part are returned, except blank lines and
// comments.
func parseTargets(data []byte) (hosts []string, skipped []skippedLine) {
	seen := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if i == 0 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		end := 0
		for end < len(line) && isHostChar(line[end]) {
			end++
		}
		rest := strings.TrimSpace(line[end:])
		if end == 0 {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				skipped = append(skipped, skippedLine{n, fmt.Sprintf("%q does not start with a host name (an indented line, say): Scap3 skips it, and so does deploybot", t)})
			}
			continue
		}
		if rest != "" && !strings.HasPrefix(rest, "#") {
			skipped = append(skipped, skippedLine{n, fmt.Sprintf("only %q is read as a host; Scap3 ignores %q after it, and so does deploybot", line[:end], rest)})
		}
		h := line[:end]
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts, skipped
}

func isHostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}
