package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// warningsOf loads doc as dir/bot.yaml (written with mode) and returns its
// warnings by key.
func warningsOf(t *testing.T, dir, doc string, mode os.FileMode) map[string]*Error {
	t.Helper()
	path := filepath.Join(dir, "bot.yaml")
	if err := os.WriteFile(path, []byte(doc), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("load:\n%s\n%v", doc, err)
	}
	got := map[string]*Error{}
	for _, w := range cfg.Warnings {
		if got[w.Key] != nil {
			t.Errorf("two warnings for %s", w.Key)
		}
		got[w.Key] = w
		if w.File != path || w.Line < 1 {
			t.Errorf("warning without its place: %+v", w)
		}
	}
	return got
}

func TestWarnings(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
		files map[string]os.FileMode // written under the config's dir
		mode  os.FileMode            // of the configuration file
		key   string                 // the warning expected; "" = none
		at    string                 // text on its line
		msg   string
	}{
		{name: "nothing to say", mode: 0o644},
		{name: "ssh key readable by all", mode: 0o644, files: map[string]os.FileMode{"id_ed25519": 0o644},
			key: "deploy.ssh.key_file", at: "key_file:", msg: "can be read or written by its group and every user (mode 0644)"},
		{name: "ssh key readable by group", mode: 0o644, files: map[string]os.FileMode{"id_ed25519": 0o640},
			key: "deploy.ssh.key_file", at: "key_file:", msg: "by its group (mode 0640)"},
		{name: "ssh key writable by others", mode: 0o644, files: map[string]os.FileMode{"id_ed25519": 0o602},
			key: "deploy.ssh.key_file", at: "key_file:", msg: "every user"},
		{name: "ssh key private", mode: 0o644, files: map[string]os.FileMode{"id_ed25519": 0o600}},
		{name: "ssh key read-only", mode: 0o644, files: map[string]os.FileMode{"id_ed25519": 0o400}},
		{name: "sasl password file readable", mode: 0o644, files: map[string]os.FileMode{"pw": 0o644},
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  tls: true\n  sasl: {account: bot, password_file: pw}\n"},
			key:   "irc.sasl.password_file", at: "password_file", msg: "the SASL password file"},
		{name: "sasl password file private", mode: 0o644, files: map[string]os.FileMode{"pw": 0o600},
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  tls: true\n  sasl: {account: bot, password_file: pw}\n"}},
		{name: "sasl without tls", mode: 0o644, files: map[string]os.FileMode{"pw": 0o600},
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  sasl: {account: bot, password_file: pw}\n"},
			key:   "irc.sasl", at: "sasl:", msg: "without TLS"},
		{name: "sasl without tls on loopback", mode: 0o644, files: map[string]os.FileMode{"pw": 0o600},
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  sasl: {account: bot, password_file: pw}\n", "irc.example.org:6697", "127.0.0.1:6667"}},
		{name: "sasl without tls on localhost v6", mode: 0o644, files: map[string]os.FileMode{"pw": 0o600},
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  sasl: {account: bot, password_file: pw}\n", "irc.example.org:6697", `"[::1]:6667"`}},
		{name: "tls_insecure", mode: 0o644,
			edits: []string{"  nick: deploybot\n", "  nick: deploybot\n  tls: true\n  tls_insecure: true\n"},
			key:   "irc.tls_insecure", at: "tls_insecure:", msg: "not checked"},
		{name: "database password, config readable", mode: 0o644,
			edits: []string{"database: sal.db", "database: postgres://sal:pw@db.example.org/sal"},
			key:   "sal.database", at: "database:", msg: "the configuration file, which holds the database password, "},
		{name: "database password parameter, config readable", mode: 0o640,
			edits: []string{"database: sal.db", "database: postgres://sal@db.example.org/sal?password=pw"},
			key:   "sal.database", at: "database:", msg: "mode 0640"},
		{name: "database password, config private", mode: 0o600,
			edits: []string{"database: sal.db", "database: postgres://sal:pw@db.example.org/sal"}},
		{name: "database without password", mode: 0o644,
			edits: []string{"database: sal.db", "database: postgres://sal@db.example.org/sal"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, mode := range tc.files {
				p := writeFile(t, dir, name, secretValue+"\n")
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			doc := edit(t, tc.edits...)
			got := warningsOf(t, dir, doc, tc.mode)
			if tc.key == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected warnings: %v", got)
				}
				return
			}
			w := got[tc.key]
			if w == nil || len(got) != 1 {
				t.Fatalf("warnings %v, want one for %s", got, tc.key)
			}
			if w.Line != lineOfText(t, doc, tc.at) || !strings.Contains(w.Msg, tc.msg) {
				t.Errorf("got %v; want line %d and %q", w, lineOfText(t, doc, tc.at), tc.msg)
			}
			if strings.Contains(fmt.Sprint(w), secretValue) {
				t.Errorf("warning shows the secret: %v", w)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://sal:hunter2@db.example.org:5432/sal":                    "postgres://sal:xxxxx@db.example.org:5432/sal",
		"postgresql://sal:hunter2@db/sal?sslmode=verify-full":               "postgresql://sal:xxxxx@db/sal?sslmode=verify-full",
		"postgres://sal@db/sal?password=hunter2&sslmode=require":            "postgres://sal@db/sal?password=xxxxx&sslmode=require",
		"postgres://sal@db/sal?sslpassword=hunter2":                         "postgres://sal@db/sal?sslpassword=xxxxx",
		"postgres://sal:p%40ss@db/sal":                                      "postgres://sal:xxxxx@db/sal",
		"postgres://sal@db/sal":                                             "postgres://sal@db/sal",
		"postgres://sal:hunter2@db/sal\x7f":                                 "postgres://xxxxx",
		"/var/lib/deploybot/sal.db":                                         "/var/lib/deploybot/sal.db",
		"postgres://:hunter2@db/sal":                                        "postgres://:xxxxx@db/sal",
		"postgres://sal:hunter2@db/sal?PASSWORD=hunter2&application_name=x": "postgres://sal:xxxxx@db/sal?PASSWORD=xxxxx&application_name=x",
	} {
		got := RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("RedactURL(%q) shows the password", in)
		}
	}
}

// However a Config (or its SAL part) is printed, the database password
// does not show.
func TestDatabasePasswordNeverPrinted(t *testing.T) {
	doc := edit(t, "database: sal.db", "database: postgres://sal:"+secretValue+"@db.example.org/sal")
	cfg, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.SAL.Database, secretValue) {
		t.Fatal("the database URL lost its password")
	}
	for _, v := range []any{cfg, *cfg, cfg.SAL, &cfg.SAL} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, secretValue) || !strings.Contains(s, "xxxxx") {
				t.Errorf("%s of %T: %s", verb, v, s)
			}
		}
	}
}
