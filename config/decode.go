package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file decodes a yaml.Node tree into Config, strictly: every key must
// be known, every value of the expected kind. It does not stop at the first
// problem: it records each one with its line and key path, and remembers
// the line of every key it saw so that validation can point at it too.

const (
	tagNull      = "!!null"
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagTimestamp = "!!timestamp"
	tagMerge     = "!!merge"

	maxDepth = 64        // deeper nesting (or an alias cycle) is refused
	maxNodes = 1_000_000 // alias expansion beyond this is refused
)

// state is what decoding and validation share: where errors go, and where
// each key was.
type state struct {
	file  string
	errs  Errors
	lines map[string]int  // key path → line of the key (or list item)
	bad   map[string]bool // key paths whose value failed to decode
	nodes int
}

func newState(file string) *state {
	return &state{file: file, lines: map[string]int{}, bad: map[string]bool{}}
}

// errAt records an error at an explicit line and marks the key bad, so
// that validation does not report the same value twice.
func (s *state) errAt(line int, key, format string, args ...any) {
	if line <= 0 {
		line = s.lineOf(key)
	}
	s.errs = append(s.errs, &Error{File: s.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	if key != "" {
		s.bad[key] = true
	}
}

// has reports whether key was written in the file.
func (s *state) has(key string) bool {
	_, ok := s.lines[key]
	return ok
}

// isBad reports whether key, or a key above it, failed to decode.
func (s *state) isBad(key string) bool {
	for {
		if s.bad[key] {
			return true
		}
		parent, ok := parentPath(key)
		if !ok {
			return false
		}
		key = parent
	}
}

// lineOf is the line of key, or of the nearest key above it that was
// written; 1 when none was.
func (s *state) lineOf(key string) int {
	for {
		if l := s.lines[key]; l > 0 {
			return l
		}
		parent, ok := parentPath(key)
		if !ok {
			return 1
		}
		key = parent
	}
}

// ---- key paths ----

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// field is the path of a struct field or of a map entry below parent:
// parent.key, or parent["key"] when key is not a plain word.
func field(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// index is the path of list item i below parent: parent[i].
func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last element of a key path.
func parentPath(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	last := 0
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			last = i
			i++
		case '[':
			last = i
			if i+1 < len(p) && p[i+1] == '"' {
				q, err := strconv.QuotedPrefix(p[i+1:])
				if err != nil {
					return p[:last], true
				}
				i += 1 + len(q) + 1
			} else if j := strings.IndexByte(p[i:], ']'); j >= 0 {
				i += j + 1
			} else {
				return p[:last], true
			}
		default:
			i++
		}
	}
	return p[:last], true
}

// ---- decoding ----

var (
	durationType     = reflect.TypeFor[Duration]()
	failureLimitType = reflect.TypeFor[FailureLimit]()
	hostType         = reflect.TypeFor[Host]()
)

// decodeDocument decodes the root node into cfg.
func (s *state) decodeDocument(root *yaml.Node, cfg *Config) {
	if root == nil || root.Kind == 0 {
		return // empty file: validation reports what is missing
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return
	}
	s.lines[""] = root.Line
	s.decode(root, reflect.ValueOf(cfg).Elem(), "", 0)
}

// spend counts one more value decoded, and refuses once a document
// expands (through aliases and merge keys) beyond maxNodes values.
func (s *state) spend(line int, key string) bool {
	s.nodes++
	if s.nodes == maxNodes+1 {
		s.errAt(line, key, "the document expands to more than %d values through aliases: want a smaller document", maxNodes)
	}
	return s.nodes <= maxNodes
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// deref follows aliases.
func (s *state) deref(n *yaml.Node, key string, depth int) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || depth > maxDepth {
			s.errAt(n.Line, key, "alias *%s cannot be resolved (is it recursive?)", n.Value)
			return nil, false
		}
		n = n.Alias
		depth++
	}
	return n, true
}

