package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{&out, &errb}, args)
	return code, out.String(), errb.String()
}

// Every shipped example must pass check-config, so the examples never rot.
func TestCheckConfigExamples(t *testing.T) {
	t.Setenv("DEPLOYBOT_SASL_PASSWORD", "example-only")
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		code, out, errOut := runCLI(t, "check-config", "-c", f)
		if code != exitOK {
			t.Errorf("check-config %s: exit %d\n%s", f, code, errOut)
			continue
		}
		if !strings.Contains(out, ": ok\n") || !strings.Contains(out, "services:") || !strings.Contains(out, "channels #") {
			t.Errorf("check-config %s: summary:\n%s", f, out)
		}
		if strings.Contains(out, "example-only") {
			t.Errorf("check-config %s printed the secret", f)
		}
	}
}

const threeErrors = `irc:
  server: 127.0.0.1:6667
  nick: deploybot
  channels: ["#ops"]
  relay: [logmsgbot]
  relay_listen: 127.0.0.1:9200
  relay_allow: [10.0.0.0/33]
sal:
  database: sal.db
services:
  citoid:
    repo: citoid/deploy
    upstream: https://example.org/citoid
    target_dir: /srv/deployment/citoid/deploy
    port_timeout: 10 minutes
    canary: [scb1001]
deploy:
  ssh: {user: deploy, key_file: id, known_hosts: kh}
`

func TestCheckConfigReportsEveryError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(threeErrors), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check-config", "-c", path)
	if code != exitFailed || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(path)+`:(\d+): (\S+): .+$`).FindAllStringSubmatch(errOut, -1)
	got := map[string]string{}
	for _, l := range lines {
		got[l[2]] = l[1]
	}
	want := map[string]string{
		"irc.relay":                    "5",
		"irc.relay_allow[0]":           "7",
		"services.citoid.port_timeout": "15",
	}
	for key, line := range want {
		if got[key] != line {
			t.Errorf("no error for %s on line %s; stderr:\n%s", key, line, errOut)
		}
	}
	if !strings.Contains(errOut, "3 error(s)") {
		t.Errorf("want exactly 3 errors; stderr:\n%s", errOut)
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	if code, _, errOut := runCLI(t); code != exitUsage || !strings.Contains(errOut, "Usage: deploybot") {
		t.Fatalf("no args: exit %d", code)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
	for _, sub := range subcommands {
		code, _, errOut := runCLI(t, sub.name, "-h")
		if code != exitOK || !strings.Contains(errOut, "Usage: deploybot "+sub.name) {
			t.Errorf("%s -h: exit %d, %q", sub.name, code, errOut)
		}
		if code, _, _ := runCLI(t, sub.name, "-no-such-flag"); code != exitUsage {
			t.Errorf("%s -no-such-flag: exit %d", sub.name, code)
		}
	}
	if code, out, _ := runCLI(t, "version"); code != exitOK || !strings.HasPrefix(out, "deploybot ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "check-config", "-c", "/nonexistent/deploybot.yaml"); code != exitFailed || errOut == "" {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
}

const unsafeConfig = `irc:
  server: irc.example.org:6667
  nick: deploybot
  channels: ["#ops"]
  tls: true
  tls_insecure: true
sal:
  database: postgres://sal:hunter2@db.example.org/sal
deploy:
  ssh: {user: deploy, key_file: id, known_hosts: kh}
`

// check-config never prints the database password, and prints the
// warnings with their place.
func TestCheckConfigRedactsAndWarns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bot.yaml")
	if err := os.WriteFile(path, []byte(unsafeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	os.Chmod(filepath.Join(dir, "id"), 0o644)
	code, out, errOut := runCLI(t, "check-config", "-c", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, "hunter2") || !strings.Contains(out, "postgres://sal:xxxxx@db.example.org/sal") {
		t.Errorf("summary:\n%s\nstderr:\n%s", out, errOut)
	}
	for _, want := range []string{
		"warning: " + path + ":6: irc.tls_insecure: ",
		"warning: " + path + ":8: sal.database: the configuration file",
		"warning: " + path + ":10: deploy.ssh.key_file: the SSH private key",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no %q in stderr:\n%s", want, errOut)
		}
	}
}

// serve logs the warnings as it starts, before anything else can fail.
func TestServeLogsWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(unsafeConfig, "postgres://sal:hunter2@db.example.org/sal", "file/sal.db", 1) // cannot be opened
	path := filepath.Join(dir, "bot.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "id"), 0o604)
	code, _, errOut := runCLI(t, "serve", "-c", path)
	if code != exitFailed || !strings.Contains(errOut, "cannot open the Server Admin Log") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	for _, want := range []string{
		`level=WARN msg="unsafe configuration" file=` + path + " line=6 key=irc.tls_insecure",
		`level=WARN msg="unsafe configuration" file=` + path + " line=10 key=deploy.ssh.key_file problem=\"the SSH private key",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no %q in the log:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "key=sal.database") {
		t.Errorf("warned about a database without password:\n%s", errOut)
	}
}
