package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/sal"
)

func TestSALCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`irc:
  server: 127.0.0.1:6667
  nick: deploybot
  channels: ["#ops"]
sal:
  database: sal.db
  public_url: https://sal.example.org
  projects: {"#ops": production}
`), 0o600)
	t.Setenv("SUDO_USER", "")
	for _, msg := range []string{"restarted citoid on scb1001", "deployed {{ops}} | T12345", "restarted \x02mathoid\x02"} {
		code, out, errOut := runCLI(t, "sal", "add", "-c", cfg, "-nick", "ops1", msg)
		if code != exitOK || !strings.HasPrefix(out, "Logged the message at https://sal.example.org/log/") {
			t.Fatalf("sal add: %d %q %q", code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "sal", "add", "-c", cfg); code != exitUsage || !strings.Contains(errOut, "Nothing logged") {
		t.Fatalf("empty sal add: %d %q", code, errOut)
	}

	code, out, _ := runCLI(t, "sal", "list", "-c", cfg, "-json")
	var got []sal.Entry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e sal.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, e)
	}
	if code != exitOK || len(got) != 3 || got[0].Message != "restarted mathoid" || got[2].Nick != "ops1" || got[2].Source != sal.SourceCLI || got[2].Project != "production" {
		t.Fatalf("sal list -json: %d %+v", code, got)
	}

	code, out, _ = runCLI(t, "sal", "search", "-c", cfg, "citoid")
	if code != exitOK || !strings.Contains(out, "ops1: restarted citoid on scb1001") || strings.Contains(out, "mathoid") {
		t.Fatalf("sal search: %d %q", code, out)
	}

	today := time.Now().UTC().Format("2006-01-02")
	code, out, _ = runCLI(t, "sal", "wikitext", "-c", cfg, "-d", today)
	if code != exitOK || !strings.HasPrefix(out, "== "+today+" ==\n* ") || strings.Contains(out, "{{") || strings.Contains(out, "| T") {
		t.Fatalf("sal wikitext: %d %q", code, out)
	}

	for _, bad := range [][]string{
		{"sal"}, {"sal", "frob"}, {"sal", "search", "-c", cfg}, {"sal", "list", "-c", cfg, "-d", "yesterday"},
		{"sal", "list", "-c", cfg, "-n", "0"}, {"sal", "wikitext", "-c", cfg, "-days", "99"},
	} {
		if code, _, _ := runCLI(t, bad...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
