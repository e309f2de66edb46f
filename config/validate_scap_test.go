package config

import (
	"errors"
	"strings"
	"testing"
)

const scapBase = `irc:
  server: irc.example.org:6697
  nick: deploybot
  channels: ["#ops"]
sal:
  database: sal.db
deploy:
  ssh: {user: deploy, key_file: id_ed25519, known_hosts: known_hosts}
services:
  eventgate:
    repo: eventgate/deploy
    upstream: https://gerrit.example.org/r/eventgate/deploy
    scap: true
`

// A scap: true service needs no hosts, target_dir or checks, and may not
// list what scap/ gives.
func TestScapService(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(scapBase+"    environment: beta\n    submodule_urls: [\"https://gerrit.example.org/r/*\"]\n"))
	if err != nil {
		t.Fatalf("scap service refused: %v", err)
	}
	if s, _ := cfg.Service("eventgate"); !s.Scap || s.Environment != "beta" || len(s.AllHosts()) != 0 {
		t.Errorf("service %+v", s)
	}
	for _, tt := range []struct{ add, key, msg string }{
		{"    groups: [{name: a, hosts: [h1]}]\n", "services.eventgate.groups", "read from the deploy repository's scap/"},
		{"    restart: x\n", "services.eventgate.restart", "read from the deploy repository's scap/"},
		{"    target_dir: /srv/x\n", "services.eventgate.target_dir", "read from the deploy repository's scap/"},
		{"    config_files: [{path: /etc/x, template: t}]\n", "services.eventgate.config_files", "read from the deploy repository's scap/"},
		{"    environment: ../x\n", "services.eventgate.environment", "invalid environment"},
		{"    build_review_ref: for/main\n", "services.eventgate.build_review_ref", "want a full ref"},
		{"    build_submodule: ../src\n", "services.eventgate.build_submodule", "invalid path"},
	} {
		_, err := Parse("test.yaml", []byte(scapBase+tt.add))
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("%q: accepted (%v)", tt.add, err)
		}
		found := false
		for _, e := range errs {
			found = found || e.Key == tt.key && strings.Contains(e.Msg, tt.msg)
		}
		if !found {
			t.Errorf("%q: %v, want %s: %s", tt.add, err, tt.key, tt.msg)
		}
	}
	// Without scap: true, environment means nothing; config files are
	// checked.
	noScap := strings.Replace(scapBase, "    scap: true\n", "    target_dir: /srv/x\n    groups: [{name: a, hosts: [h1]}]\n", 1)
	for _, tt := range []struct{ add, key string }{
		{"    environment: beta\n", "services.eventgate.environment"},
		{"    config_files: [{path: ../x, template: t}]\n", "services.eventgate.config_files[0].path"},
		{"    config_files: [{path: .git/x, template: t}]\n", "services.eventgate.config_files[0].path"},
		{"    config_files: [{path: /etc/x}]\n", "services.eventgate.config_files[0].template"},
		{"    config_files: [{path: /etc/x, template: t, output_format: json}]\n", "services.eventgate.config_files[0].output_format"},
	} {
		_, err := Parse("test.yaml", []byte(noScap+tt.add))
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: %v, want an error on %s", tt.add, err, tt.key)
		}
	}
	if _, err := Parse("test.yaml", []byte(noScap+"    config_files: [{path: /etc/x.yaml, template: scap/t.j2, vars: [scap/vars.yaml], output_format: yaml}]\n")); err != nil {
		t.Errorf("config file refused: %v", err)
	}
}
