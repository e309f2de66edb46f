package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// base is a small valid configuration; each case below edits it.
const base = `irc:
  server: irc.example.org:6697
  nick: deploybot
  channels: ["#ops", "#dev"]
  relays: [logmsgbot]
  relay_listen: 127.0.0.1:9200
sal:
  database: sal.db
  listen: 127.0.0.1:8080
deploy:
  ssh:
    user: deploy
    key_file: id_ed25519
    known_hosts: known_hosts
access:
  deployers:
    accounts: [alice]
    hostmasks: ["*!*@example/alice"]
services:
  citoid:
    repo: citoid/deploy
    upstream: https://gerrit.example.org/r/citoid/deploy
    target_dir: /srv/deployment/citoid/deploy
    port: 1970
    checks:
      - {name: info, http: "http://127.0.0.1:1970/_info"}
      - {name: smoke, command: "scripts/smoke.sh"}
    canary: [scb1001]
    groups:
      - name: eqiad
        hosts: [scb1002, scb1003]
`

// edit applies old→new replacements (each must match) to base.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	doc := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("edit: %q not in the document", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

// lineOfText is the 1-based line of the first occurrence of s in doc.
func lineOfText(t *testing.T, doc, s string) int {
	t.Helper()
	i := strings.Index(doc, s)
	if i < 0 {
		t.Fatalf("marker %q not in the document:\n%s", s, doc)
	}
	return strings.Count(doc[:i], "\n") + 1
}

func parseErrors(t *testing.T, doc string) Errors {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(doc))
	if err == nil {
		t.Fatalf("Parse accepted the document:\n%s\nconfig: %+v", doc, cfg)
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config along with errors")
	}
	return es
}

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse("test.yaml", []byte(base)); err != nil {
		t.Fatalf("base config: %v", err)
	}
}

