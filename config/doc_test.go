package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// configDoc is the operators' reference of every configuration key.
const configDoc = "../docs/configuration.md"

// docKey is one key of the YAML schema, as docs/configuration.md names it:
// "irc.sasl.account", "services.<name>.checks[].timeout".
type docKey struct {
	path  string // the dotted path; maps add ".<name>", lists of mappings "[]"
	field string // Go type and field, e.g. "Service.BuildCommand"
	typ   string // what the doc's type column must say, e.g. "duration"
}

// parent is the key whose table path belongs in: the path without its last
// element ("" for a top-level key).
func (k docKey) parent() string {
	p := strings.TrimSuffix(k.path, "[]")
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(p[:i], "[]")
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// scalarType names the YAML types of the schema's own scalar types, which
// decode themselves from one YAML scalar.
var scalarType = map[reflect.Type]string{
	reflect.TypeFor[Duration]():     "duration",
	reflect.TypeFor[FailureLimit](): "count or percentage",
	reflect.TypeFor[Host]():         "host",
	reflect.TypeFor[Secret]():       "string",
}

// isScalar reports whether values of t are one YAML scalar: Go's basic
// kinds, and the schema's types that decode themselves.
func isScalar(t reflect.Type) bool {
	return t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(yamlUnmarshaler) || t.Implements(yamlUnmarshaler)
}

// docType is what the type column of t's row must contain.
func docType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := scalarType[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "int"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Map, reflect.Struct:
		return "mapping"
	case reflect.Slice:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if !isScalar(e) {
			return "list of mappings"
		}
		return "list of " + docType(e) + "s"
	}
	return t.Kind().String()
}

// schemaKeys walks t, the type at path, by reflection: every field with a
// yaml tag is a key; mappings (structs), maps of mappings (services) and
// lists of mappings (checks, groups) are walked into.
func schemaKeys(t reflect.Type, path string) []docKey {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Map:
		if e := deref(t.Elem()); !isScalar(e) {
			return schemaKeys(e, path+".<name>")
		}
		return nil
	case t.Kind() == reflect.Slice:
		if e := deref(t.Elem()); !isScalar(e) {
			return schemaKeys(e, path+"[]")
		}
		return nil
	case t.Kind() != reflect.Struct || isScalar(t):
		return nil
	}
	var keys []docKey
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		p := tag
		if path != "" {
			p = path + "." + tag
		}
		keys = append(keys, docKey{path: p, field: t.Name() + "." + f.Name, typ: docType(f.Type)})
		keys = append(keys, schemaKeys(f.Type, p)...)
	}
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// docRow is one row of a key table in docs/configuration.md:
// | `key` | type | default | example | meaning |
type docRow struct {
	line  int
	key   string
	cells []string
}

// readConfigDoc returns the key rows of docs/configuration.md and its
// headings, keyed by the key each names in backquotes.
func readConfigDoc(t *testing.T) (rows []docRow, headings map[string]string) {
	t.Helper()
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatalf("%v: every configuration key is documented there", err)
	}
	headings = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			if strings.Contains(strings.ToLower(line), "top-level") {
				headings["top-level"] = line
			}
			if a, b, ok := strings.Cut(line, "`"); ok {
				if key, _, ok := strings.Cut(b, "`"); ok {
					headings[key] = strings.TrimSpace(a + "`" + b)
				}
			}
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, docRow{line: n, key: strings.Trim(cells[0], "`"), cells: cells})
	}
	return rows, headings
}

// TestConfigurationDocCoversEveryField fails when a configuration key is
// not documented in docs/configuration.md (with its type, default, an
// example and what it does), and when the doc names a key the schema no
// longer has. Each failure says which row to add or remove, and where.
func TestConfigurationDocCoversEveryField(t *testing.T) {
	keys := schemaKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 60 {
		t.Fatalf("the schema walk found %d keys; it lost its way", len(keys))
	}
	rows, headings := readConfigDoc(t)
	for _, p := range docProblems(keys, rows, headings) {
		t.Error(p)
	}
}

// docProblems compares the schema's keys with the doc's rows.
func docProblems(keys []docKey, rows []docRow, headings map[string]string) []string {
	var out []string
	byKey := map[string]docRow{}
	for _, r := range rows {
		if old, dup := byKey[r.key]; dup {
			out = append(out, fmt.Sprintf("%s:%d: `%s` is documented twice (also line %d): keep one row", configDoc, r.line, r.key, old.line))
		}
		byKey[r.key] = r
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k.path] = true
		r, ok := byKey[k.path]
		if !ok {
			out = append(out, missingKeyMsg(k, headings))
			continue
		}
		out = append(out, rowProblems(k, r)...)
	}
	var stale []string
	for key, r := range byKey {
		if !known[key] {
			stale = append(stale, fmt.Sprintf("%s:%d: `%s` is documented but the configuration has no such key (config.Config's yaml tags): remove the row, or fix its name", configDoc, r.line, key))
		}
	}
	sort.Strings(stale)
	return append(out, stale...)
}

