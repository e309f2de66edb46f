package config

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checker validates a decoded Config. Every rule runs; every problem is
// recorded with the line of its key. Values that already failed to decode
// are not reported again.
type checker struct {
	*state
	cfg *Config
	dir string // directory of the configuration file, for relative paths

	relayAllow []netip.Prefix
}

func (c *checker) errf(key, format string, args ...any) {
	if c.isBad(key) {
		return
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: c.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// required reports a key that is missing or empty.
func (c *checker) required(key, want string) {
	if c.has(key) {
		c.errf(key, "empty: want %s", want)
	} else {
		c.errf(key, "missing: want %s", want)
	}
}

func (c *checker) validate() {
	c.checkIRC()
	c.checkSAL()
	c.checkDeploy()
	c.checkDeployers("access.deployers", c.cfg.Access.Deployers)
	c.checkServices()
	c.checkMetrics()
}

// ---- shared rules ----

var (
	// nickRE is RFC 2812's nickname, with a generous length limit.
	nickRE = regexp.MustCompile("^[A-Za-z\\[\\]\\\\`_^{|}][A-Za-z0-9\\[\\]\\\\`_^{|}-]{0,31}$")
	// nameRE is a service, check or group name: these reach shells and
	// file names.
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	repoRE   = regexp.MustCompile(`^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*$`)
	targetRE = regexp.MustCompile(`^/[A-Za-z0-9_.+@/-]*$`)
)

const nameWant = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 bytes"

// hasSpaceOrControl reports whether s holds whitespace or control
// characters (or invalid UTF-8).
func hasSpaceOrControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// hasLineBreakOrNUL reports whether s holds CR, LF or NUL, which must never
// reach the IRC wire.
func hasLineBreakOrNUL(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// addrProblem checks host:port. A listen address may leave the host empty
// (":8081", all interfaces).
func addrProblem(s string, listen bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "not host:port"
	}
	if host == "" && !listen {
		return "the host is missing"
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			if why := hostnameProblem(host); why != "" {
				return why
			}
		}
	}
	if _, ok := parsePort(port); !ok {
		return "the port must be a number from 1 to 65535"
	}
	return ""
}

func (c *checker) checkDialAddr(key, s, example string) {
	if why := addrProblem(s, false); why != "" {
		c.errf(key, "invalid address %q: %s; want host:port, such as %s", s, why, example)
	}
}

func (c *checker) checkListenAddr(key, s, example string) {
	if why := addrProblem(s, true); why != "" {
		c.errf(key, "invalid listen address %q: %s; want host:port or :port, such as %s", s, why, example)
	}
}

// checkURL checks an http:// or https:// URL with a host.
func (c *checker) checkURL(key, s, example string) {
	want := fmt.Sprintf("want an http:// or https:// URL, such as %s", example)
	u, err := url.Parse(s)
	switch {
	case hasSpaceOrControl(s):
		c.errf(key, "invalid URL %q: contains spaces or control characters; %s", s, want)
	case err != nil:
		c.errf(key, "invalid URL %q: %s", s, want)
	case u.Scheme != "http" && u.Scheme != "https":
		c.errf(key, "invalid URL %q: the scheme must be http or https; %s", s, want)
	case u.Hostname() == "":
		c.errf(key, "invalid URL %q: the host is missing; %s", s, want)
	case u.Port() != "":
		if _, ok := parsePort(u.Port()); !ok {
			c.errf(key, "invalid URL %q: the port must be a number from 1 to 65535", s)
		}
	}
}

// checkPath checks a file or directory path written in the file; relative
// paths are later resolved against the configuration file's directory.
func (c *checker) checkPath(key, p string) bool {
	switch {
	case strings.HasPrefix(p, "~"):
		c.errf(key, "invalid path %q: ~ is not expanded; write the full path, or a path relative to the configuration file", p)
	case strings.ContainsAny(p, "\r\n\x00"):
		c.errf(key, "invalid path %q: contains a line break or NUL byte", p)
	default:
		return true
	}
	return false
}

// resolve makes p absolute against the configuration file's directory.
func (c *checker) resolve(p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

func (c *checker) checkNick(key, nick string) {
	if !nickRE.MatchString(nick) {
		c.errf(key, "invalid nick %q: want 1–32 letters, digits and []\\`_^{|}-, not starting with a digit or '-'", nick)
	}
}

func (c *checker) checkName(key, what, name string) {
	if !nameRE.MatchString(name) {
		c.errf(key, "invalid %s name %q: want %s (names reach shells and file names)", what, name, nameWant)
	}
}

// channelProblem says what is wrong with an IRC channel name, or "".
func channelProblem(ch string) string {
	switch {
	case ch == "":
		return "empty (an unquoted # starts a YAML comment: quote it, \"#ops\")"
	case ch[0] != '#' && ch[0] != '&':
		return "must start with # or & (and be quoted in YAML: \"#ops\")"
	case len(ch) < 2:
		return "the name after # is missing"
	case len(ch) > 50:
		return "longer than 50 bytes"
	case strings.ContainsAny(ch, " ,\a\x00\r\n\t"):
		return "must not contain spaces, commas or control characters"
	case !utf8.ValidString(ch):
		return "not valid UTF-8"
	}
	return ""
}

func (c *checker) checkDeployers(key string, d Deployers) {
	c.checkAccounts(key+".accounts", d.Accounts)
	c.checkHostmasks(key+".hostmasks", d.Hostmasks)
}

// checkAccounts checks a list of services account names at key.
func (c *checker) checkAccounts(key string, accounts []string) {
	for i, a := range accounts {
		k := index(key, i)
		if a == "" {
			c.errf(k, "empty account: want a services account name")
		} else if hasSpaceOrControl(a) || len(a) > 64 {
			c.errf(k, "invalid account %q: want a services account name without spaces or control characters, at most 64 bytes", a)
		}
	}
}

// checkHostmasks checks a list of nick!user@host globs at key: each must
// constrain the host, since the nick and user are whatever a client says.
func (c *checker) checkHostmasks(key string, masks []string) {
	for i, m := range masks {
		k := index(key, i)
		nick, rest, ok1 := strings.Cut(m, "!")
		user, host, ok2 := strings.Cut(rest, "@")
		switch {
		case !ok1 || !ok2 || nick == "" || user == "" || host == "" || strings.ContainsAny(host, "!@") || hasSpaceOrControl(m):
			c.errf(k, "invalid hostmask %q: want a glob of the form nick!user@host, such as \"*!*@wikimedia/*\"", m)
		case !constrainsHost(host):
			c.errf(k, "hostmask %q lets anyone in: the nick and user are whatever a client says, so the host part must name a host, cloak or address, such as \"*!*@wikimedia/*\" or \"*!*@10.0.0.5\"", m)
		}
	}
}

// constrainsHost reports whether the host part of a hostmask names
// something: a letter or digit, not only wildcards (* and ?) and the
// separators of names and addresses. "*", "*.*", "*/*" or "*:*" match
// every client.
func constrainsHost(host string) bool {
	for _, r := range host {
		if !strings.ContainsRune("*?.:/-_", r) {
			return true
		}
	}
	return false
}

// ---- irc ----

func (c *checker) checkIRC() {
	irc := &c.cfg.IRC
	if irc.Server == "" {
		c.required("irc.server", "the IRC server as host:port, such as irc.libera.chat:6697")
	} else {
		c.checkDialAddr("irc.server", irc.Server, "irc.libera.chat:6697")
	}
	if irc.Nick == "" {
		c.required("irc.nick", "the bot's nick, such as deploybot")
	} else {
		c.checkNick("irc.nick", irc.Nick)
	}
	if irc.User != "" && (hasSpaceOrControl(irc.User) || strings.Contains(irc.User, "@") || len(irc.User) > 64) {
		c.errf("irc.user", "invalid user %q: want a username without spaces, '@' or control characters", irc.User)
	}
	if hasLineBreakOrNUL(irc.RealName) {
		c.errf("irc.realname", "must not contain line breaks or NUL bytes")
	}
	c.checkPath("irc.tls_ca_file", irc.TLSCAFile)
	if irc.TLSCAFile != "" && !irc.TLS {
		c.errf("irc.tls_ca_file", "is set but irc.tls is false: set tls: true, or remove tls_ca_file")
	}
	c.checkSASL()

	if len(irc.Channels) == 0 {
		c.required("irc.channels", "a list of at least one channel, such as [\"#ops\"] (quoted: an unquoted # starts a YAML comment)")
	}
	seen := map[string]int{}
	for i, ch := range irc.Channels {
		k := index("irc.channels", i)
		if why := channelProblem(ch); why != "" {
			c.errf(k, "invalid channel %q: %s", ch, why)
			continue
		}
		if j, dup := seen[FoldName(ch)]; dup {
			c.errf(k, "channel %q is already listed at irc.channels[%d]", ch, j)
			continue
		}
		seen[FoldName(ch)] = i
	}

	if c.has("irc.prefix") && irc.Prefix == "" {
		c.errf("irc.prefix", "empty: want a command prefix such as \"!\" (quoted: an unquoted ! starts a YAML tag)")
	} else if hasSpaceOrControl(irc.Prefix) || len(irc.Prefix) > 16 {
		c.errf("irc.prefix", "invalid prefix %q: want up to 16 characters without spaces, such as \"!\"", irc.Prefix)
	}

	c.checkAccounts("irc.relays", irc.Relays)
	c.checkHostmasks("irc.relay_hostmasks", irc.RelayHostmasks)
	if irc.RelayListen != "" {
		c.checkListenAddr("irc.relay_listen", irc.RelayListen, "127.0.0.1:9200")
	}
	for i, s := range irc.RelayAllow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			c.errf(index("irc.relay_allow", i), "invalid CIDR %q: want an address with a prefix length, such as 127.0.0.0/8, 10.0.0.5/32 or ::1/128", s)
			continue
		}
		c.relayAllow = append(c.relayAllow, p.Masked())
	}

	if c.has("irc.rate.per_second") && (!(irc.Rate.PerSecond > 0) || math.IsInf(irc.Rate.PerSecond, 0)) {
		c.errf("irc.rate.per_second", "must be a number greater than 0 (lines per second, such as 0.5)")
	}
	if c.has("irc.rate.burst") && irc.Rate.Burst < 1 {
		c.errf("irc.rate.burst", "must be at least 1 (lines sent at once before pacing starts)")
	}
}

