package scap

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestINI(t *testing.T) {
	base := `# a comment
; another
[DEFAULT]
batch_size = 10

[global]
Git_Repo: citoid/deploy
service_name=citoid
multi: first
    second

    # a comment inside the value
    third
after = x = y
colon: a=b:c
empty =
inline: value # not a comment
[deploy1001.eqiad.wmnet] trailing text
ssh_user: other
`
	env := `[global]
service_name: citoid-beta
new_key: 1
`
	f := newINI()
	if errs := f.parse("scap/scap.cfg", []byte(base)); errs != nil {
		t.Fatal(errs)
	}
	if errs := f.parse("scap/environments/beta/scap.cfg", []byte(env)); errs != nil {
		t.Fatal(errs)
	}
	g, ok := f.section("global")
	if !ok {
		t.Fatal("no [global]")
	}
	want := []struct{ name, key, value, file string }{
		{"git_repo", "Git_Repo", "citoid/deploy", "scap/scap.cfg"},
		{"service_name", "service_name", "citoid-beta", "scap/environments/beta/scap.cfg"},
		{"multi", "multi", "first\nsecond\n\nthird", "scap/scap.cfg"},
		{"after", "after", "x = y", "scap/scap.cfg"},
		{"colon", "colon", "a=b:c", "scap/scap.cfg"},
		{"empty", "empty", "", "scap/scap.cfg"},
		{"inline", "inline", "value # not a comment", "scap/scap.cfg"},
		{"new_key", "new_key", "1", "scap/environments/beta/scap.cfg"},
	}
	var got []string
	for _, o := range g.Options {
		got = append(got, o.Name)
	}
	var names []string
	for _, w := range want {
		names = append(names, w.name)
		o, ok := g.get(w.name)
		if !ok {
			t.Errorf("%s: missing", w.name)
			continue
		}
		if o.Key != w.key || o.Value != w.value || o.File != w.file {
			t.Errorf("%s: got key %q value %q from %s, want %q %q from %s", w.name, o.Key, o.Value, o.File, w.key, w.value, w.file)
		}
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("options in order %v, want %v", got, names)
	}
	if o, _ := g.get("git_repo"); o.Line != 7 {
		t.Errorf("git_repo on line %d, want 7", o.Line)
	}
	if d, ok := f.section("DEFAULT"); !ok || len(d.Options) != 1 || d.Options[0].Value != "10" {
		t.Errorf("[DEFAULT] = %+v", d)
	}
	h, ok := f.section("deploy1001.eqiad.wmnet")
	if !ok || h.Line != 18 || len(h.Options) != 1 {
		t.Errorf("host section = %+v", h)
	}
	var order []string
	for _, s := range f.Sections {
		order = append(order, s.Name)
	}
	if !reflect.DeepEqual(order, []string{"DEFAULT", "global", "deploy1001.eqiad.wmnet"}) {
		t.Errorf("sections %v", order)
	}
}

func TestINIErrors(t *testing.T) {
	tests := []struct {
		name, text string
		lines      []int
		msg        string
	}{
		{"before section", "git_repo: x\n[global]\n", []int{1}, "before any [section]"},
		{"no delimiter", "[global]\ngit_repo\n", []int{2}, "neither a [section] nor key = value"},
		{"no key", "[global]\n= x\n", []int{2}, "no key"},
		{"duplicate key", "[global]\na: 1\nA = 2\n", []int{3}, "set twice"},
		{"duplicate section", "[global]\na: 1\n[global]\nb: 2\n", []int{3}, "appears twice"},
		{"every line", "x\n[global]\ny\nz\n", []int{1, 3, 4}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := newINI().parse("f", []byte(tt.text))
			var lines []int
			for _, e := range errs {
				lines = append(lines, e.Line)
			}
			if !reflect.DeepEqual(lines, tt.lines) {
				t.Fatalf("errors %v on lines %v, want lines %v", errs, lines, tt.lines)
			}
			if !strings.Contains(errs[0].Error(), tt.msg) {
				t.Errorf("error %q does not say %q", errs[0], tt.msg)
			}
		})
	}
}

func TestParseTargets(t *testing.T) {
	text := "# comment\nhost1.example.org\n\nhost2.example.org   # trailing comment\n  indented.example.org\nhost3.example.org:2222\nhost1.example.org\r\nweird_name-1\n*\n"
	hosts, skipped := parseTargets([]byte(text))
	wantHosts := []string{"host1.example.org", "host2.example.org", "host3.example.org", "weird_name-1"}
	if !reflect.DeepEqual(hosts, wantHosts) {
		t.Errorf("hosts %v, want %v", hosts, wantHosts)
	}
	var lines []int
	for _, s := range skipped {
		lines = append(lines, s.line)
	}
	if !reflect.DeepEqual(lines, []int{5, 6, 9}) {
		t.Errorf("skipped lines %v (%+v), want 5, 6 and 9", lines, skipped)
	}
}

// The expectations are what Python's shlex.split returns.
func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"curl -Ss localhost:1134", []string{"curl", "-Ss", "localhost:1134"}, ""},
		{"a  b\tc", []string{"a", "b", "c"}, ""},
		{`echo 'single quoted $HOME' "double $HOME"`, []string{"echo", "single quoted $HOME", "double $HOME"}, ""},
		{`echo "a\"b" "a\\b" "a\nb" a\ b \x`, []string{"echo", `a"b`, `a\b`, `a\nb`, "a b", "x"}, ""},
		{`echo '' "" x''y`, []string{"echo", "", "", "xy"}, ""},
		{`echo a"b c"d`, []string{"echo", "ab cd"}, ""},
		{"echo #notcomment", []string{"echo", "#notcomment"}, ""},
		{`echo 'a\b'`, []string{"echo", `a\b`}, ""},
		{`echo "unclosed`, nil, "no closing quotation"},
		{`echo 'unclosed`, nil, "no closing quotation"},
		{`echo trailing\`, nil, "backslash"},
		{"   ", nil, ""},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("splitCommand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// A joined command line gives the shell back the very words.
func TestShellJoinRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"plain", "", "two words", "it's", `"dq"`, "$HOME", "`id`", "a\\b", "*", "~", "x=y", "line\nbreak", "-n", "%s", "if", ";", "&&"}
	cmd := shellJoin(append([]string{"printf", `%s\0`}, words...))
	out, err := exec.Command(sh, "-c", cmd).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", cmd, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("sh -c %q printed\n%q\nwant\n%q", cmd, got, words)
	}
	// A first word the shell would take for an assignment or a keyword.
	for _, first := range []string{"X=1", "if"} {
		if j := shellJoin([]string{first, "a"}); !strings.HasPrefix(j, "'"+first+"'") {
			t.Errorf("shellJoin(%q, a) = %q: the first word is not quoted", first, j)
		}
	}
}
