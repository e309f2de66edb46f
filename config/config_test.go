package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"gopkg.in/yaml.v3"
)

// withSASL adds a sasl block to base, right after the nick.
func withSASL(sasl string) string {
	return strings.Replace(base, "  nick: deploybot\n", "  nick: deploybot\n"+sasl, 1)
}

// writeFile writes name under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const secretValue = "s3cr3t-Hunter2-value"

func TestSASL(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "sasl", secretValue+"\n")
	writeFile(t, dir, "secrets/crlf", secretValue+"\r\n")
	writeFile(t, dir, "empty", "\n")
	writeFile(t, dir, "twolines", secretValue+"\nmore-"+secretValue+"\n")
	writeFile(t, dir, "big", strings.Repeat("x", maxSecret+1))
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEPLOYBOT_TEST_PW", secretValue)
	t.Setenv("DEPLOYBOT_TEST_EMPTY", "")
	t.Setenv("DEPLOYBOT_TEST_NL", secretValue+"\nx")
	os.Unsetenv("DEPLOYBOT_TEST_UNSET")

	ok := []struct {
		name, sasl, file string
	}{
		{"file relative to the config", "  sasl: {account: bot, password_file: sasl}\n", filepath.Join(dir, "sasl")},
		{"file in a subdirectory, CRLF", "  sasl: {account: bot, password_file: secrets/crlf}\n", filepath.Join(dir, "secrets/crlf")},
		{"file absolute", "  sasl: {account: bot, password_file: " + filepath.Join(dir, "sasl") + "}\n", filepath.Join(dir, "sasl")},
		{"env", "  sasl: {account: bot, password_env: DEPLOYBOT_TEST_PW}\n", ""},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "bot.yaml"), []byte(withSASL(tc.sasl)))
			if err != nil {
				t.Fatal(err)
			}
			s := cfg.IRC.SASL
			if s.Password.Reveal() != secretValue {
				t.Errorf("password = %q", s.Password.Reveal())
			}
			if s.PasswordFile != tc.file {
				t.Errorf("password_file = %q, want %q", s.PasswordFile, tc.file)
			}
		})
	}

	bad := []struct {
		name, sasl, key, at, msg string
	}{
		{"account missing", "  sasl: {password_file: sasl}\n", "irc.sasl.account", "sasl:", "missing: want the services account"},
		{"neither file nor env", "  sasl: {account: bot}\n", "irc.sasl.password_file", "sasl:", "missing: set password_file"},
		{"both file and env", "  sasl: {account: bot, password_file: sasl, password_env: DEPLOYBOT_TEST_PW}\n", "irc.sasl.password_env", "sasl:", "set only one of password_file and password_env"},
		{"file missing", "  sasl:\n    account: bot\n    password_file: nope\n", "irc.sasl.password_file", "password_file:", "cannot read the password file: open " + filepath.Join(dir, "nope") + ": no such file"},
		{"file empty", "  sasl: {account: bot, password_file: empty}\n", "irc.sasl.password_file", "sasl:", "is empty"},
		{"file is a directory", "  sasl: {account: bot, password_file: adir}\n", "irc.sasl.password_file", "sasl:", "is a directory"},
		{"file with two lines", "  sasl: {account: bot, password_file: twolines}\n", "irc.sasl.password_file", "sasl:", "more than one line"},
		{"file too big", "  sasl: {account: bot, password_file: big}\n", "irc.sasl.password_file", "sasl:", "larger than 4096 bytes"},
		{"file with ~", "  sasl: {account: bot, password_file: ~/sasl}\n", "irc.sasl.password_file", "sasl:", "~ is not expanded"},
		{"env unset", "  sasl: {account: bot, password_env: DEPLOYBOT_TEST_UNSET}\n", "irc.sasl.password_env", "sasl:", "DEPLOYBOT_TEST_UNSET is not set"},
		{"env empty", "  sasl: {account: bot, password_env: DEPLOYBOT_TEST_EMPTY}\n", "irc.sasl.password_env", "sasl:", "DEPLOYBOT_TEST_EMPTY is empty"},
		{"env with newline", "  sasl: {account: bot, password_env: DEPLOYBOT_TEST_NL}\n", "irc.sasl.password_env", "sasl:", "holds a line break"},
		{"env is the password", "  sasl: {account: bot, password_env: \"" + secretValue + "!\"}\n", "irc.sasl.password_env", "sasl:", "invalid environment variable name"},
		{"password in the file", "  sasl: {account: bot, password_env: DEPLOYBOT_TEST_PW, password: " + secretValue + "}\n", "irc.sasl.password", "sasl:", "a password is never written in the configuration"},
		{"sasl not a mapping", "  sasl: " + secretValue + "\n", "irc.sasl", "sasl:", "want a mapping, got a string"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			doc := withSASL(tc.sasl)
			_, err := Parse(filepath.Join(dir, "bot.yaml"), []byte(doc))
			es, _ := err.(Errors)
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(es), err)
			}
			e := es[0]
			if e.Key != tc.key || e.Line != lineOfText(t, doc, tc.at) || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %v; want key %s, line %d, message containing %q", e, tc.key, lineOfText(t, doc, tc.at), tc.msg)
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Errorf("error text holds the secret: %v", err)
			}
		})
	}
}