func (c *checker) checkSASL() {
	sasl := c.cfg.IRC.SASL
	if sasl == nil {
		return
	}
	if sasl.Account == "" {
		c.required("irc.sasl.account", "the services account to log in as")
	} else if hasSpaceOrControl(sasl.Account) {
		c.errf("irc.sasl.account", "invalid account %q: want a services account name without spaces or control characters", sasl.Account)
	}
	const both = "set password_file (a file holding the password) or password_env (an environment variable holding it)"
	switch {
	case sasl.PasswordFile != "" && sasl.PasswordEnv != "":
		c.errf("irc.sasl.password_env", "set only one of password_file and password_env")
	case sasl.PasswordFile == "" && sasl.PasswordEnv == "":
		if c.has("irc.sasl.password_file") {
			c.errf("irc.sasl.password_file", "empty: %s", both)
		} else if c.has("irc.sasl.password_env") {
			c.errf("irc.sasl.password_env", "empty: %s", both)
		} else {
			c.errf("irc.sasl.password_file", "missing: %s", both)
		}
	case sasl.PasswordFile != "":
		const key = "irc.sasl.password_file"
		if !c.checkPath(key, sasl.PasswordFile) {
			return
		}
		p := c.resolve(sasl.PasswordFile)
		pw, why := readSecretFile(p)
		if why != "" {
			c.errf(key, "%s", why)
			return
		}
		sasl.PasswordFile = p
		sasl.Password = Secret(pw)
	default:
		const key = "irc.sasl.password_env"
		name := sasl.PasswordEnv
		if !envRE.MatchString(name) {
			// Do not echo it: it may be the password itself.
			c.errf(key, "invalid environment variable name: want letters, digits and '_', such as DEPLOYBOT_SASL_PASSWORD (the password itself goes in the environment, not here)")
			return
		}
		pw, ok := os.LookupEnv(name)
		pw = strings.TrimRight(pw, "\r\n")
		switch {
		case !ok:
			c.errf(key, "the environment variable %s is not set: want it to hold the SASL password", name)
		case pw == "":
			c.errf(key, "the environment variable %s is empty: want it to hold the SASL password", name)
		case strings.ContainsAny(pw, "\x00\r\n"):
			c.errf(key, "the environment variable %s holds a line break: want the password alone", name)
		default:
			sasl.Password = Secret(pw)
		}
	}
}

