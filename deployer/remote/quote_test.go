package remote

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostile are strings a shell must take literally.
var hostile = []string{
	"",
	"plain",
	"it's",
	"''",
	"'",
	`"double"`,
	`back\slash`,
	`\'`,
	"$(touch PWNED)",
	"`touch PWNED`",
	"${HOME}",
	"$HOME",
	"a;touch PWNED",
	"a && touch PWNED",
	"a | touch PWNED",
	"line1\nline2\ntouch PWNED",
	"tab\there",
	"\r\n",
	"*",
	"?",
	"[a-z]",
	"~",
	"~root",
	"a=b",
	"-n",
	"--",
	"!",
	"#comment",
	"{a,b}",
	"<in >out",
	"ünïcødé ✓",
	"\x01\x7f",
	"%s %d",
	"'$(touch PWNED)'",
	"\"$(touch PWNED)\"",
	"a'b'c'",
	strings.Repeat("x'", 300),
}

// TestShellQuoteRoundTrip: every hostile string, quoted, reaches a command
// as exactly itself under dash and bash (when present), and nothing runs.
func TestShellQuoteRoundTrip(t *testing.T) {
	var shells []string
	for _, sh := range []string{"/bin/sh", "/bin/dash", "/bin/bash", "/bin/busybox"} {
		if _, err := os.Stat(sh); err == nil {
			shells = append(shells, sh)
		}
	}
	if len(shells) == 0 {
		t.Skip("no shell")
	}
	dir := t.TempDir()
	for _, sh := range shells {
		for _, s := range hostile {
			args := []string{"-c", "printf '%s' " + ShellQuote(s)}
			if strings.HasSuffix(sh, "busybox") {
				args = append([]string{"sh"}, args...)
			}
			cmd := exec.Command(sh, args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != s {
				t.Errorf("%s: ShellQuote(%q) = %s: got %q, %v", sh, s, ShellQuote(s), out, err)
			}
			// Also inside a larger script, as the scripts use it.
			cmd = exec.Command(sh, append(args[:len(args)-1:len(args)-1], "x="+ShellQuote(s)+"; printf '%s' \"$x\"")...)
			cmd.Dir = dir
			out, err = cmd.CombinedOutput()
			if err != nil || string(out) != s {
				t.Errorf("%s: x=ShellQuote(%q): got %q, %v", sh, s, out, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
		t.Fatal("a quoted string ran a command")
	}
}

func TestShellQuoteForm(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "''",
		"/srv/deployment/x":     "/srv/deployment/x",
		"it's":                  `'it'\''s'`,
		"a b":                   "'a b'",
		"~":                     "'~'",
		"a=b":                   "'a=b'",
		"x*":                    "'x*'",
		"http://h:8081/a/.git":  "http://h:8081/a/.git",
		"refs/deploybot/revs/0": "refs/deploybot/revs/0",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestShellQuoteRejectsNUL(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ShellQuote accepted a NUL byte")
		}
	}()
	ShellQuote("a\x00b")
}

func TestValidSHA(t *testing.T) {
	good := []string{strings.Repeat("a", 40), "0123456789abcdef0123456789abcdef01234567", strings.Repeat("f", 64)}
	bad := []string{"", "HEAD", strings.Repeat("A", 40), strings.Repeat("a", 39), strings.Repeat("a", 41),
		strings.Repeat("a", 39) + "g", "$(id)" + strings.Repeat("a", 35), strings.Repeat("a", 40) + "\n", "../" + strings.Repeat("a", 37)}
	for _, s := range good {
		if !ValidSHA(s) {
			t.Errorf("ValidSHA(%q) = false", s)
		}
	}
	for _, s := range bad {
		if ValidSHA(s) {
			t.Errorf("ValidSHA(%q) = true", s)
		}
	}
}

func TestTargetValidate(t *testing.T) {
	ok := testTarget("/srv/deployment/svc/deploy", "http://10.0.0.1:8081")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid target: %v", err)
	}
	// Quotes and spaces in the directory are fine: everything is quoted.
	odd := ok
	odd.Dir = "/srv/it's a $(dir)/deploy"
	if err := odd.Validate(); err != nil {
		t.Errorf("odd but valid dir: %v", err)
	}
	for name, mutate := range map[string]func(*Target){
		"relative dir":       func(t *Target) { t.Dir = "srv/x" },
		"unclean dir":        func(t *Target) { t.Dir = "/srv/../etc" },
		"root dir":           func(t *Target) { t.Dir = "/" },
		"trailing slash":     func(t *Target) { t.Dir = "/srv/x/" },
		"newline in dir":     func(t *Target) { t.Dir = "/srv/x\n/y" },
		"NUL in dir":         func(t *Target) { t.Dir = "/srv/x\x00y" },
		"empty dir":          func(t *Target) { t.Dir = "" },
		"NUL in restart":     func(t *Target) { t.Restart = "true\x00; rm -rf /" },
		"bad service":        func(t *Target) { t.Service = "Svc;id" },
		"ftp url":            func(t *Target) { t.ServeURL = "ftp://h/x" },
		"url trailing slash": func(t *Target) { t.ServeURL = "http://h:1/" },
		"url with quote":     func(t *Target) { t.ServeURL = "http://h:1/a'b" },
		"url with query":     func(t *Target) { t.ServeURL = "http://h:1/?a=b" },
		"repo ..":            func(t *Target) { t.Repo = "../etc" },
		"repo absolute":      func(t *Target) { t.Repo = "/etc/x" },
		"submodule ..":       func(t *Target) { t.Submodules = []string{"a/../../b"} },
		"submodule space":    func(t *Target) { t.Submodules = []string{"a b"} },
		"submodule quote":    func(t *Target) { t.Submodules = []string{"a'b"} },
		"submodule leading":  func(t *Target) { t.Submodules = []string{"-x"} },
		"negative keep":      func(t *Target) { t.KeepRevs = -1 },
	} {
		tt := ok
		tt.Submodules = append([]string(nil), ok.Submodules...)
		mutate(&tt)
		if err := tt.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, tt)
		}
		if _, err := tt.DeployScript(strings.Repeat("a", 40), false); err == nil {
			t.Errorf("%s: DeployScript accepted %+v", name, tt)
		}
	}
	for _, sha := range []string{"", "HEAD", "$(id)", strings.Repeat("a", 40) + "\x00", strings.Repeat("a", 40) + "'"} {
		if _, err := ok.DeployScript(sha, false); err == nil {
			t.Errorf("DeployScript(%q) accepted", sha)
		}
		if _, err := ok.FinalizeScript(sha); err == nil {
			t.Errorf("FinalizeScript(%q) accepted", sha)
		}
	}
	if _, err := ok.CheckScript("true\x00"); err == nil {
		t.Error("CheckScript accepted a NUL byte")
	}
}

func testTarget(dir, serveURL string) Target {
	return Target{
		Service:    "svc",
		Dir:        dir,
		ServeURL:   serveURL,
		Repo:       "svc/deploy",
		Submodules: []string{"lib"},
		Restart:    "true",
		KeepRevs:   2,
	}
}
