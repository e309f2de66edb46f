package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"deploybot/config"
)

func encodePEM(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

// cwdConfig writes a configuration with services svc (svc/deploy) and
// svc-lib (svc/deploy/lib, inside it) under dir/deployment, creates their
// deploy repositories, and returns its path.
func cwdConfig(t *testing.T, dir string) string {
	t.Helper()
	for _, r := range []string{"svc/deploy/lib/x", "other"} {
		if err := os.MkdirAll(filepath.Join(dir, "deployment", r), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "id"), encodePEM(blk), 0o600)
	os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600)
	p := filepath.Join(dir, "c.yaml")
	err = os.WriteFile(p, []byte(`irc: {server: "127.0.0.1:6667", nick: bot, channels: ["#ops"]}
sal: {database: sal.db}
deploy:
  deploy_dir: deployment
  journal_dir: deploys
  ssh: {user: deploy, key_file: id, known_hosts: known_hosts}
services:
  svc: {repo: svc/deploy, upstream: "https://git.example.org/svc.git", target_dir: /srv/deployment/svc/deploy, canary: [h1]}
  svc-lib: {repo: svc/deploy/lib, upstream: "https://git.example.org/lib.git", target_dir: /srv/deployment/lib, canary: [h1]}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceAt(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load(cwdConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "deployment", "svc"), link); err != nil {
		t.Fatal(err)
	}
	dep := filepath.Join(dir, "deployment")
	for path, want := range map[string]string{
		filepath.Join(dep, "svc", "deploy"):             "svc",
		filepath.Join(dep, "svc", "deploy") + "/":       "svc",
		filepath.Join(link, "deploy"):                   "svc", // through a symlink
		filepath.Join(dep, "svc", "deploy", "lib"):      "svc-lib",
		filepath.Join(dep, "svc", "deploy", "lib", "x"): "svc-lib", // the deepest repository
		filepath.Join(dep, "svc"):                       "",
		filepath.Join(dep, "other"):                     "",
		filepath.Join(dep, "svc", "deployx"):            "",
		dir:                                             "",
	} {
		if got := serviceAt(cfg, path); got != want {
			t.Errorf("serviceAt(%s) = %q, want %q", path, got, want)
		}
	}
}

// Inside a deploy repository, lock, unlock and deploy-log take its
// service; outside, they say what to do.
func TestCommandsTakeTheServiceHere(t *testing.T) {
	dir := t.TempDir()
	conf := cwdConfig(t, dir)
	t.Setenv("SUDO_USER", "alice")
	t.Chdir(filepath.Join(dir, "deployment", "svc", "deploy"))
	if code, out, errOut := runCLI(t, "lock", "-m", "db migration", "-c", conf); code != exitOK || out != "svc locked: db migration\n" {
		t.Fatalf("lock here: %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "lock", "-c", conf); code != exitOK || !strings.HasPrefix(out, "svc: locked by alice") {
		t.Errorf("lock without -m still lists: %d %q", code, out)
	}
	if code, out, errOut := runCLI(t, "deploy", "-c", conf); code != exitFailed || !strings.Contains(errOut, "svc") || !strings.Contains(errOut, "db migration") {
		t.Errorf("deploy here while locked: %d %q %q", code, out, errOut)
	}
	// An empty argument ("$UNSET" in a script) is not taken for none: it
	// never means the service here.
	for _, args := range [][]string{{"deploy", ""}, {"unlock", ""}, {"deploy-log", "", "--latest"}} {
		code, out, errOut := runCLI(t, append(args, "-c", conf)...)
		if code == exitOK || strings.Contains(out+errOut, "svc") {
			t.Errorf("%q here: %d %q %q", args, code, out, errOut)
		}
	}
	if code, out, errOut := runCLI(t, "unlock", "-c", conf); code != exitOK || !strings.HasPrefix(out, "svc unlocked") {
		t.Fatalf("unlock here: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "deploy-log", "--latest", "-c", conf); code != exitFailed || !strings.Contains(errOut, "svc") {
		t.Errorf("deploy-log here: %d %q %q", code, out, errOut)
	}

	t.Chdir(dir)
	for _, args := range [][]string{{"deploy"}, {"lock", "-m", "x"}, {"unlock"}, {"revert"}, {"revert", "1234567"}} {
		code, _, errOut := runCLI(t, append(args, "-c", conf)...)
		if code != exitUsage || !strings.Contains(errOut, "run it inside a service's deploy repository ("+filepath.Join(dir, "deployment")+"/<repo>)") {
			t.Errorf("%q outside: %d %q", args, code, errOut)
		}
	}
}

func TestAliasArgs(t *testing.T) {
	for _, c := range []struct {
		argv0 string
		args  []string
		want  []string
	}{
		{"/usr/local/bin/deploy", []string{"-m", "x"}, []string{"deploy", "-m", "x"}},
		{"deploy-log", []string{"--latest"}, []string{"deploy-log", "--latest"}},
		{"/usr/bin/deploybot", []string{"deploy", "svc"}, []string{"deploy", "svc"}},
		{"deployx", nil, nil},
	} {
		if got := aliasArgs(c.argv0, c.args); !reflect.DeepEqual(got, c.want) {
			t.Errorf("aliasArgs(%q, %q) = %q, want %q", c.argv0, c.args, got, c.want)
		}
	}
}

func TestInstallAliases(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := runCLI(t, "install-aliases", dir); code != exitOK || strings.Count(out, " -> ") != 2 {
		t.Fatalf("install-aliases: %d %q %q", code, out, errOut)
	}
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for _, a := range []string{"deploy", "deploy-log"} {
		if got, err := os.Readlink(filepath.Join(dir, a)); err != nil || got != self {
			t.Errorf("%s -> %q (%v), want %s", a, got, err, self)
		}
	}
	// Again: nothing to do. A file of another kind is left alone unless forced.
	if code, _, errOut := runCLI(t, "install-aliases", dir); code != exitOK {
		t.Errorf("second run: %d %q", code, errOut)
	}
	os.Remove(filepath.Join(dir, "deploy"))
	os.WriteFile(filepath.Join(dir, "deploy"), []byte("#!/bin/sh\n"), 0o755)
	if code, _, errOut := runCLI(t, "install-aliases", dir); code != exitFailed || !strings.Contains(errOut, "-force") {
		t.Errorf("over a file: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "install-aliases", "-force", dir); code != exitOK {
		t.Errorf("forced: %d %q", code, errOut)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "deploy")); got != self {
		t.Errorf("forced: deploy -> %q", got)
	}
}