// maxSecret bounds what is read from a password file.
const maxSecret = 4096

// readSecretFile reads a password file, removing trailing line breaks.
// The reason it returns on failure never holds the file's content.
func readSecretFile(p string) (string, string) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Sprintf("cannot read the password file: %v", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return "", fmt.Sprintf("the password file %s is a directory: want a file holding the password", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return "", fmt.Sprintf("cannot read the password file %s: %v", p, err)
	}
	if len(data) > maxSecret {
		return "", fmt.Sprintf("the password file %s is larger than %d bytes: want the password alone", p, maxSecret)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	switch {
	case pw == "":
		return "", fmt.Sprintf("the password file %s is empty: want it to hold the SASL password", p)
	case strings.ContainsAny(pw, "\x00\r\n"):
		return "", fmt.Sprintf("the password file %s holds more than one line: want the password alone", p)
	}
	return pw, ""
}

// ---- sal ----

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func (c *checker) checkSAL() {
	sal := &c.cfg.SAL
	switch {
	case sal.Database == "":
		c.required("sal.database", "a SQLite file path such as /var/lib/deploybot/sal.db, or a postgres:// URL")
	case isPostgres(sal.Database):
		if _, err := url.Parse(sal.Database); err != nil {
			// url's error would quote the URL, password and all.
			c.errf("sal.database", "invalid PostgreSQL URL: want postgres://user@host:port/dbname")
		}
	case strings.Contains(sal.Database, "://"):
		c.errf("sal.database", "unsupported database URL: want a SQLite file path, or a postgres:// URL")
	default:
		c.checkPath("sal.database", sal.Database)
	}
	c.checkPath("sal.spool", sal.Spool)
	if sal.Listen != "" {
		c.checkListenAddr("sal.listen", sal.Listen, "127.0.0.1:8080")
	}
	if sal.PublicURL != "" {
		c.checkURL("sal.public_url", sal.PublicURL, "https://sal.example.org")
	}
	channels := map[string]bool{}
	for _, ch := range c.cfg.IRC.Channels {
		channels[FoldName(ch)] = true
	}
	for _, ch := range sortedKeys(sal.Projects) {
		k := field("sal.projects", ch)
		if !channels[FoldName(ch)] {
			c.errf(k, "channel %q is not in irc.channels: want one of the channels the bot joins", ch)
		}
		p := sal.Projects[ch]
		if p == "" {
			c.errf(k, "empty project: want a project name such as production")
		} else if hasSpaceOrControl(p) || len(p) > 64 {
			c.errf(k, "invalid project %q: want a name without spaces or control characters, at most 64 bytes", p)
		}
	}
	if sal.TaskURL != "" {
		const want = "want a URL with exactly one %s where the task id goes, such as https://phabricator.wikimedia.org/%s"
		rest := strings.ReplaceAll(sal.TaskURL, "%%", "")
		if strings.Count(rest, "%s") != 1 || strings.Count(rest, "%") != 1 {
			c.errf("sal.task_url", "invalid task URL %q: %s", sal.TaskURL, want)
		} else {
			c.checkURL("sal.task_url", strings.Replace(rest, "%s", "T1", 1), "https://phabricator.wikimedia.org/%s")
		}
	}
}

// ---- deploy ----

func (c *checker) checkDeploy() {
	d := &c.cfg.Deploy
	c.checkPath("deploy.deploy_dir", d.DeployDir)
	c.checkPath("deploy.journal_dir", d.JournalDir)
	if d.State != "" {
		if _, err := url.Parse(d.State); !isPostgres(d.State) || err != nil {
			// url's error would quote the URL, password and all.
			c.errf("deploy.state", "want a PostgreSQL URL such as postgres://deploybot@db1001/deploybot, or leave the key out to keep the state in deploy.journal_dir")
		}
	}
	if d.Serve != "" {
		c.checkListenAddr("deploy.serve", d.Serve, "\":8081\"")
	} else if c.has("deploy.serve") {
		c.errf("deploy.serve", "empty: want a listen address such as \":8081\", or leave the key out for the default")
	}
	if d.ServeURL != "" {
		c.checkURL("deploy.serve_url", d.ServeURL, "http://deploy1001.eqiad.wmnet:8081")
	}
	c.checkDeployLogs()
	ssh := &d.SSH
	if ssh.User != "" && (hasSpaceOrControl(ssh.User) || strings.ContainsAny(ssh.User, "@:") || strings.HasPrefix(ssh.User, "-")) {
		c.errf("deploy.ssh.user", "invalid user %q: want a login name without spaces, '@' or ':'", ssh.User)
	}
	c.checkPath("deploy.ssh.key_file", ssh.KeyFile)
	c.checkPath("deploy.ssh.known_hosts", ssh.KnownHosts)
	if ssh.MaxConnections < 0 {
		c.errf("deploy.ssh.max_connections", "must be 0 (no limit) or more")
	}
	if len(c.cfg.Services) > 0 {
		if ssh.User == "" {
			c.required("deploy.ssh.user", "the login on every target, such as deploy-service (services are configured)")
		}
		if ssh.KnownHosts == "" {
			c.required("deploy.ssh.known_hosts", "the known_hosts file target host keys are checked against (services are configured)")
		}
		if ssh.KeyFile == "" && !ssh.Agent {
			c.required("deploy.ssh.key_file", "a private key file, or agent: true to use $SSH_AUTH_SOCK (services are configured)")
		}
	}
}

// checkDeployLogs checks where the deploy log pages are served.
func (c *checker) checkDeployLogs() {
	d := &c.cfg.Deploy
	off := c.has("deploy.serve_logs") && !d.ServeLogs
	if d.LogsListen != "" {
		c.checkListenAddr("deploy.logs_listen", d.LogsListen, "127.0.0.1:8082")
		for _, other := range []struct{ key, addr string }{
			{"sal.listen", c.cfg.SAL.Listen},
			{"deploy.serve", d.Serve},
			{"irc.relay_listen", c.cfg.IRC.RelayListen},
		} {
			if other.addr == d.LogsListen {
				c.errf("deploy.logs_listen", "%s is already %s's address: want an address of its own (leave logs_listen out to serve the logs with the SAL web pages)", d.LogsListen, other.key)
				break
			}
		}
		if off {
			c.errf("deploy.logs_listen", "is set but deploy.serve_logs is false: remove logs_listen, or serve_logs")
		}
	} else if c.has("deploy.logs_listen") {
		c.errf("deploy.logs_listen", "empty: want a listen address such as 127.0.0.1:8082, or leave the key out to serve the logs on sal.listen")
	}
	if d.LogsPublicURL != "" {
		c.checkURL("deploy.logs_public_url", d.LogsPublicURL, "https://deploy-logs.example.org")
		switch {
		case off:
			c.errf("deploy.logs_public_url", "is set but deploy.serve_logs is false: remove logs_public_url, or serve_logs")
		case d.LogsListen == "":
			c.errf("deploy.logs_public_url", "is set but deploy.logs_listen is not: the logs are then served on sal.listen, under sal.public_url; set logs_listen, or remove logs_public_url")
		}
	}
}

// checkMetrics checks where the metrics are served.
func (c *checker) checkMetrics() {
	m := &c.cfg.Metrics
	switch {
	case m.Listen != "":
		c.checkListenAddr("metrics.listen", m.Listen, "127.0.0.1:9180")
		for _, other := range []struct{ key, addr string }{
			{"sal.listen", c.cfg.SAL.Listen},
			{"deploy.serve", c.cfg.Deploy.Serve},
			{"deploy.logs_listen", c.cfg.Deploy.LogsListen},
			{"irc.relay_listen", c.cfg.IRC.RelayListen},
		} {
			if other.addr == m.Listen {
				c.errf("metrics.listen", "%s is already %s's address: want an address of its own (leave metrics.listen out to serve /metrics with the SAL web pages)", m.Listen, other.key)
				break
			}
		}
		if c.has("metrics.serve") && !m.Serve {
			c.errf("metrics.listen", "is set but metrics.serve is false: remove metrics.listen, or metrics.serve")
		}
	case c.has("metrics.listen"):
		c.errf("metrics.listen", "empty: want a listen address such as 127.0.0.1:9180, or leave the key out to serve /metrics on sal.listen")
	}
}

// ---- services ----

func (c *checker) checkServices() {
	for _, name := range sortedKeys(c.cfg.Services) {
		c.checkService(name, c.cfg.Services[name])
	}
}

func (c *checker) checkService(name string, s *Service) {
	p := field("services", name)
	if !nameRE.MatchString(name) {
		c.errf(p, "invalid service name %q: want %s (service names reach shells and file names)", name, nameWant)
	}

	switch {
	case s.Repo == "":
		c.required(p+".repo", "the deploy repository's path under deploy.deploy_dir, such as citoid/deploy")
	case path.IsAbs(s.Repo) || strings.HasPrefix(s.Repo, "\\"):
		c.errf(p+".repo", "invalid repo %q: want a relative path under deploy.deploy_dir, such as citoid/deploy", s.Repo)
	case s.Repo == "." || s.Repo == ".." || strings.HasPrefix(s.Repo, "../") || strings.Contains(s.Repo, "/../") || strings.HasSuffix(s.Repo, "/.."):
		c.errf(p+".repo", "invalid repo %q: must not contain '..'; want a path under deploy.deploy_dir, such as citoid/deploy", s.Repo)
	case path.Clean(s.Repo) != s.Repo:
		c.errf(p+".repo", "invalid repo %q: want a clean path (no '.', '//' or trailing '/'), such as %s", s.Repo, path.Clean(s.Repo))
	case !repoRE.MatchString(s.Repo):
		c.errf(p+".repo", "invalid repo %q: want letters, digits, '.', '_', '+', '-' and '/', such as citoid/deploy", s.Repo)
	}

	if s.Upstream == "" {
		c.required(p+".upstream", "the URL or path the deploy repository pulls from")
	} else if why := upstreamProblem(s.Upstream); why != "" {
		c.errf(p+".upstream", "invalid upstream %q: %s", s.Upstream, why)
	}

	for i, pat := range s.SubmoduleURLs {
		if why := submoduleURLProblem(pat); why != "" {
			c.errf(index(p+".submodule_urls", i), "invalid pattern %q: %s", pat, why)
		}
	}
	if len(s.SubmoduleURLs) > 0 && !s.Submodules {
		c.errf(p+".submodule_urls", "is set but submodules is false: set submodules: true, or remove submodule_urls")
	}

	if s.Branch != "" && refProblem(s.Branch) {
		c.errf(p+".branch", "invalid branch %q: want a git branch name such as main", s.Branch)
	}

	switch {
	case s.TargetDir == "":
		c.required(p+".target_dir", "the absolute path of the service on each target, such as /srv/deployment/citoid/deploy")
	case !path.IsAbs(s.TargetDir):
		c.errf(p+".target_dir", "invalid target_dir %q: want an absolute path, such as /srv/deployment/citoid/deploy", s.TargetDir)
	case path.Clean(s.TargetDir) != s.TargetDir:
		c.errf(p+".target_dir", "invalid target_dir %q: want a clean path (no '.', '..', '//' or trailing '/'), such as %s", s.TargetDir, path.Clean(s.TargetDir))
	case s.TargetDir == "/":
		c.errf(p+".target_dir", "invalid target_dir \"/\": want a directory of its own, such as /srv/deployment/citoid/deploy")
	case !targetRE.MatchString(s.TargetDir):
		c.errf(p+".target_dir", "invalid target_dir %q: want letters, digits, '.', '_', '+', '@', '-' and '/' (it reaches shells on the targets)", s.TargetDir)
	}

	if strings.ContainsRune(s.Restart, 0) {
		c.errf(p+".restart", "must not contain NUL bytes")
	}
	if s.Port < 0 || s.Port > 65535 {
		c.errf(p+".port", "invalid port %d: want 1–65535, or 0 for no port check", s.Port)
	}
	if c.has(p+".keep_revs") && s.KeepRevs < 1 {
		c.errf(p+".keep_revs", "must be at least 1 (the revision deployed is kept)")
	}
	c.checkChecks(p, s)

	// Hosts: each at most once per service.
	hosts := map[string]string{} // host key → path where first listed
	total := 0
	addHost := func(k string, h Host) {
		total++
		if first, dup := hosts[h.key()]; dup {
			c.errf(k, "host %s is already listed at %s (line %d): a host may appear once per service", h, first, c.lineOf(first))
			return
		}
		hosts[h.key()] = k
	}
	for i, h := range s.Canary {
		if h.Name != "" {
			addHost(index(p+".canary", i), h)
		}
	}
	groups := map[string]string{}
	for i, g := range s.Groups {
		gp := index(p+".groups", i)
		switch {
		case g.Name == "":
			c.required(gp+".name", "a group name such as eqiad")
		case strings.EqualFold(g.Name, "canary"):
			c.errf(gp+".name", "the group name \"canary\" is reserved: list canary hosts under canary:")
		case !nameRE.MatchString(g.Name):
			c.checkName(gp+".name", "group", g.Name)
		default:
			if first, dup := groups[g.Name]; dup {
				c.errf(gp+".name", "group %q is already defined at %s: want unique group names", g.Name, first)
			}
			groups[g.Name] = gp
		}
		if len(g.Hosts) == 0 {
			c.required(gp+".hosts", "a list of at least one host")
		}
		for j, h := range g.Hosts {
			if h.Name != "" {
				addHost(index(gp+".hosts", j), h)
			}
		}
		if g.Parallel < 0 {
			c.errf(gp+".parallel", "must be 0 (all hosts of the group at once) or more")
		}
		if !g.FailureLimit.Percent && len(g.Hosts) > 0 && g.FailureLimit.Count > len(g.Hosts) {
			c.errf(gp+".failure_limit", "%d is more than the group's %d host(s): want at most %d, or a percentage such as \"10%%\"", g.FailureLimit.Count, len(g.Hosts), len(g.Hosts))
		}
	}
	if total == 0 && !c.isBad(p+".canary") && !c.isBad(p+".groups") {
		c.errf(p, "no hosts: want at least one host in canary or groups")
	}
	c.checkDeployers(p+".deployers", s.Deployers)
}

func (c *checker) checkChecks(p string, s *Service) {
	names := map[string]string{}
	for i, ch := range s.Checks {
		cp := index(p+".checks", i)
		if ch.Name == "" {
			c.required(cp+".name", "a check name such as info")
		} else if !nameRE.MatchString(ch.Name) {
			c.checkName(cp+".name", "check", ch.Name)
		} else {
			if first, dup := names[ch.Name]; dup {
				c.errf(cp+".name", "check %q is already defined at %s: want unique check names", ch.Name, first)
			}
			names[ch.Name] = cp
		}
		switch {
		case ch.HTTP != "" && ch.Command != "":
			c.errf(cp, "set http or command, not both")
		case ch.HTTP == "" && ch.Command == "":
			if !c.isBad(cp+".http") && !c.isBad(cp+".command") {
				c.errf(cp, "missing: set http (a URL fetched on the target) or command (run on the target; exit 0 passes)")
			}
		case ch.HTTP != "":
			c.checkURL(cp+".http", ch.HTTP, "http://127.0.0.1:1970/_info")
		case ch.Command != "":
			if strings.ContainsRune(ch.Command, 0) {
				c.errf(cp+".command", "must not contain NUL bytes")
			}
			if c.has(cp + ".expect_status") {
				c.errf(cp+".expect_status", "only for http checks: a command check passes when it exits 0")
			}
			if c.has(cp + ".expect_body") {
				c.errf(cp+".expect_body", "only for http checks")
			}
		}
		if c.has(cp+".expect_status") && (ch.ExpectStatus < 100 || ch.ExpectStatus > 599) {
			c.errf(cp+".expect_status", "invalid HTTP status %d: want 100–599, such as 200", ch.ExpectStatus)
		}
		if ch.ExpectBody != "" {
			if _, err := regexp.Compile(ch.ExpectBody); err != nil {
				c.errf(cp+".expect_body", "invalid regular expression: %v", err)
			}
		}
	}
}

// upstreamProblem checks a git remote: a URL (http, https, ssh, git,
// file), scp-like user@host:path, or a local path.
func upstreamProblem(u string) string {
	if hasSpaceOrControl(u) {
		return "contains spaces or control characters"
	}
	if strings.HasPrefix(u, "-") {
		return "must not start with '-'"
	}
	if i := strings.Index(u, "://"); i >= 0 {
		pu, err := url.Parse(u)
		if err != nil {
			return "want a git URL such as https://gerrit.example.org/r/citoid/deploy"
		}
		switch pu.Scheme {
		case "http", "https", "ssh", "git":
			if pu.Hostname() == "" {
				return "the host is missing"
			}
		case "file":
		default:
			return "the scheme must be https, http, ssh, git or file"
		}
	}
	return ""
}

// submoduleURLProblem says what is wrong with a submodule_urls pattern, ""
// when nothing is.
func submoduleURLProblem(pat string) string {
	const want = "want a URL prefix or glob such as \"https://gerrit.example.org/r/*\", or an absolute path such as /srv/git/"
	switch {
	case pat == "":
		return "empty; " + want
	case hasSpaceOrControl(pat):
		return "contains spaces or control characters; " + want
	case strings.HasPrefix(pat, "-"):
		return "must not start with '-'"
	case strings.HasPrefix(pat, "./") || strings.HasPrefix(pat, "../"):
		return "relative URLs are always allowed and need no pattern; " + want
	case strings.HasPrefix(pat, "~"):
		return "~ is not expanded; " + want
	case strings.Contains(pat, "::"):
		return "remote helpers (<transport>::<address>) are not supported; " + want
	}
	for _, seg := range strings.Split(pat, "/") {
		if seg == "." || seg == ".." {
			return "must not contain '.' or '..' segments; " + want
		}
	}
	if strings.HasPrefix(pat, "/") || strings.HasPrefix(pat, "file://") {
		return ""
	}
	if i := strings.Index(pat, "://"); i > 0 {
		switch pat[:i] {
		case "http", "https", "ssh", "git":
			return ""
		}
		if !strings.ContainsAny(pat[:i], "*?") {
			return "the scheme must be https, http, ssh, git or file; " + want
		}
		return ""
	}
	if strings.Contains(pat, ":") || strings.ContainsAny(pat, "*?") {
		return "" // scp-like user@host:path, or a glob
	}
	return "neither a URL, user@host:path nor an absolute path; " + want
}

// isLocalUpstream reports whether an upstream is a path on this machine
// rather than a URL or scp-like user@host:path.
func isLocalUpstream(u string) bool {
	if strings.Contains(u, "://") {
		return false
	}
	colon := strings.IndexByte(u, ':')
	slash := strings.IndexByte(u, '/')
	return colon < 0 || (slash >= 0 && slash < colon)
}

// refProblem reports whether a branch name breaks git's ref rules.
func refProblem(b string) bool {
	return hasSpaceOrControl(b) || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") ||
		strings.ContainsAny(b, "~^:?*[\\")
}

// FoldName folds an IRC nick or channel name by the rfc1459 case mapping
// the configuration uses to compare them: ASCII letters, and []\~ as {}|^.
func FoldName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r == '[':
			return '{'
		case r == ']':
			return '}'
		case r == '\\':
			return '|'
		case r == '~':
			return '^'
		}
		return r
	}, s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
