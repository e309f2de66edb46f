package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any bytes either load as a complete, valid configuration or
// are refused with errors that each name the file and a line of it, in
// line order; and loading is deterministic. `make fuzz` runs it for a
// while, `go test` runs its seeds (here and under testdata/fuzz/FuzzParse/).
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(withSASL("  sasl: {account: bot, password_env: DEPLOYBOT_FUZZ_PW}\n")))
	if data, err := os.ReadFile("../examples/production.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"", "---\n", "irc: [", "a: &a [*a, *a]\n", "irc:\n  channels: [#ops]\n",
		"irc: {server: x:1, nick: n, channels: [\"#a\"]}\nsal: {database: db}\n",
		"irc: {server: x:1, nick: n, channels: [\"#a\"]}\nsal: {database: db}\naccess: {deployers: {hostmasks: [\"*!*@*\"]}}\n",
		"\xff\xfe", "\ufeffirc: {}\n", "irc:\n\tnick: x\n", "a: 1\n---\nb: 2\n",
		"<<: {irc: {}}\n", "irc: !!binary aGVsbG8=\n", "services: {a: {groups: [{hosts: [\"[::1]:22\"]}]}}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.yaml")
	f.Setenv("DEPLOYBOT_FUZZ_PW", "fuzz-secret-value")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(path, data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v", cfg, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v, want Errors", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for i, e := range es {
				if e.File != path || e.Line < 1 || e.Line > lines || e.Msg == "" {
					t.Fatalf("error without its place (file has %d lines): %+v", lines, e)
				}
				if i > 0 && es[i-1].Line > e.Line {
					t.Fatalf("errors out of line order: %v", err)
				}
				if strings.Contains(e.Error(), "fuzz-secret-value") {
					t.Fatalf("error shows the secret: %v", e)
				}
			}
			return
		}
		checkComplete(t, cfg)
		again, err := Parse(path, data)
		if err != nil {
			t.Fatalf("second Parse refused what the first accepted: %v", err)
		}
		a, _ := json.Marshal(cfg)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("Parse is not deterministic:\n%s\n%s", a, b)
		}
	})
}

// checkComplete asserts what Load promises of a configuration it accepts.
func checkComplete(t *testing.T, cfg *Config) {
	t.Helper()
	irc := cfg.IRC
	switch {
	case irc.Server == "" || irc.Nick == "" || len(irc.Channels) == 0:
		t.Fatalf("irc incomplete: %+v", irc)
	case irc.Prefix == "" || irc.User == "" || irc.RealName == "":
		t.Fatalf("irc defaults missing: %+v", irc)
	case !(irc.Rate.PerSecond > 0) || irc.Rate.Burst < 1:
		t.Fatalf("rate %+v", irc.Rate)
	case irc.SASL != nil && irc.SASL.Password.Reveal() == "":
		t.Fatal("SASL without a password")
	case cfg.SAL.Database == "" || cfg.SAL.Spool == "":
		t.Fatalf("sal %+v", cfg.SAL)
	case !filepath.IsAbs(cfg.Deploy.DeployDir) || !filepath.IsAbs(cfg.Deploy.JournalDir) || !filepath.IsAbs(cfg.SAL.Spool):
		t.Fatalf("relative paths left: %+v %+v", cfg.Deploy, cfg.SAL)
	}
	for _, ch := range irc.Channels {
		if channelProblem(ch) != "" {
			t.Fatalf("channel %q accepted", ch)
		}
	}
	masks := append([]string(nil), cfg.Access.Deployers.Hostmasks...)
	for _, name := range cfg.ServiceNames() {
		s, ok := cfg.Service(name)
		if !ok || !nameRE.MatchString(name) || len(s.AllHosts()) == 0 || !strings.HasPrefix(s.TargetDir, "/") {
			t.Fatalf("service %q accepted: %+v", name, s)
		}
		masks = append(masks, s.Deployers.Hostmasks...)
	}
	for _, m := range masks {
		_, host, _ := strings.Cut(m, "@")
		if !constrainsHost(host) {
			t.Fatalf("hostmask %q lets anyone in", m)
		}
	}
}