// describe names what a node is, for "want X, got Y". It never quotes a
// value, so that nothing secret can leak through a type error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagNull:
			return "nothing"
		case tagInt:
			return "an integer"
		case tagFloat:
			return "a number"
		case tagBool:
			return "a boolean"
		case tagStr:
			return "a string"
		case tagTimestamp:
			return "a timestamp"
		}
		return "a value tagged " + n.Tag
	}
	return "something else"
}

func (s *state) typeErr(n *yaml.Node, key, want string) {
	s.errAt(n.Line, key, "want %s, got %s", want, describe(n))
}

// decode decodes n into v, whose path is key.
func (s *state) decode(n *yaml.Node, v reflect.Value, key string, depth int) {
	n, ok := s.deref(n, key, depth)
	if !ok {
		return
	}
	if depth > maxDepth {
		s.errAt(n.Line, key, "nested too deeply")
		return
	}
	if !s.spend(n.Line, key) {
		return
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind == yaml.ScalarNode && !knownScalarTag(n) {
		s.errAt(n.Line, key, "unsupported YAML tag %s (an unquoted '!' starts a tag: quote the value)", n.Tag)
		return
	}
	switch v.Type() {
	case durationType:
		if n.Kind != yaml.ScalarNode {
			s.typeErr(n, key, "a Go duration such as 30s, 10m or 1h30m")
			return
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			s.errAt(n.Line, key, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(d))
		return
	case failureLimitType:
		if n.Kind != yaml.ScalarNode {
			s.typeErr(n, key, `a number of hosts such as 2, or a percentage such as "10%"`)
			return
		}
		f, err := ParseFailureLimit(n.Value)
		if err != nil {
			s.errAt(n.Line, key, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(f))
		return
	case hostType:
		if n.Kind != yaml.ScalarNode {
			s.typeErr(n, key, "a host: name or name:port")
			return
		}
		h, err := ParseHost(n.Value)
		if err != nil {
			s.errAt(n.Line, key, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(h))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		s.decode(n, v.Elem(), key, depth+1)
	case reflect.Struct:
		s.decodeStruct(n, v, key, depth)
	case reflect.Map:
		s.decodeMap(n, v, key, depth)
	case reflect.Slice:
		s.decodeSlice(n, v, key, depth)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.typeErr(n, key, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt || n.Decode(&i) != nil {
			s.typeErr(n, key, "an integer")
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != tagInt && n.ShortTag() != tagFloat) || n.Decode(&f) != nil {
			s.typeErr(n, key, "a number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool || n.Decode(&b) != nil {
			s.typeErr(n, key, "true or false")
			return
		}
		v.SetBool(b)
	default:
		panic("config: cannot decode into " + v.Type().String())
	}
}

// knownScalarTag reports whether a scalar's tag is one of YAML's core
// types. Anything else ("!foo", "!!binary") is refused.
func knownScalarTag(n *yaml.Node) bool {
	switch n.ShortTag() {
	case tagNull, tagStr, tagInt, tagFloat, tagBool, tagTimestamp:
		return true
	}
	return false
}

// entry is one key/value pair of a mapping, after merge keys (<<) are
// expanded.
type entry struct {
	key, val *yaml.Node
}

// entries lists the pairs of mapping n: its own keys, then keys merged in
// with "<<" that it does not override. A key written twice is an error.
func (s *state) entries(n *yaml.Node, key string, depth int) []entry {
	var own, merged []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !s.spend(k.Line, key) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == tagMerge {
			merged = append(merged, s.mergeSources(val, key, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			s.errAt(k.Line, key, "want a plain string as key, got %s", describe(k))
			continue
		}
		own = append(own, entry{k, val})
	}
	out := make([]entry, 0, len(own)+len(merged))
	seen := map[string]int{} // key → its index in out
	for _, e := range own {
		if j, dup := seen[e.key.Value]; dup {
			s.errAt(e.key.Line, field(key, e.key.Value), "duplicate key (first written on line %d): write each key once", out[j].key.Line)
			out[j] = e
			continue
		}
		seen[e.key.Value] = len(out)
		out = append(out, e)
	}
	for _, e := range merged {
		if _, dup := seen[e.key.Value]; dup {
			continue // overridden here, or merged from an earlier source
		}
		seen[e.key.Value] = len(out)
		out = append(out, e)
	}
	return out
}

// mergeSources expands the value of a "<<" key: a mapping or a list of
// mappings (usually aliases).
func (s *state) mergeSources(val *yaml.Node, key string, depth int) []entry {
	if depth > maxDepth {
		s.errAt(val.Line, key, "merge keys nested too deeply")
		return nil
	}
	val, ok := s.deref(val, key, depth)
	if !ok {
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return s.entries(val, key, depth+1)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range val.Content {
			item, ok := s.deref(item, key, depth)
			if !ok {
				continue
			}
			if item.Kind != yaml.MappingNode {
				s.errAt(item.Line, key, "<<: want a mapping or a list of mappings to merge, got %s", describe(item))
				continue
			}
			out = append(out, s.entries(item, key, depth+1)...)
		}
		return out
	}
	s.errAt(val.Line, key, "<<: want a mapping or a list of mappings to merge, got %s", describe(val))
	return nil
}

// structFields maps the YAML names of t's fields to their indexes.
func structFields(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
		names = append(names, tag)
	}
	return m, names
}

func (s *state) decodeStruct(n *yaml.Node, v reflect.Value, key string, depth int) {
	if n.Kind != yaml.MappingNode {
		s.typeErr(n, key, "a mapping")
		return
	}
	fields, names := structFields(v.Type())
	for _, e := range s.entries(n, key, depth) {
		name := e.key.Value
		p := field(key, name)
		i, ok := fields[name]
		if !ok {
			s.errAt(e.key.Line, p, "%s", unknownKeyMsg(v.Type(), name, names))
			continue
		}
		s.lines[p] = e.key.Line
		s.decode(e.val, v.Field(i), p, depth+1)
	}
}

// unknownKeyMsg says that name is not a key of the struct t, suggesting
// the closest known key.
func unknownKeyMsg(t reflect.Type, name string, names []string) string {
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" && bestD <= max(1, len(name)/3) {
		return fmt.Sprintf("unknown key %q: did you mean %q?", name, best)
	}
	if t == reflect.TypeFor[SASL]() {
		return fmt.Sprintf("unknown key %q: a password is never written in the configuration; set password_file (a file holding it) or password_env (an environment variable holding it)", name)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return fmt.Sprintf("unknown key %q: want one of %s", name, strings.Join(sorted, ", "))
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours cost 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func (s *state) decodeMap(n *yaml.Node, v reflect.Value, key string, depth int) {
	if n.Kind != yaml.MappingNode {
		s.typeErr(n, key, "a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, e := range s.entries(n, key, depth) {
		name := e.key.Value
		p := field(key, name)
		s.lines[p] = e.key.Line
		ev := reflect.New(et).Elem()
		s.decode(e.val, ev, p, depth+1)
		if ev.Kind() == reflect.Pointer && ev.IsNil() {
			ev.Set(reflect.New(et.Elem())) // "name:" with no value: an empty entry
		}
		v.SetMapIndex(reflect.ValueOf(name), ev)
	}
}

func (s *state) decodeSlice(n *yaml.Node, v reflect.Value, key string, depth int) {
	if n.Kind != yaml.SequenceNode {
		s.typeErr(n, key, "a list")
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := index(key, i)
		s.lines[p] = item.Line
		if r, ok := s.deref(item, p, depth); ok && isNull(r) {
			s.errAt(item.Line, p, "empty list item (an unquoted # starts a YAML comment: quote values such as \"#channel\")")
			continue
		}
		s.decode(item, out.Index(i), p, depth+1)
	}
	v.Set(out)
}