// missingKeyMsg tells whoever added k what to add to the doc, and where.
func missingKeyMsg(k docKey, headings map[string]string) string {
	p := k.parent()
	if p == "" {
		p = "top-level"
	}
	where := fmt.Sprintf("a new section \"### `%s`\" with a key table", p)
	if h, ok := headings[p]; ok {
		where = fmt.Sprintf("the table under the heading %q", h)
	}
	return fmt.Sprintf("config key %s (%s) is not documented in %s: add to %s the row\n"+
		"| `%s` | %s | <default> | <example> | <what it does> |",
		k.path, k.field, configDoc, where, k.path, k.typ)
}

// rowProblems checks that r documents k completely: five cells, none
// empty, and the type column naming k's type.
func rowProblems(k docKey, r docRow) []string {
	if len(r.cells) != 5 {
		return []string{fmt.Sprintf("%s:%d: `%s` has %d cells, want 5: | `key` | type | default | example | what it does |", configDoc, r.line, k.path, len(r.cells))}
	}
	var out []string
	for i, name := range []string{"key", "type", "default", "example", "what it does"} {
		if r.cells[i] == "" {
			out = append(out, fmt.Sprintf("%s:%d: `%s`: the %s cell is empty", configDoc, r.line, k.path, name))
		}
	}
	if !strings.Contains(r.cells[1], k.typ) {
		out = append(out, fmt.Sprintf("%s:%d: `%s` is a %s (%s), but its type cell says %q", configDoc, r.line, k.path, k.typ, k.field, r.cells[1]))
	}
	return out
}

// The check itself: a field added to the schema is found missing, with a
// message naming the row and the section; a row for a key that is gone, an
// incomplete row and a wrong type are found too.
func TestConfigurationDocCheckFails(t *testing.T) {
	type Extra struct {
		Known string `yaml:"known"`
		Build string `yaml:"build_command"`
	}
	type Root struct {
		Services map[string]*Extra `yaml:"services"`
		Checks   []Extra           `yaml:"checks"`
		Wait     Duration          `yaml:"wait"`
		Hosts    []Host            `yaml:"hosts"`
		Internal string            `yaml:"-"`
	}
	keys := schemaKeys(reflect.TypeFor[Root](), "")
	var got []string
	for _, k := range keys {
		got = append(got, k.path+" "+k.typ)
	}
	want := []string{
		"services mapping", "services.<name>.known string", "services.<name>.build_command string",
		"checks list of mappings", "checks[].known string", "checks[].build_command string",
		"wait duration", "hosts list of hosts",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("schemaKeys = %q\nwant %q", got, want)
	}
	row := func(line int, cells ...string) docRow {
		return docRow{line: line, key: strings.Trim(cells[0], "`"), cells: cells}
	}
	rows := []docRow{
		row(1, "`services`", "mapping", "none", "`{}`", "the services"),
		row(2, "`services.<name>.known`", "string", "none", "`x`", "known"),
		row(3, "`checks`", "list of mappings", "none", "`[]`", "checks"),
		row(4, "`checks[].known`", "string", "", "`x`", "known"),
		row(5, "`checks[].build_command`", "string", "none", "`make`", "build"),
		row(6, "`wait`", "int", "10s", "`wait: 5s`", "wait"),
		row(7, "`hosts`", "list of hosts", "none", "`[a]`", "hosts"),
		row(8, "`gone`", "bool", "false", "`gone: true`", "removed"),
	}
	headings := map[string]string{"services.<name>": "## `services.<name>`: one service"}
	problems := strings.Join(docProblems(keys, rows, headings), "\n")
	for _, w := range []string{
		"config key services.<name>.build_command (Extra.Build) is not documented",
		"the table under the heading \"## `services.<name>`: one service\" the row\n| `services.<name>.build_command` | string | <default> | <example> | <what it does> |",
		":4: `checks[].known`: the default cell is empty",
		":6: `wait` is a duration (Root.Wait), but its type cell says \"int\"",
		":8: `gone` is documented but the configuration has no such key",
	} {
		if !strings.Contains(problems, w) {
			t.Errorf("problems lack %q:\n%s", w, problems)
		}
	}
	if n := strings.Count(problems, configDoc); n != 4 {
		t.Errorf("%d problems, want 4:\n%s", n, problems)
	}
	delete(headings, "services.<name>")
	if msg := missingKeyMsg(keys[2], headings); !strings.Contains(msg, "a new section \"### `services.<name>`\"") {
		t.Errorf("message for a key without a section: %q", msg)
	}
}

// The YAML examples of docs/configuration.md load.
func TestConfigurationDocExamplesLoad(t *testing.T) {
	t.Setenv("DEPLOYBOT_SASL_PASSWORD", "example-password")
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(data), "```yaml\n")[1:] {
		text, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatalf("unterminated yaml block in %s", configDoc)
		}
		n++
		if _, err := Parse(configDoc, []byte(text)); err != nil {
			t.Errorf("the YAML example %d of %s does not load: %v", n, configDoc, err)
		}
	}
	if n == 0 {
		t.Errorf("%s has no YAML example", configDoc)
	}
}