// The secret never shows: not in errors, not however the Config is
// printed or serialized.
func TestSecretNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "sasl", secretValue+"\n")
	cfg, err := Parse(filepath.Join(dir, "bot.yaml"), []byte(withSASL("  sasl: {account: bot, password_file: sasl}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.SASL.Password.Reveal() != secretValue {
		t.Fatal("the secret was not read")
	}
	var out []string
	for _, v := range []any{cfg, *cfg, cfg.IRC, cfg.IRC.SASL, *cfg.IRC.SASL, cfg.IRC.SASL.Password} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	out = append(out, fmt.Sprint(cfg.IRC.SASL.Password), fmt.Sprintln(cfg.IRC.SASL.Password), cfg.IRC.SASL.Password.String(), cfg.IRC.SASL.Password.GoString())
	for _, v := range []any{cfg, cfg.IRC.SASL} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j), string(y))
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "sasl", cfg.IRC.SASL, "password", cfg.IRC.SASL.Password)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "password", cfg.IRC.SASL.Password)
	out = append(out, logged.String())
	for _, s := range out {
		if strings.Contains(s, secretValue) || strings.Contains(s, fmt.Sprintf("%x", secretValue)) || strings.Contains(s, fmt.Sprintf("%X", secretValue)) {
			t.Errorf("the secret shows in %q", s)
		}
	}
	if got := fmt.Sprintf("%v|%s|%#v|%q", cfg.IRC.SASL.Password, cfg.IRC.SASL.Password, cfg.IRC.SASL.Password, cfg.IRC.SASL.Password); got != "[redacted]|[redacted]|[redacted]|[redacted]" {
		t.Errorf("got %q", got)
	}
	if !strings.Contains(fmt.Sprintf("%+v", *cfg.IRC.SASL), "Password:[redacted]") {
		t.Errorf("%%+v of SASL = %+v", *cfg.IRC.SASL)
	}
	// A secret is never read from YAML.
	var s Secret
	if err := yaml.Unmarshal([]byte(secretValue), &s); err == nil || s != "" {
		t.Errorf("yaml decoded a secret: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	doc := `irc:
  server: irc.example.org:6697
  nick: deploybot
  channels: ["#ops", "&dev"]
  relay_listen: 127.0.0.1:9200
sal:
  database: data/sal.db
  listen: ":8080"
deploy:
  ssh: {user: deploy, agent: true, known_hosts: ssh/known_hosts}
services:
  citoid:
    repo: citoid/deploy
    upstream: ../upstream/citoid.git
    target_dir: /srv/deployment/citoid/deploy
    checks:
      - {name: info, http: "http://127.0.0.1:1970/_info"}
      - {name: smoke, command: "true"}
    canary: [scb1001]
    groups:
      - {name: eqiad, hosts: [scb1002, scb1003, scb1004]}
      - {name: codfw, hosts: [scb2001, scb2002], parallel: 1}
`
	cfg, err := Parse(filepath.Join(dir, "bot.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	irc := cfg.IRC
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("path", cfg.Path, filepath.Join(dir, "bot.yaml"))
	check("prefix", irc.Prefix, "!")
	check("user", irc.User, "deploybot")
	check("realname", irc.RealName, "deploybot")
	check("tls", irc.TLS, false)
	check("sasl", irc.SASL, (*SASL)(nil))
	check("relay_allow", irc.RelayAllow, []string{"127.0.0.0/8", "::1/128"})
	check("relay_allow prefixes", irc.RelayAllowPrefixes, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	check("rate", irc.Rate, Rate{PerSecond: 0.5, Burst: 5})

	check("database", cfg.SAL.Database, filepath.Join(dir, "data/sal.db"))
	check("public_url", cfg.SAL.PublicURL, "http://localhost:8080")
	check("projects", cfg.SAL.Projects, map[string]string{"#ops": "ops", "&dev": "dev"})
	check("task_url", cfg.SAL.TaskURL, "")

	d := cfg.Deploy
	check("deploy_dir", d.DeployDir, "/srv/deployment")
	check("serve", d.Serve, ":8081")
	check("serve_url", d.ServeURL, "http://localhost:8081")
	check("journal_dir", d.JournalDir, "/var/lib/deploybot/deploys")
	check("key_file", d.SSH.KeyFile, "")
	check("known_hosts", d.SSH.KnownHosts, filepath.Join(dir, "ssh/known_hosts"))
	check("connect_timeout", d.SSH.ConnectTimeout.D(), 10*time.Second)
	check("command_timeout", d.SSH.CommandTimeout.D(), 5*time.Minute)
	check("keepalive", d.SSH.Keepalive.D(), 15*time.Second)
	check("max_connections", d.SSH.MaxConnections, 0)
	check("state", d.State, "")

	s, ok := cfg.Service("citoid")
	if !ok {
		t.Fatal("no citoid")
	}
	check("name", s.Name, "citoid")
	check("upstream", s.Upstream, filepath.Join(filepath.Dir(dir), "upstream/citoid.git"))
	check("branch", s.Branch, "")
	check("port", s.Port, 0)
	check("port_timeout", s.PortTimeout.D(), 30*time.Second)
	check("keep_revs", s.KeepRevs, 5)
	check("prompt_timeout", s.PromptTimeout.D(), 10*time.Minute)
	check("http check", s.Checks[0], Check{Name: "info", HTTP: "http://127.0.0.1:1970/_info", ExpectStatus: 200, Timeout: Duration(10 * time.Second)})
	check("command check", s.Checks[1], Check{Name: "smoke", Command: "true", Timeout: Duration(10 * time.Second)})
	check("parallel default", s.Groups[0].Parallel, 3)
	check("parallel set", s.Groups[1].Parallel, 1)
	check("failure_limit", s.Groups[0].FailureLimit, FailureLimit{})
	check("pause", s.Groups[0].Pause, false)

	// Without relay_listen and sal.listen, the defaults that hang on them
	// stay empty; an explicit empty projects map stays empty.
	doc2 := strings.NewReplacer("  relay_listen: 127.0.0.1:9200\n", "", "  listen: \":8080\"\n", "  projects: {}\n").Replace(doc)
	cfg, err = Parse(filepath.Join(dir, "bot.yaml"), []byte(doc2))
	if err != nil {
		t.Fatal(err)
	}
	check("relay_allow without listener", cfg.IRC.RelayAllow, []string(nil))
	check("public_url without listen", cfg.SAL.PublicURL, "")
	check("explicit empty projects", cfg.SAL.Projects, map[string]string{})

	// Values set are kept; trailing slashes of base URLs are dropped.
	doc3 := strings.NewReplacer(
		"  listen: \":8080\"\n", "  listen: \"[::]:8080\"\n",
		"deploy:\n", "deploy:\n  serve: 10.0.0.1:9000\n  deploy_dir: /opt/deploy\n  journal_dir: journal\n",
	).Replace(doc)
	cfg, err = Parse(filepath.Join(dir, "bot.yaml"), []byte(doc3))
	if err != nil {
		t.Fatal(err)
	}
	check("public_url from [::]", cfg.SAL.PublicURL, "http://localhost:8080")
	check("serve_url from serve", cfg.Deploy.ServeURL, "http://10.0.0.1:9000")
	check("deploy_dir", cfg.Deploy.DeployDir, "/opt/deploy")
	check("journal_dir", cfg.Deploy.JournalDir, filepath.Join(dir, "journal"))

	// deploy.state: a PostgreSQL URL, or nothing else.
	for in, ok := range map[string]bool{"postgres://deploybot@db1001/deploybot": true, "postgresql://db/x": true,
		"/var/lib/deploybot/state": false, "mysql://db/x": false} {
		_, err := Parse(filepath.Join(dir, "bot.yaml"), []byte(strings.Replace(doc, "deploy:\n", "deploy:\n  state: "+in+"\n", 1)))
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "deploy.state")) {
			t.Errorf("deploy.state %q: %v, want accepted=%v", in, err, ok)
		}
	}

	doc4 := strings.Replace(doc, "  listen: \":8080\"\n", "  listen: \":8080\"\n  public_url: https://sal.example.org/\n", 1)
	cfg, err = Parse(filepath.Join(dir, "bot.yaml"), []byte(doc4))
	if err != nil {
		t.Fatal(err)
	}
	check("public_url trimmed", cfg.SAL.PublicURL, "https://sal.example.org")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bot.yaml", base)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != p || cfg.SAL.Database != filepath.Join(dir, "sal.db") {
		t.Errorf("path %q, database %q", cfg.Path, cfg.SAL.Database)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	es, ok := err.(Errors)
	if !ok || len(es) != 1 {
		t.Fatalf("missing file: %v", err)
	}
	if want := filepath.Join(dir, "missing.yaml") + ": cannot read the configuration: no such file or directory"; es[0].Error() != want {
		t.Errorf("missing file: %q, want %q", es[0].Error(), want)
	}

	p = writeFile(t, dir, "bad.yaml", strings.Replace(base, "port: 1970", "port: x", 1))
	_, err = Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":24: services.citoid.port: want an integer") {
		t.Errorf("bad file: %v", err)
	}
}

// Every example under examples/ loads: the examples never rot.
func TestExamples(t *testing.T) {
	t.Setenv("DEPLOYBOT_SASL_PASSWORD", "example-password")
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d examples, want production.yaml and sandbox.yaml at least", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Services) == 0 {
				t.Errorf("no services")
			}
			if cfg.IRC.SASL == nil || cfg.IRC.SASL.Password.Reveal() == "" {
				t.Errorf("no SASL password")
			}
		})
	}
}

// production.yaml documents every key the schema has.
func TestProductionExampleCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile("../examples/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range schemaKeys(reflect.TypeFor[Config](), "") {
		name := k.path[strings.LastIndexAny(k.path, ".]")+1:]
		if !bytes.Contains(data, []byte(name+":")) {
			t.Errorf("production.yaml does not mention %s (%s)", name, k.path)
		}
	}
}

func TestParseHost(t *testing.T) {
	cases := []struct {
		in         string
		name       string
		port       int
		str, addr  string
		wantErrMsg string
	}{
		{in: "scb1001", name: "scb1001", port: 22, str: "scb1001", addr: "scb1001:22"},
		{in: "scb1001.eqiad.wmnet:22", name: "scb1001.eqiad.wmnet", port: 22, str: "scb1001.eqiad.wmnet", addr: "scb1001.eqiad.wmnet:22"},
		{in: "scb1001:2222", name: "scb1001", port: 2222, str: "scb1001:2222", addr: "scb1001:2222"},
		{in: "10.0.0.1", name: "10.0.0.1", port: 22, str: "10.0.0.1", addr: "10.0.0.1:22"},
		{in: "127.0.0.10:2222", name: "127.0.0.10", port: 2222, str: "127.0.0.10:2222", addr: "127.0.0.10:2222"},
		{in: "::1", name: "::1", port: 22, str: "::1", addr: "[::1]:22"},
		{in: "2001:db8::1", name: "2001:db8::1", port: 22, str: "2001:db8::1", addr: "[2001:db8::1]:22"},
		{in: "[2001:db8::1]:2222", name: "2001:db8::1", port: 2222, str: "[2001:db8::1]:2222", addr: "[2001:db8::1]:2222"},
		{in: "[::1]:22", name: "::1", port: 22, str: "::1", addr: "[::1]:22"},
		{in: "", wantErrMsg: "empty"},
		{in: "a b", wantErrMsg: "only letters"},
		{in: "host:", wantErrMsg: "port must be"},
		{in: "host:+22", wantErrMsg: "port must be"},
		{in: "host:ssh", wantErrMsg: "port must be"},
		{in: "-host", wantErrMsg: "start or end with '-'"},
		{in: "a..b", wantErrMsg: "empty label"},
		{in: "host.", wantErrMsg: "empty label"},
		{in: "[host]:22", wantErrMsg: "brackets are only for IPv6"},
		{in: "[::1]", wantErrMsg: "invalid host"},
		{in: "1.2.3.4.5", wantErrMsg: "numeric label"},
		{in: strings.Repeat("a", 64) + ".example", wantErrMsg: "at most 63 bytes"},
	}
	for _, tc := range cases {
		h, err := ParseHost(tc.in)
		if tc.wantErrMsg != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrMsg) {
				t.Errorf("ParseHost(%q) = %v, %v; want error containing %q", tc.in, h, err, tc.wantErrMsg)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHost(%q): %v", tc.in, err)
			continue
		}
		if h.Name != tc.name || h.Port != tc.port || h.String() != tc.str || h.Addr() != tc.addr {
			t.Errorf("ParseHost(%q) = %#v (String %q, Addr %q); want %s %d %q %q", tc.in, h, h.String(), h.Addr(), tc.name, tc.port, tc.str, tc.addr)
		}
	}
	// The zero port means 22.
	if got := (Host{Name: "x"}).Addr(); got != "x:22" {
		t.Errorf("Addr of port 0 = %q", got)
	}
	// Round trip through YAML.
	var hs []Host
	if err := yaml.Unmarshal([]byte(`[a, "b:2222", "[::1]:2200"]`), &hs); err != nil {
		t.Fatal(err)
	}
	out, _ := yaml.Marshal(hs)
	if string(out) != "- a\n- b:2222\n- '[::1]:2200'\n" {
		t.Errorf("marshal: %q", out)
	}
	if err := yaml.Unmarshal([]byte(`[a:0]`), &hs); err == nil {
		t.Error("yaml accepted a:0")
	}
}

func TestFailureLimit(t *testing.T) {
	cases := []struct {
		in      string
		str     string
		allowed map[int]int // group size → hosts that may fail
	}{
		{"0", "0", map[int]int{0: 0, 1: 0, 10: 0}},
		{"2", "2", map[int]int{0: 0, 1: 1, 2: 2, 10: 2}},
		{"10%", "10%", map[int]int{1: 0, 9: 0, 10: 1, 19: 1, 20: 2, 100: 10}},
		{"50%", "50%", map[int]int{1: 0, 2: 1, 3: 1, 4: 2}},
		{"100%", "100%", map[int]int{1: 1, 7: 7}},
		{"0%", "0%", map[int]int{5: 0}},
		{" 25 % ", "25%", map[int]int{4: 1}},
	}
	for _, tc := range cases {
		f, err := ParseFailureLimit(tc.in)
		if err != nil {
			t.Errorf("ParseFailureLimit(%q): %v", tc.in, err)
			continue
		}
		if f.String() != tc.str {
			t.Errorf("String(%q) = %q", tc.in, f.String())
		}
		for size, want := range tc.allowed {
			if got := f.Allowed(size); got != want {
				t.Errorf("%s.Allowed(%d) = %d, want %d", f, size, got, want)
			}
		}
	}
	for _, in := range []string{"", "-1", "101%", "1.5", "10 %%", "%", "x", "1e3"} {
		if f, err := ParseFailureLimit(in); err == nil {
			t.Errorf("ParseFailureLimit(%q) = %v, want error", in, f)
		}
	}
	var g struct {
		A, B FailureLimit
	}
	if err := yaml.Unmarshal([]byte("a: 3\nb: \"20%\"\n"), &g); err != nil || g.A != (FailureLimit{Count: 3}) || g.B != (FailureLimit{Count: 20, Percent: true}) {
		t.Errorf("yaml: %+v %v", g, err)
	}
	out, _ := yaml.Marshal(g)
	if string(out) != "a: 3\nb: 20%\n" {
		t.Errorf("marshal: %q", out)
	}
}

func TestDuration(t *testing.T) {
	d, err := ParseDuration("1h30m")
	if err != nil || d.D() != 90*time.Minute || d.String() != "1h30m0s" {
		t.Errorf("1h30m: %v %v", d, err)
	}
	for _, in := range []string{"", "0", "0s", "-1s", "10", "10 minutes", "1d"} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), "want a Go duration such as 30s, 10m or 1h30m") {
			t.Errorf("ParseDuration(%q) = %v", in, err)
		}
	}
	var v struct{ T Duration }
	if err := yaml.Unmarshal([]byte("t: 90s\n"), &v); err != nil || v.T.D() != 90*time.Second {
		t.Errorf("yaml: %v %v", v, err)
	}
	out, _ := yaml.Marshal(v)
	if string(out) != "t: 1m30s\n" {
		t.Errorf("marshal: %q", out)
	}
	j, _ := json.Marshal(v)
	if string(j) != `{"T":"1m30s"}` {
		t.Errorf("json: %s", j)
	}
}

func TestHelpers(t *testing.T) {
	doc := base + `  mathoid:
    repo: mathoid/deploy
    upstream: https://gerrit.example.org/r/mathoid/deploy
    target_dir: /srv/deployment/mathoid/deploy
    groups: [{name: a, hosts: [m1, m2]}, {name: b, hosts: ["m3:2222"]}]
  apertium:
    repo: apertium/deploy
    upstream: https://gerrit.example.org/r/apertium/deploy
    target_dir: /srv/deployment/apertium/deploy
    canary: [ap1]
`
	doc = strings.Replace(doc, "relays: [logmsgbot]", "relays: [logmsgbot, \"Relay[1]\"]\n  relay_hostmasks: [\"*!*@wikimedia/bot/*\"]", 1)
	doc = strings.Replace(doc, "  listen: 127.0.0.1:8080\n", "  listen: 127.0.0.1:8080\n  projects: {\"#OPS\": production}\n", 1)
	cfg, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ServiceNames(); !reflect.DeepEqual(got, []string{"apertium", "citoid", "mathoid"}) {
		t.Errorf("ServiceNames = %v", got)
	}
	s, ok := cfg.Service("citoid")
	if !ok || s.Name != "citoid" {
		t.Fatalf("Service(citoid) = %v, %v", s, ok)
	}
	if _, ok := cfg.Service("Citoid"); ok {
		t.Errorf("Service matched a different case")
	}
	if _, ok := cfg.Service("nope"); ok {
		t.Errorf("Service(nope) found")
	}
	var names []string
	for _, h := range s.AllHosts() {
		names = append(names, h.String())
	}
	if !reflect.DeepEqual(names, []string{"scb1001", "scb1002", "scb1003"}) {
		t.Errorf("AllHosts = %v", names)
	}
	m, _ := cfg.Service("mathoid")
	if got := m.AllHosts(); len(got) != 3 || got[2].Addr() != "m3:2222" {
		t.Errorf("AllHosts = %v", got)
	}
	for ch, want := range map[string]string{"#ops": "production", "#OPS": "production", "#Ops": "production"} {
		if p, ok := cfg.Project(ch); !ok || p != want {
			t.Errorf("Project(%q) = %q, %v", ch, p, ok)
		}
	}
	if p, ok := cfg.Project("#dev"); ok {
		t.Errorf("Project(#dev) = %q: projects were set, #dev is not among them", p)
	}
	if want := []string{"logmsgbot", "Relay[1]"}; !reflect.DeepEqual(cfg.IRC.Relays, want) {
		t.Errorf("Relays = %q, want %q", cfg.IRC.Relays, want)
	}
	if want := []string{"*!*@wikimedia/bot/*"}; !reflect.DeepEqual(cfg.IRC.RelayHostmasks, want) {
		t.Errorf("RelayHostmasks = %q, want %q", cfg.IRC.RelayHostmasks, want)
	}
}

// A pathological document (merge-key and alias bombs) is refused, not
// expanded for ever.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x:\n  - &m0 {nick: a, server: b}\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [", i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("irc: {<<: *m8}\n")
	done := make(chan error, 1)
	go func() {
		_, err := Parse("bomb.yaml", []byte(b.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "the document expands to more than") {
			t.Errorf("got %v", firstLines(err, 5))
		}
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("Parse did not return")
	}
}

func firstLines(err error, n int) string {
	if err == nil {
		return "<nil>"
	}
	lines := strings.SplitN(err.Error(), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// Where the deploy log links point: with the SAL web pages, at
// logs_listen, or nowhere.
func TestDeployLogsDefaults(t *testing.T) {
	head := `irc:
  server: irc.example.org:6697
  nick: deploybot
  channels: ["#ops"]
sal:
  database: sal.db
`
	for _, c := range []struct {
		name, doc string
		serve     bool
		listen    string
		publicURL string
	}{
		{"with the SAL web", "  listen: 127.0.0.1:8080\n  public_url: https://sal.example.org/\n", true, "", "https://sal.example.org"},
		{"no web at all", "", true, "", ""},
		{"own listener", "  listen: 127.0.0.1:8080\ndeploy:\n  logs_listen: \":8082\"\n", true, ":8082", "http://localhost:8082"},
		{"own listener and URL", "deploy:\n  logs_listen: 10.0.0.5:8082\n  logs_public_url: https://logs.example.org/\n", true, "10.0.0.5:8082", "https://logs.example.org"},
		{"off", "  listen: 127.0.0.1:8080\ndeploy:\n  serve_logs: false\n", false, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(t.TempDir(), "bot.yaml"), []byte(head+c.doc))
			if err != nil {
				t.Fatal(err)
			}
			d := cfg.Deploy
			if d.ServeLogs != c.serve || d.LogsListen != c.listen || d.LogsPublicURL != c.publicURL {
				t.Errorf("serve_logs %v, logs_listen %q, logs_public_url %q; want %v, %q, %q",
					d.ServeLogs, d.LogsListen, d.LogsPublicURL, c.serve, c.listen, c.publicURL)
			}
		})
	}
}