func TestValidation(t *testing.T) {
	long := "#" + strings.Repeat("x", 50)
	cases := []struct {
		name  string
		edits []string
		key   string
		at    string // the error is on the line holding this text
		msg   string // the message contains this
	}{
		// syntax and decoding
		{"unknown top-level key", []string{"sal:\n", "sall: {}\nsal:\n"}, "sall", "sall:", `unknown key "sall": did you mean "sal"?`},
		{"unknown nested key", []string{"    port: 1970\n", "    prot: 1970\n"}, "services.citoid.prot", "prot:", `did you mean "port"?`},
		{"unknown key lists known ones", []string{"    port: 1970\n", "    port: 1970\n    colour: red\n"}, "services.citoid.colour", "colour:", "want one of branch, canary, checks"},
		{"unknown key in a list item", []string{"{name: info, http:", "{name: info, htp: x, http:"}, "services.citoid.checks[0].htp", "htp:", `did you mean "http"?`},
		{"submodule_urls without submodules", []string{"    port: 1970\n", "    port: 1970\n    submodule_urls: [\"https://gerrit.example.org/r/*\"]\n"}, "services.citoid.submodule_urls", "submodule_urls:", "submodules is false"},
		{"submodule_urls relative", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls:\n      - https://gerrit.example.org/r/*\n      - ../lib\n"}, "services.citoid.submodule_urls[1]", "- ../lib", "relative URLs are always allowed"},
		{"submodule_urls empty", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls: [\"\"]\n"}, "services.citoid.submodule_urls[0]", "submodule_urls:", "empty"},
		{"submodule_urls dot segment", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls:\n      - /srv/git/../secret\n"}, "services.citoid.submodule_urls[0]", "- /srv/git/../secret", "'..'"},
		{"submodule_urls bad scheme", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls:\n      - https://h/\n      - ftp://x/y\n"}, "services.citoid.submodule_urls[1]", "- ftp://x/y", "scheme"},
		{"submodule_urls remote helper", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls:\n      - ext::sh\n"}, "services.citoid.submodule_urls[0]", "- ext::sh", "remote helpers"},
		{"submodule_urls relative path", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls:\n      - srv/git\n"}, "services.citoid.submodule_urls[0]", "- srv/git", "absolute path"},
		{"logs_listen same as sal.listen", []string{"deploy:\n", "deploy:\n  logs_listen: 127.0.0.1:8080\n"}, "deploy.logs_listen", "logs_listen:", "already sal.listen's address"},
		{"logs_listen bad", []string{"deploy:\n", "deploy:\n  logs_listen: nohost\n"}, "deploy.logs_listen", "logs_listen:", "invalid listen address"},
		{"logs_listen with serve_logs false", []string{"deploy:\n", "deploy:\n  serve_logs: false\n  logs_listen: 127.0.0.1:8082\n"}, "deploy.logs_listen", "logs_listen:", "serve_logs is false"},
		{"logs_public_url without logs_listen", []string{"deploy:\n", "deploy:\n  logs_public_url: https://logs.example.org\n"}, "deploy.logs_public_url", "logs_public_url:", "logs_listen is not"},
		{"logs_public_url bad", []string{"deploy:\n", "deploy:\n  logs_listen: 127.0.0.1:8082\n  logs_public_url: ftp://logs.example.org\n"}, "deploy.logs_public_url", "logs_public_url:", "scheme"},
		{"duplicate key", []string{"    port: 1970\n", "    port: 1970\n    port: 1971\n"}, "services.citoid.port", "port: 1971", "duplicate key (first written on line 24)"},
		{"string for a list", []string{`channels: ["#ops", "#dev"]`, `channels: "#ops"`}, "irc.channels", "channels:", "want a list, got a string"},
		{"string for a host list", []string{"canary: [scb1001]", "canary: scb1001"}, "services.citoid.canary", "canary:", "want a list, got a string"},
		{"list for a mapping", []string{"sal:\n  database: sal.db\n  listen: 127.0.0.1:8080\n", "sal: []\n"}, "sal", "sal:", "want a mapping, got a list"},
		{"string for an integer", []string{"port: 1970", `port: "1970"`}, "services.citoid.port", "port:", "want an integer, got a string"},
		{"yes for a boolean", []string{"  nick: deploybot\n", "  nick: deploybot\n  tls: yes\n"}, "irc.tls", "tls:", "want true or false"},
		{"list for a string", []string{"nick: deploybot", "nick: [deploybot]"}, "irc.nick", "nick:", "want a string, got a list"},
		{"empty list item", []string{"hosts: [scb1002, scb1003]", "hosts:\n          - scb1002\n          -\n          - scb1003"}, "services.citoid.groups[0].hosts[1]", "-\n", "empty list item"},
		{"custom tag", []string{"nick: deploybot", "nick: !bot deploybot"}, "irc.nick", "nick:", "unsupported YAML tag !bot"},
		{"integer for a duration", []string{"    port: 1970\n", "    port: 1970\n    port_timeout: 30\n"}, "services.citoid.port_timeout", "port_timeout", `invalid duration "30": want a Go duration`},

		// irc
		{"server missing", []string{"  server: irc.example.org:6697\n", ""}, "irc.server", "irc:", "missing: want the IRC server as host:port"},
		{"server without port", []string{"irc.example.org:6697", "irc.example.org"}, "irc.server", "server:", "want host:port"},
		{"server port out of range", []string{"irc.example.org:6697", "irc.example.org:70000"}, "irc.server", "server:", "port must be a number from 1 to 65535"},
		{"server without host", []string{"irc.example.org:6697", `":6697"`}, "irc.server", "server:", "the host is missing"},
		{"nick missing", []string{"  nick: deploybot\n", ""}, "irc.nick", "irc:", "missing: want the bot's nick"},
		{"nick starts with digit", []string{"nick: deploybot", "nick: 9bot"}, "irc.nick", "nick:", `invalid nick "9bot"`},
		{"nick with space", []string{"nick: deploybot", `nick: "deploy bot"`}, "irc.nick", "nick:", "invalid nick"},
		{"user with @", []string{"  nick: deploybot\n", "  nick: deploybot\n  user: a@b\n"}, "irc.user", "user:", "invalid user"},
		{"realname with newline", []string{"  nick: deploybot\n", "  nick: deploybot\n  realname: \"a\\nb\"\n"}, "irc.realname", "realname:", "line breaks"},
		{"channels empty", []string{`channels: ["#ops", "#dev"]`, "channels: []"}, "irc.channels", "channels:", "at least one channel"},
		{"channels commented out", []string{`channels: ["#ops", "#dev"]`, "channels: #ops"}, "irc.channels", "channels:", "an unquoted # starts a YAML comment"},
		{"channels missing", []string{"  channels: [\"#ops\", \"#dev\"]\n", ""}, "irc.channels", "irc:", "missing"},
		{"channel without #", []string{`"#dev"`, `"dev"`}, "irc.channels[1]", "channels:", "must start with # or &"},
		{"channel with space", []string{`"#dev"`, `"#d ev"`}, "irc.channels[1]", "channels:", "must not contain spaces, commas"},
		{"channel with comma", []string{`"#dev"`, `"#d,ev"`}, "irc.channels[1]", "channels:", "must not contain spaces, commas"},
		{"channel with bell", []string{`"#dev"`, `"#d\aev"`}, "irc.channels[1]", "channels:", "control characters"},
		{"channel too long", []string{`"#dev"`, `"` + long + `"`}, "irc.channels[1]", "channels:", "longer than 50 bytes"},
		{"channel & is fine, duplicate is not", []string{`"#dev"`, `"&dev", "#OPS"`}, "irc.channels[2]", "channels:", `already listed at irc.channels[0]`},
		{"channel in block list", []string{`channels: ["#ops", "#dev"]`, "channels:\n    - \"#ops\"\n    - dev"}, "irc.channels[1]", "- dev", "must start with # or &"},
		{"prefix empty", []string{"  nick: deploybot\n", "  nick: deploybot\n  prefix: \"\"\n"}, "irc.prefix", "prefix:", "empty"},
		{"prefix unquoted bang", []string{"  nick: deploybot\n", "  nick: deploybot\n  prefix: !\n"}, "irc.prefix", "prefix:", "an unquoted ! starts a YAML tag"},
		{"prefix with space", []string{"  nick: deploybot\n", "  nick: deploybot\n  prefix: \"! \"\n"}, "irc.prefix", "prefix:", "invalid prefix"},
		{"relay account invalid", []string{"relays: [logmsgbot]", `relays: [logmsgbot, "log bot"]`}, "irc.relays[1]", "relays:", `invalid account "log bot"`},
		{"relay account empty", []string{"relays: [logmsgbot]", `relays: [logmsgbot, ""]`}, "irc.relays[1]", "relays:", `empty account`},
		{"relay hostmask not a mask", []string{"relays: [logmsgbot]", "relays: [logmsgbot]\n  relay_hostmasks: [\"*!*@wikimedia/bot/*\", logmsgbot]"}, "irc.relay_hostmasks[1]", "relay_hostmasks:", `invalid hostmask "logmsgbot"`},
		{"relay hostmask any host", []string{"relays: [logmsgbot]", "relays: [logmsgbot]\n  relay_hostmasks: [\"logmsgbot!*@*\"]"}, "irc.relay_hostmasks[0]", "relay_hostmasks:", `lets anyone in`},
		{"relay hostmask wildcard host", []string{"relays: [logmsgbot]", "relays: [logmsgbot]\n  relay_hostmasks: [\"logmsgbot!logmsgbot@*.*\"]"}, "irc.relay_hostmasks[0]", "relay_hostmasks:", `lets anyone in`},
		{"relay_listen without port", []string{"relay_listen: 127.0.0.1:9200", "relay_listen: 127.0.0.1"}, "irc.relay_listen", "relay_listen:", "invalid listen address"},
		{"relay_allow not a CIDR", []string{"  relay_listen: 127.0.0.1:9200\n", "  relay_listen: 127.0.0.1:9200\n  relay_allow: [10.0.0.0/8, 10.0.0.1]\n"}, "irc.relay_allow[1]", "relay_allow:", `invalid CIDR "10.0.0.1"`},
		{"relay_allow garbage", []string{"  relay_listen: 127.0.0.1:9200\n", "  relay_listen: 127.0.0.1:9200\n  relay_allow:\n    - 10.0.0.0/33\n"}, "irc.relay_allow[0]", "10.0.0.0/33", "invalid CIDR"},
		{"rate zero", []string{"  nick: deploybot\n", "  nick: deploybot\n  rate: {per_second: 0}\n"}, "irc.rate.per_second", "rate:", "greater than 0"},
		{"rate negative", []string{"  nick: deploybot\n", "  nick: deploybot\n  rate:\n    per_second: -1\n"}, "irc.rate.per_second", "per_second:", "greater than 0"},
		{"burst zero", []string{"  nick: deploybot\n", "  nick: deploybot\n  rate:\n    burst: 0\n"}, "irc.rate.burst", "burst:", "at least 1"},

		// sal
		{"database missing", []string{"  database: sal.db\n", ""}, "sal.database", "sal:", "missing: want a SQLite file path"},
		{"database empty", []string{"database: sal.db", `database: ""`}, "sal.database", "database:", "empty: want a SQLite file path"},
		{"database unknown URL", []string{"database: sal.db", "database: mysql://db/sal"}, "sal.database", "database:", "want a SQLite file path, or a postgres:// URL"},
		{"database with ~", []string{"database: sal.db", "database: ~/sal.db"}, "sal.database", "database:", "~ is not expanded"},
		{"sal listen without port", []string{"listen: 127.0.0.1:8080", "listen: localhost"}, "sal.listen", "  listen: localhost", "invalid listen address"},
		{"public_url not http", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  public_url: ftp://sal.example.org\n"}, "sal.public_url", "public_url:", "the scheme must be http or https"},
		{"public_url without host", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  public_url: \"http://\"\n"}, "sal.public_url", "public_url:", "the host is missing"},
		{"public_url relative", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  public_url: sal.example.org\n"}, "sal.public_url", "public_url:", "scheme must be http or https"},
		{"project for an unknown channel", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  projects:\n    \"#ops\": production\n    \"#other\": x\n"}, `sal.projects["#other"]`, `"#other"`, "not in irc.channels"},
		{"project empty", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  projects: {\"#ops\": \"\"}\n"}, `sal.projects["#ops"]`, "projects:", "empty project"},
		{"task_url without %s", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  task_url: https://phab.example.org/\n"}, "sal.task_url", "task_url:", "exactly one %s"},
		{"task_url with two %s", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  task_url: https://phab.example.org/%s/%s\n"}, "sal.task_url", "task_url:", "exactly one %s"},
		{"task_url with another verb", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  task_url: https://phab.example.org/%s?%d\n"}, "sal.task_url", "task_url:", "exactly one %s"},
		{"task_url not a URL", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  task_url: \"%s\"\n"}, "sal.task_url", "task_url:", "scheme must be http or https"},

		// deploy
		{"serve without port", []string{"deploy:\n", "deploy:\n  serve: \"8081\"\n"}, "deploy.serve", "serve:", "invalid listen address"},
		{"serve_url without scheme", []string{"deploy:\n", "deploy:\n  serve_url: deploy1001:8081\n"}, "deploy.serve_url", "serve_url:", "want an http:// or https:// URL"},
		{"deploy_dir with ~", []string{"deploy:\n", "deploy:\n  deploy_dir: ~deploy/srv\n"}, "deploy.deploy_dir", "deploy_dir:", "~ is not expanded"},
		{"ssh user missing", []string{"    user: deploy\n", ""}, "deploy.ssh.user", "ssh:", "missing: want the login on every target"},
		{"ssh user invalid", []string{"user: deploy", "user: deploy@host"}, "deploy.ssh.user", "user: deploy@", "invalid user"},
		{"known_hosts missing", []string{"    known_hosts: known_hosts\n", ""}, "deploy.ssh.known_hosts", "ssh:", "missing: want the known_hosts file"},
		{"no key and no agent", []string{"    key_file: id_ed25519\n", ""}, "deploy.ssh.key_file", "ssh:", "or agent: true"},
		{"no key, agent false", []string{"    key_file: id_ed25519\n", "    agent: false\n"}, "deploy.ssh.key_file", "ssh:", "or agent: true"},
		{"connect_timeout zero", []string{"    user: deploy\n", "    user: deploy\n    connect_timeout: 0s\n"}, "deploy.ssh.connect_timeout", "connect_timeout:", "must be greater than 0"},
		{"command_timeout negative", []string{"    user: deploy\n", "    user: deploy\n    command_timeout: -5m\n"}, "deploy.ssh.command_timeout", "command_timeout:", "must be greater than 0"},
		{"keepalive words", []string{"    user: deploy\n", "    user: deploy\n    keepalive: 15 seconds\n"}, "deploy.ssh.keepalive", "keepalive:", `invalid duration "15 seconds": want a Go duration such as 30s, 10m or 1h30m`},
		{"max_connections negative", []string{"    user: deploy\n", "    user: deploy\n    max_connections: -1\n"}, "deploy.ssh.max_connections", "max_connections:", "0 (no limit) or more"},

		// access
		{"hostmask without !", []string{`"*!*@example/alice"`, `"alice@example/alice"`}, "access.deployers.hostmasks[0]", "hostmasks:", "nick!user@host"},
		{"hostmask without @", []string{`"*!*@example/alice"`, `"*!alice"`}, "access.deployers.hostmasks[0]", "hostmasks:", "nick!user@host"},
		{"hostmask in wrong order", []string{`"*!*@example/alice"`, `"*@x!y"`}, "access.deployers.hostmasks[0]", "hostmasks:", "nick!user@host"},
		{"hostmask matching everyone", []string{`"*!*@example/alice"`, `"*!*@*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask matching every dotted host", []string{`"*!*@example/alice"`, `"*!*@*.*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask matching every cloak", []string{`"*!*@example/alice"`, `"*!*@*/*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask of wildcards", []string{`"*!*@example/alice"`, `"?*!*?@?*.*?:*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask of a nick only", []string{`"*!*@example/alice"`, `"alice!*@*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask of a nick and user only", []string{`"*!*@example/alice"`, `"alice!~alice@*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "lets anyone in"},
		{"hostmask star", []string{`"*!*@example/alice"`, `"*"`}, "access.deployers.hostmasks[0]", "hostmasks:", "nick!user@host"},
		{"service hostmask matching everyone", []string{"    port: 1970\n", "    port: 1970\n    deployers: {hostmasks: [\"*!*@*\"]}\n"}, "services.citoid.deployers.hostmasks[0]", "deployers: {hostmasks", "lets anyone in"},
		{"account empty", []string{"accounts: [alice]", `accounts: [alice, ""]`}, "access.deployers.accounts[1]", "accounts:", "empty account"},
		{"account with space", []string{"accounts: [alice]", `accounts: ["al ice"]`}, "access.deployers.accounts[0]", "accounts:", "invalid account"},

		// services
		{"service name uppercase", []string{"  citoid:\n", "  Citoid:\n"}, "services.Citoid", "Citoid:", `invalid service name "Citoid"`},
		{"service name with space", []string{"  citoid:\n", "  \"cit oid\":\n"}, `services["cit oid"]`, "cit oid", "service names reach shells"},
		{"service name with shell", []string{"  citoid:\n", "  \"x;rm\":\n"}, `services["x;rm"]`, "x;rm", "invalid service name"},
		{"service name leading dash", []string{"  citoid:\n", "  -citoid:\n"}, "services.-citoid", "-citoid", "invalid service name"},
		{"service name too long", []string{"  citoid:\n", "  " + strings.Repeat("a", 65) + ":\n"}, "services." + strings.Repeat("a", 65), "aaaa", "at most 64 bytes"},
		{"repo missing", []string{"    repo: citoid/deploy\n", ""}, "services.citoid.repo", "citoid:", "missing: want the deploy repository's path"},
		{"repo absolute", []string{"repo: citoid/deploy", "repo: /srv/citoid"}, "services.citoid.repo", "repo:", "want a relative path"},
		{"repo with ..", []string{"repo: citoid/deploy", "repo: citoid/../../etc"}, "services.citoid.repo", "repo:", "must not contain '..'"},
		{"repo is ..", []string{"repo: citoid/deploy", "repo: .."}, "services.citoid.repo", "repo:", "must not contain '..'"},
		{"repo unclean", []string{"repo: citoid/deploy", "repo: citoid//deploy/"}, "services.citoid.repo", "repo:", "want a clean path"},
		{"repo with shell", []string{"repo: citoid/deploy", `repo: "citoid;rm"`}, "services.citoid.repo", "repo:", "want letters, digits"},
		{"upstream missing", []string{"    upstream: https://gerrit.example.org/r/citoid/deploy\n", ""}, "services.citoid.upstream", "citoid:", "missing"},
		{"upstream bad scheme", []string{"upstream: https://gerrit", "upstream: ftp://gerrit"}, "services.citoid.upstream", "upstream:", "scheme must be"},
		{"upstream with space", []string{"upstream: https://gerrit.example.org/r/citoid/deploy", `upstream: "https://gerrit.example.org/r/cit oid"`}, "services.citoid.upstream", "upstream:", "spaces"},
		{"branch invalid", []string{"    port: 1970\n", "    port: 1970\n    branch: \"a..b\"\n"}, "services.citoid.branch", "branch:", "invalid branch"},
		{"target_dir missing", []string{"    target_dir: /srv/deployment/citoid/deploy\n", ""}, "services.citoid.target_dir", "citoid:", "missing: want the absolute path"},
		{"target_dir relative", []string{"target_dir: /srv/deployment", "target_dir: srv/deployment"}, "services.citoid.target_dir", "target_dir:", "want an absolute path"},
		{"target_dir unclean", []string{"target_dir: /srv/deployment/citoid/deploy", "target_dir: /srv/deployment/../citoid/"}, "services.citoid.target_dir", "target_dir:", "want a clean path"},
		{"target_dir root", []string{"target_dir: /srv/deployment/citoid/deploy", "target_dir: /"}, "services.citoid.target_dir", "target_dir:", "a directory of its own"},
		{"target_dir shell", []string{"target_dir: /srv/deployment/citoid/deploy", `target_dir: "/srv/$(reboot)"`}, "services.citoid.target_dir", "target_dir:", "reaches shells"},
		{"port too large", []string{"port: 1970", "port: 70000"}, "services.citoid.port", "port:", "want 1–65535, or 0"},
		{"port negative", []string{"port: 1970", "port: -1"}, "services.citoid.port", "port:", "want 1–65535, or 0"},
		{"keep_revs zero", []string{"    port: 1970\n", "    port: 1970\n    keep_revs: 0\n"}, "services.citoid.keep_revs", "keep_revs:", "at least 1"},
		{"port_timeout bad", []string{"    port: 1970\n", "    port: 1970\n    port_timeout: 10 minutes\n"}, "services.citoid.port_timeout", "port_timeout:", `invalid duration "10 minutes": want a Go duration such as 30s, 10m or 1h30m`},
		{"prompt_timeout zero", []string{"    port: 1970\n", "    port: 1970\n    prompt_timeout: 0m\n"}, "services.citoid.prompt_timeout", "prompt_timeout:", "greater than 0"},
		{"service deployers hostmask", []string{"    port: 1970\n", "    port: 1970\n    deployers: {hostmasks: [carol]}\n"}, "services.citoid.deployers.hostmasks[0]", "deployers: {hostmasks", "nick!user@host"},

		// checks
		{"check with http and command", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info, http: "http://127.0.0.1:1970/_info", command: "true"}`}, "services.citoid.checks[0]", "name: info", "set http or command, not both"},
		{"check with neither", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info}`}, "services.citoid.checks[0]", "name: info", "missing: set http"},
		{"check name missing", []string{`{name: info, http:`, `{http:`}, "services.citoid.checks[0].name", "_info", "missing: want a check name"},
		{"check name duplicate", []string{`{name: smoke,`, `{name: info,`}, "services.citoid.checks[1].name", "scripts/smoke.sh", `check "info" is already defined at services.citoid.checks[0]`},
		{"check name invalid", []string{`{name: smoke,`, `{name: "smo ke",`}, "services.citoid.checks[1].name", "scripts/smoke.sh", "invalid check name"},
		{"check http scheme", []string{`"http://127.0.0.1:1970/_info"`, `"tcp://127.0.0.1:1970"`}, "services.citoid.checks[0].http", "tcp://", "scheme must be http or https"},
		{"check http no host", []string{`"http://127.0.0.1:1970/_info"`, `"/_info"`}, "services.citoid.checks[0].http", "/_info", "want an http:// or https:// URL"},
		{"check expect_body regexp", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info, http: "http://127.0.0.1:1970/_info", expect_body: "("}`}, "services.citoid.checks[0].expect_body", "expect_body", "invalid regular expression"},
		{"check expect_status low", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info, http: "http://127.0.0.1:1970/_info", expect_status: 99}`}, "services.citoid.checks[0].expect_status", "expect_status", "want 100–599"},
		{"check expect_status high", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info, http: "http://127.0.0.1:1970/_info", expect_status: 600}`}, "services.citoid.checks[0].expect_status", "expect_status", "want 100–599"},
		{"check expect_status on command", []string{`{name: smoke, command: "scripts/smoke.sh"}`, `{name: smoke, command: "scripts/smoke.sh", expect_status: 200}`}, "services.citoid.checks[1].expect_status", "expect_status", "only for http checks"},
		{"check timeout bad", []string{`{name: smoke, command: "scripts/smoke.sh"}`, `{name: smoke, command: "scripts/smoke.sh", timeout: 5}`}, "services.citoid.checks[1].timeout", "timeout", "invalid duration"},

		// groups and hosts
		{"group name missing", []string{"      - name: eqiad\n        hosts:", "      - hosts:"}, "services.citoid.groups[0].name", "- hosts:", "missing: want a group name"},
		{"group named canary", []string{"name: eqiad", "name: Canary"}, "services.citoid.groups[0].name", "name: Canary", `"canary" is reserved`},
		{"group name invalid", []string{"name: eqiad", "name: \"eq iad\""}, "services.citoid.groups[0].name", "name: \"eq", "invalid group name"},
		{"group name duplicate", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002]\n      - {name: eqiad, hosts: [scb1003]}\n"}, "services.citoid.groups[1].name", "{name: eqiad", `group "eqiad" is already defined`},
		{"group without hosts", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n      - name: codfw\n"}, "services.citoid.groups[1].hosts", "name: codfw", "missing: want a list of at least one host"},
		{"group with empty hosts", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n      - {name: codfw, hosts: []}\n"}, "services.citoid.groups[1].hosts", "name: codfw", "empty: want a list of at least one host"},
		{"parallel negative", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        parallel: -1\n"}, "services.citoid.groups[0].parallel", "parallel:", "0 (all hosts of the group at once) or more"},
		{"failure_limit above group size", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: 3\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", "3 is more than the group's 2 host(s)"},
		{"failure_limit quoted count above group size", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: \"3\"\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", "more than the group's 2"},
		{"failure_limit above 100%", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: 101%\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", "between 0% and 100%"},
		{"failure_limit negative", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: -1\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", `want a number of hosts such as 2, or a percentage`},
		{"failure_limit words", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: some\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", `invalid failure limit "some"`},
		{"failure_limit list", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: [1]\n"}, "services.citoid.groups[0].failure_limit", "failure_limit:", "want a number of hosts such as 2"},
		{"host in canary and group", []string{"hosts: [scb1002, scb1003]", "hosts: [scb1002, SCB1001]"}, "services.citoid.groups[0].hosts[1]", "hosts: [scb1002, SCB1001]", "host SCB1001 is already listed at services.citoid.canary[0] (line 28)"},
		{"host twice, once with :22", []string{"hosts: [scb1002, scb1003]", "hosts: [scb1002, \"scb1002:22\"]"}, "services.citoid.groups[0].hosts[1]", "hosts: [scb1002, \"scb1002:22\"]", "already listed at services.citoid.groups[0].hosts[0]"},
		{"no hosts at all", []string{"    canary: [scb1001]\n    groups:\n      - name: eqiad\n        hosts: [scb1002, scb1003]\n", ""}, "services.citoid", "citoid:", "no hosts: want at least one host in canary or groups"},
		{"host with underscore", []string{"canary: [scb1001]", "canary: [scb_1001]"}, "services.citoid.canary[0]", "canary:", `invalid host "scb_1001"`},
		{"host port zero", []string{"canary: [scb1001]", "canary: [\"scb1001:0\"]"}, "services.citoid.canary[0]", "canary:", "port must be a number from 1 to 65535"},
		{"host port too large", []string{"canary: [scb1001]", "canary: [\"scb1001:65536\"]"}, "services.citoid.canary[0]", "canary:", "port must be a number from 1 to 65535"},
		{"host IPv4 in brackets", []string{"canary: [scb1001]", "canary: [\"[10.0.0.1]:22\"]"}, "services.citoid.canary[0]", "canary:", "brackets are only for IPv6"},
		{"host IPv6 with port unbracketed", []string{"canary: [scb1001]", "canary: [\"2001:db8::1:22x\"]"}, "services.citoid.canary[0]", "canary:", "[addr]:port"},
		{"host numeric", []string{"canary: [scb1001]", "canary: [\"10.0.1\"]"}, "services.citoid.canary[0]", "canary:", "numeric label"},
		{"host as mapping", []string{"canary: [scb1001]", "canary: [{name: scb1001}]"}, "services.citoid.canary[0]", "canary:", "want a host: name or name:port, got a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := edit(t, tc.edits...)
			es := parseErrors(t, doc)
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(es), es)
			}
			e := es[0]
			if e.Key != tc.key {
				t.Errorf("key = %q, want %q (%v)", e.Key, tc.key, e)
			}
			if want := lineOfText(t, doc, tc.at); e.Line != want {
				t.Errorf("line = %d, want %d (%v)", e.Line, want, e)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tc.msg)
			}
			if e.File != "test.yaml" {
				t.Errorf("file = %q", e.File)
			}
			if want := "test.yaml:"; !strings.HasPrefix(e.Error(), want) || !strings.Contains(e.Error(), ": "+tc.key+": ") {
				t.Errorf("Error() = %q, want FILE:LINE: KEY: message", e.Error())
			}
		})
	}
}

// Accepted forms the rules above must not refuse.
func TestValidationAccepts(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
	}{
		{"listen without host", []string{"relay_listen: 127.0.0.1:9200", `relay_listen: ":9200"`}},
		{"listen IPv6", []string{"listen: 127.0.0.1:8080", `listen: "[::1]:8080"`}},
		{"server IPv6", []string{"irc.example.org:6697", `"[2001:db8::1]:6697"`}},
		{"ampersand channel", []string{`"#dev"`, `"&dev"`}},
		{"nick with specials", []string{"nick: deploybot", "nick: \"[deploy]bot-2|^`_{}\""}},
		{"hosts of every form", []string{"hosts: [scb1002, scb1003]", `hosts: [scb1002.eqiad.wmnet, "scb1003:2222", "10.0.0.1", "10.0.0.2:22", "::1", "[::2]:2222", "[fe80::1%eth0]:22"]`}},
		{"same name, other port", []string{"hosts: [scb1002, scb1003]", `hosts: ["scb1001:2222"]`}},
		{"canary only", []string{"    groups:\n      - name: eqiad\n        hosts: [scb1002, scb1003]\n", ""}},
		{"groups only", []string{"    canary: [scb1001]\n", ""}},
		{"empty canary", []string{"    canary: [scb1001]\n", "    canary:\n"}},
		{"failure_limit forms", []string{"        hosts: [scb1002, scb1003]\n", "        hosts: [scb1002, scb1003]\n        failure_limit: \"2\"\n      - {name: b, hosts: [b1], failure_limit: 100%}\n      - {name: c, hosts: [c1], failure_limit: 0}\n      - {name: d, hosts: [d1], failure_limit: \"0%\"}\n"}},
		{"agent instead of key", []string{"    key_file: id_ed25519\n", "    agent: true\n"}},
		{"no services, no ssh", []string{"deploy:\n  ssh:\n    user: deploy\n    key_file: id_ed25519\n    known_hosts: known_hosts\n", "", base[strings.Index(base, "services:"):], "services: {}\n"}},
		{"postgres", []string{"database: sal.db", "database: postgres://sal@db.example.org:5432/sal?sslmode=verify-full"}},
		{"task_url with %%", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  task_url: https://phab.example.org/%%7E/%s\n"}},
		{"projects case-insensitive", []string{"  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  projects: {\"#OPS\": ops}\n"}},
		{"upstream forms", []string{"upstream: https://gerrit.example.org/r/citoid/deploy", "upstream: gerrit@gerrit.example.org:citoid/deploy"}},
		{"upstream local", []string{"upstream: https://gerrit.example.org/r/citoid/deploy", "upstream: ../upstream/citoid.git"}},
		{"upstream ssh", []string{"upstream: https://gerrit.example.org/r/citoid/deploy", "upstream: ssh://gerrit.example.org:29418/citoid"}},
		{"port zero", []string{"port: 1970", "port: 0"}},
		{"submodule_urls forms", []string{"    port: 1970\n", "    port: 1970\n    submodules: true\n    submodule_urls: [\"https://gerrit.example.org/r/*\", \"ssh://gerrit.example.org:29418/\", \"gerrit@gerrit.example.org:libs/\", /srv/git/, \"file:///srv/mirror/*\"]\n"}},
		{"ints in YAML forms", []string{"port: 1970", "port: 0x7b2"}},
		{"expect_status and body", []string{`{name: info, http: "http://127.0.0.1:1970/_info"}`, `{name: info, http: "https://127.0.0.1:1970/_info", expect_status: 204, expect_body: "^ok$", timeout: 2s}`}},
		{"comments and block style", []string{"  nick: deploybot\n", "  # the nick\n  nick: deploybot # primary\n  tls: true\n  tls_insecure: false\n"}},
		{"hostmasks naming a host", []string{`hostmasks: ["*!*@example/alice"]`, `hostmasks: ["carol!~carol@10.0.0.?", "*!*@*.wikimedia.org", "*!*@2001:db8::*", "*!*@user/a"]`}},
		{"null sections", []string{"access:\n  deployers:\n    accounts: [alice]\n    hostmasks: [\"*!*@example/alice\"]\n", "access:\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := edit(t, tc.edits...)
			if _, err := Parse("test.yaml", []byte(doc)); err != nil {
				t.Fatalf("Parse refused:\n%s\n%v", doc, err)
			}
		})
	}
}

// A misspelled key, a bad duration and a bad CIDR: three errors, each on
// its own line, all reported at once.
func TestAllErrorsAtOnce(t *testing.T) {
	doc := edit(t,
		"  relay_listen: 127.0.0.1:9200\n", "  relay_listen: 127.0.0.1:9200\n  relay_allow: [10.0.0.0/8, 300.0.0.0/8]\n",
		"    port: 1970\n", "    port: 1970\n    submodule: true\n    port_timeout: 2 min\n",
	)
	es := parseErrors(t, doc)
	want := []struct {
		line int
		key  string
		msg  string
	}{
		{lineOfText(t, doc, "relay_allow:"), "irc.relay_allow[1]", `invalid CIDR "300.0.0.0/8"`},
		{lineOfText(t, doc, "submodule:"), "services.citoid.submodule", `unknown key "submodule": did you mean "submodules"?`},
		{lineOfText(t, doc, "port_timeout:"), "services.citoid.port_timeout", `invalid duration "2 min"`},
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), es)
	}
	for i, w := range want {
		e := es[i]
		if e.Line != w.line || e.Key != w.key || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = %v; want line %d, key %s, message containing %q", i, e, w.line, w.key, w.msg)
		}
	}
	// One per line of Error(), in line order.
	lines := strings.Split(es.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("Error() has %d lines:\n%s", len(lines), es.Error())
	}
	for i, l := range lines {
		if l != es[i].Error() {
			t.Errorf("line %d of Error() = %q, want %q", i, l, es[i].Error())
		}
	}
	if es[0].Error() != `test.yaml:7: irc.relay_allow[1]: invalid CIDR "300.0.0.0/8": want an address with a prefix length, such as 127.0.0.0/8, 10.0.0.5/32 or ::1/128` {
		t.Errorf("format: %q", es[0].Error())
	}
	// errors.As finds each *Error.
	var one *Error
	if !errors.As(error(es), &one) || one != es[0] {
		t.Errorf("errors.As(*Error) = %v", one)
	}
}

// Many problems in one file: every one reported, sorted by line.
func TestManyErrorsSorted(t *testing.T) {
	doc := `irc:
  server: irc.example.org
  nik: deploybot
  channels: [ops]
sal:
  database: ""
services:
  Bad:
    repo: /abs
    target_dir: rel
    canary: [a, a]
`
	es := parseErrors(t, doc)
	keys := map[string]int{}
	for i, e := range es {
		keys[e.Key] = e.Line
		if i > 0 && es[i-1].Line > e.Line {
			t.Errorf("errors not in line order: %v before %v", es[i-1], e)
		}
	}
	want := map[string]int{
		"irc.server":              2,
		"irc.nik":                 3,
		"irc.nick":                1,
		"irc.channels[0]":         4,
		"sal.database":            6,
		"services.Bad":            8,
		"services.Bad.repo":       9,
		"services.Bad.upstream":   8,
		"services.Bad.target_dir": 10,
		"services.Bad.canary[1]":  11,
		"deploy.ssh.user":         1,
		"deploy.ssh.known_hosts":  1,
		"deploy.ssh.key_file":     1,
	}
	for k, line := range want {
		if got, ok := keys[k]; !ok {
			t.Errorf("no error for %s", k)
		} else if got != line {
			t.Errorf("%s on line %d, want %d", k, got, line)
		}
	}
	if len(es) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(want), es)
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		line int
		msg  string
	}{
		{"tab indent", "irc:\n\tnick: x\n", 2, "invalid YAML"},
		{"unquoted # in flow list", "irc:\n  nick: x\n  channels: [#ops]\n", 3, "an unquoted # starts a YAML comment"},
		{"missing colon", "irc:\n  nick: x\n  server\nsal: {}\n", 3, "invalid YAML"},
		{"bad indentation", "irc:\n  nick: x\n server: y\n", 3, "invalid YAML"},
		{"unclosed flow", "irc: {nick: x\nsal: {}\n", 1, "invalid YAML"},
		{"list item mis-indented", "services:\n  a:\n    repo: x\n    canary:\n      - a\n     - b\n", 6, "invalid YAML"},
		{"key mis-indented", "services:\n  a:\n    repo: x\n   upstream: y\n", 4, "invalid YAML"},
		{"unterminated quote", "irc:\n  nick: x\n  server: \"y\n  user: z\n", 3, "invalid YAML"},
		{"flow list after unclosed", "irc:\n  nick: x\n  channels: [\"#a\",\n  server: y\n", 3, "invalid YAML"},
		{"unknown anchor", "irc:\n  nick: x\n  server: *srv\n", 3, "unknown anchor"},
		{"two documents", "irc: {}\n---\nsal: {}\n", 3, "a second YAML document"},
		{"control character", "irc:\n  nick: \x01x\n", 2, "control character"},
		{"invalid UTF-8", "irc:\n  nick: x\n  user: \xff\n", 3, "invalid UTF-8"},
		{"lone carriage return", "irc:\n  nick: x\r  user: y\n", 2, "carriage return without a line feed"},
		{"carriage return at the end", "irc:\n  nick: x\r", 2, "carriage return without a line feed"},
		{"next line", "irc:\n  nick: x\u0085  user: y\n", 2, "U+0085"},
		{"line separator", "irc:\n  nick: x\n  user: \"y\u2028\"\n", 3, "U+2028"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := parseErrors(t, tc.doc)
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(es), es)
			}
			if es[0].Line != tc.line || !strings.Contains(es[0].Msg, tc.msg) {
				t.Errorf("got %v; want line %d, message containing %q", es[0], tc.line, tc.msg)
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	for _, doc := range []string{"", "\n", "# only a comment\n", "---\n"} {
		es := parseErrors(t, doc)
		got := map[string]bool{}
		for _, e := range es {
			got[e.Key] = true
			if e.Line != 1 {
				t.Errorf("%q: %v: line %d, want 1", doc, e, e.Line)
			}
		}
		for _, k := range []string{"irc.server", "irc.nick", "irc.channels", "sal.database"} {
			if !got[k] {
				t.Errorf("%q: no error for %s: %v", doc, k, es)
			}
		}
	}
	es := parseErrors(t, "[]\n")
	if len(es) == 0 || es[0].Key != "" || !strings.Contains(es[0].Msg, "want a mapping, got a list") {
		t.Errorf("top-level list: %v", es)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	doc := edit(t,
		"services:\n", "x-common: &common\n  restart: sudo -n systemctl restart svc\n  port_timeout: 1m\n  keep_revs: 3\nservices:\n",
		"    repo: citoid/deploy\n", "    <<: *common\n    keep_revs: 7\n    repo: citoid/deploy\n",
	)
	// The x-common key is unknown at the top level: a document that uses
	// anchors keeps them inside known keys. Check that error, then the
	// same merge with the anchor on a real key.
	es := parseErrors(t, doc)
	if len(es) != 1 || es[0].Key != "x-common" {
		t.Fatalf("got %v", es)
	}

	doc = base + `  mathoid:
    <<: &svc
      upstream: https://gerrit.example.org/r/mathoid/deploy
      target_dir: /srv/deployment/mathoid/deploy
      port_timeout: 1m
      keep_revs: 3
    keep_revs: 7
    repo: mathoid/deploy
    canary: [m1]
  graphoid:
    <<: [*svc]
    repo: graphoid/deploy
    target_dir: /srv/deployment/graphoid/deploy
    canary: [g1]
`
	cfg, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cfg.Service("mathoid")
	if m.KeepRevs != 7 || m.PortTimeout.D().Minutes() != 1 || m.Upstream != "https://gerrit.example.org/r/mathoid/deploy" {
		t.Errorf("mathoid: %+v", m)
	}
	g, _ := cfg.Service("graphoid")
	if g.KeepRevs != 3 || g.TargetDir != "/srv/deployment/graphoid/deploy" || g.Upstream != m.Upstream {
		t.Errorf("graphoid: %+v", g)
	}

	// An error inside merged content names the key where it lands, at the
	// line where it is written.
	doc = base + `  mathoid:
    <<: &svc
      upstream: https://gerrit.example.org/r/mathoid/deploy
      keep_revs: nope
    repo: mathoid/deploy
    target_dir: /srv/deployment/mathoid/deploy
    canary: [m1]
`
	es = parseErrors(t, doc)
	if len(es) != 1 || es[0].Key != "services.mathoid.keep_revs" || es[0].Line != lineOfText(t, doc, "keep_revs: nope") {
		t.Errorf("got %v", es)
	}
}

func TestTLSCAFile(t *testing.T) {
	const tmpl = "irc:\n  server: irc.example.org:6697\n  nick: deploybot\n  channels: [\"#ops\"]\n%ssal:\n  database: sal.db\n"
	cfg, err := Parse("/etc/deploybot/c.yaml", []byte(fmt.Sprintf(tmpl, "  tls: true\n  tls_ca_file: ca.pem\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.TLSCAFile != "/etc/deploybot/ca.pem" {
		t.Fatalf("tls_ca_file resolved to %q", cfg.IRC.TLSCAFile)
	}
	_, err = Parse("c.yaml", []byte(fmt.Sprintf(tmpl, "  tls_ca_file: ca.pem\n")))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Key != "irc.tls_ca_file" || errs[0].Line != 5 {
		t.Fatalf("tls_ca_file without tls: %v", err)
	}
}

// Windows line ends are fine; only a CR without its LF is refused.
func TestCRLFAccepted(t *testing.T) {
	if _, err := Parse("test.yaml", []byte(strings.ReplaceAll(base, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsKeys(t *testing.T) {
	mbase := "irc: {server: irc.example.org:6697, tls: true, nick: bot, channels: [\"#ops\"]}\nsal: {database: /tmp/sal.db, listen: 127.0.0.1:8080}\n"
	cases := []struct {
		yaml, err string
		serve     bool
		listen    string
	}{
		{yaml: "", serve: true},
		{yaml: "metrics: {listen: 127.0.0.1:9180}", serve: true, listen: "127.0.0.1:9180"},
		{yaml: "metrics: {serve: false}", serve: false},
		{yaml: "metrics: {listen: 127.0.0.1:8080}", err: "metrics.listen: 127.0.0.1:8080 is already sal.listen's address"},
		{yaml: "metrics: {listen: 'nohost'}", err: "metrics.listen: invalid listen address"},
		{yaml: "metrics: {listen: ''}", err: "metrics.listen: empty: want a listen address"},
		{yaml: "metrics: {serve: false, listen: 127.0.0.1:9180}", err: "metrics.listen: is set but metrics.serve is false"},
	}
	for _, tc := range cases {
		t.Run(tc.yaml, func(t *testing.T) {
			cfg, err := Parse("/etc/deploybot/test.yaml", []byte(mbase+tc.yaml+"\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Metrics.Serve != tc.serve || cfg.Metrics.Listen != tc.listen {
				t.Errorf("metrics = %+v, want serve %v listen %q", cfg.Metrics, tc.serve, tc.listen)
			}
		})
	}
}
