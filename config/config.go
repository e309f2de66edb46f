// Package config holds deploybot's configuration: the YAML schema, its
// strict decoding and its validation.
//
// It knows YAML and the rules a valid configuration obeys, nothing more: it
// does not dial servers, open databases or read git repositories. A
// configuration that Load accepts is complete (defaults applied, secrets
// resolved) and safe to hand to the bot, the SAL and the deployer.
//
// Load reports every problem at once, each naming the file, the line and the
// key, and what was expected instead (see Errors). Relative paths in the file
// are taken relative to the file's own directory and made absolute. Of the
// files a configuration names, only password files are read at load time;
// keys, known_hosts and databases are opened by whoever uses them.
//
// Secrets (the SASL password) come from a file or the environment, never
// from the YAML, and never print: see Secret.
package config

import (
	"net/netip"
	"time"
)

// Config is one deploybot configuration file.
type Config struct {
	// Path is the file the configuration was loaded from, as given to
	// Load.
	Path string `yaml:"-"`

	IRC      IRC                 `yaml:"irc"`
	SAL      SAL                 `yaml:"sal"`
	Deploy   Deploy              `yaml:"deploy"`
	Access   Access              `yaml:"access"`
	Services map[string]*Service `yaml:"services"`
	Metrics  Metrics             `yaml:"metrics"`

	// Warnings are what Load accepted but is unsafe, each with its file,
	// line and key like an Error: a secret file (SASL password, SSH key,
	// the configuration itself when sal.database holds a password) that
	// its group or other users can read or write, SASL without TLS to
	// another machine, irc.tls_insecure. They are not errors: serve logs
	// them and check-config prints them.
	Warnings []*Error `yaml:"-" json:"-"`
}

// Metrics is where `deploybot serve` serves its Prometheus metrics, at
// /metrics.
type Metrics struct {
	// Serve serves them. Default true; false serves no /metrics anywhere.
	Serve bool `yaml:"serve"`
	// Listen is host:port of a web server of the metrics' own (to keep
	// them off a public SAL address). Optional: when empty, the SAL web
	// server (sal.listen) serves /metrics; when neither is set, nothing
	// does.
	Listen string `yaml:"listen"`
}

// IRC is how the bot reaches its IRC network and where it listens.
type IRC struct {
	// Server is host:port of the IRC server. Required.
	Server string `yaml:"server"`
	// TLS connects with TLS. Default false.
	TLS bool `yaml:"tls"`
	// TLSInsecure skips verification of the server certificate. Default
	// false; meant for test networks only.
	TLSInsecure bool `yaml:"tls_insecure"`
	// TLSCAFile is a PEM file of CA certificates to trust for the server
	// instead of the system's. Optional.
	TLSCAFile string `yaml:"tls_ca_file"`
	// Nick is the bot's primary nick. The bot acts on commands only while
	// it holds this nick. Required.
	Nick string `yaml:"nick"`
	// User is the ident/username. Default: Nick.
	User string `yaml:"user"`
	// RealName is the realname/gecos. Default: "deploybot".
	RealName string `yaml:"realname"`
	// SASL, when set, logs in with SASL PLAIN.
	SASL *SASL `yaml:"sasl"`
	// Channels the bot joins. At least one is required.
	Channels []string `yaml:"channels"`
	// Prefix starts a command. Default "!".
	Prefix string `yaml:"prefix"`
	// Relays are the services accounts of relay bots (e.g. logmsgbot):
	// a sender logged in to one of them (as the server's account-tag
	// says) may send "!log user@host message" on behalf of someone else.
	// A nick alone never makes a relay: somebody without an account may
	// take any nick that is free.
	Relays []string `yaml:"relays"`
	// RelayHostmasks are nick!user@host globs that identify relay bots
	// too, for servers or bots without services accounts. Like the
	// deployers' hostmasks, each must name a host, cloak or address.
	RelayHostmasks []string `yaml:"relay_hostmasks"`
	// RelayListen is host:port of the tcpircbot-compatible listener.
	// Optional; empty means off.
	RelayListen string `yaml:"relay_listen"`
	// RelayAllow lists the CIDRs allowed to connect to RelayListen.
	// Default (when RelayListen is set) 127.0.0.0/8 and ::1/128.
	RelayAllow []string `yaml:"relay_allow"`
	// RelayAllowPrefixes is RelayAllow parsed (and masked).
	RelayAllowPrefixes []netip.Prefix `yaml:"-"`
	// Rate paces every line the bot sends.
	Rate Rate `yaml:"rate"`
}

// SASL holds SASL PLAIN credentials. The password comes from PasswordFile
// or from the environment variable named by PasswordEnv; it is never
// printed.
type SASL struct {
	// Account is the services account. Required when sasl is set.
	Account string `yaml:"account"`
	// PasswordFile is a file holding the password (trailing newline
	// removed). A relative path is relative to the configuration file;
	// after Load it is absolute.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	// Exactly one of PasswordFile and PasswordEnv is set.
	PasswordEnv string `yaml:"password_env"`
	// Password is the resolved secret, read by Load. Never read from
	// YAML.
	Password Secret `yaml:"-"`
}

// Rate is a token bucket in front of every line sent to IRC.
type Rate struct {
	// PerSecond is the sustained rate. Default 0.5 (one line per 2 s).
	PerSecond float64 `yaml:"per_second"`
	// Burst is the bucket size. Default 5.
	Burst int `yaml:"burst"`
}

// SAL configures the Server Admin Log.
type SAL struct {
	// Database is a SQLite file path or a postgres:// (postgresql://)
	// URL. Required. After Load a file path is absolute.
	Database string `yaml:"database"`
	// Listen is host:port of the SAL web server. Optional; empty means off.
	Listen string `yaml:"listen"`
	// PublicURL is the base of the links the bot posts, without a
	// trailing slash. Default http://<listen> (localhost when listen has
	// no host or is 0.0.0.0/::); empty when Listen is empty, and then the
	// bot has no link to give.
	PublicURL string `yaml:"public_url"`
	// Projects maps a channel to its SAL project. `!log` works in these
	// channels (use Config.Project to look one up). Every key is one of
	// IRC.Channels. Default (key absent): every configured channel, project
	// named after the channel without its '#' or '&'. An explicit empty
	// mapping means no SAL channel.
	Projects map[string]string `yaml:"projects"`
	// TaskURL is a format with one %s for task links (T12345). Optional.
	TaskURL string `yaml:"task_url"`
	// Spool is a local file where `!log` lines wait, durably, while the
	// database is unavailable; they are written to the database when it is
	// back. Default: <database>.spool for SQLite, and
	// /var/lib/deploybot/sal.spool for PostgreSQL.
	Spool string `yaml:"spool"`
}

// Deploy configures the deployment engine.
type Deploy struct {
	// DeployDir holds the deploy repositories. Default /srv/deployment.
	// After Load it is absolute.
	DeployDir string `yaml:"deploy_dir"`
	// Serve is the listen address of the read-only git server for
	// targets. Default ":8081".
	Serve string `yaml:"serve"`
	// ServeURL is the URL targets fetch from, without a trailing slash.
	// Default http://<serve>, with localhost when Serve has no host (or
	// is 0.0.0.0/::): set it whenever the targets are other machines.
	ServeURL string `yaml:"serve_url"`
	// JournalDir holds the per-deploy journals and locks. Default
	// /var/lib/deploybot/deploys. After Load it is absolute.
	JournalDir string `yaml:"journal_dir"`
	// State is where the deploy locks, manual locks and journals live:
	// empty (the default) for files under JournalDir, shared by the
	// processes of one deploy host; a postgres:// URL to share them
	// between deploy hosts (it may be the SAL's database). JournalDir is
	// then unused for them.
	State string `yaml:"state"`
	// ServeLogs serves the full log of each deploy over HTTP, at
	// <LogsPublicURL>/deploys/<id>, and makes the bot link to it. Default
	// true; false turns the log pages and the links off.
	ServeLogs bool `yaml:"serve_logs"`
	// LogsListen is host:port of a web server of the deploy logs' own.
	// Optional: when empty, the SAL web server (sal.listen) serves them
	// under /deploys/; when set, only this one does.
	LogsListen string `yaml:"logs_listen"`
	// LogsPublicURL is the base of the deploy log links the bot posts,
	// without a trailing slash (a log is at <base>/deploys/<id>). It may be
	// set only with LogsListen; default http://<logs_listen> (localhost
	// when it has no host or is 0.0.0.0/::). After Load it is the base in
	// every case: sal.public_url when the SAL web server serves the logs,
	// and empty when no server does (ServeLogs false, or neither
	// LogsListen nor sal.listen set).
	LogsPublicURL string `yaml:"logs_public_url"`
	// SSH is how the engine reaches targets.
	SSH SSH `yaml:"ssh"`
}

// SSH configures connections to deploy targets.
type SSH struct {
	// User on every target. Required when services are configured.
	User string `yaml:"user"`
	// KeyFile is a private key. Required unless Agent is true. After
	// Load it is absolute; it is not read at load time.
	KeyFile string `yaml:"key_file"`
	// Agent uses the ssh-agent at $SSH_AUTH_SOCK. Default false.
	Agent bool `yaml:"agent"`
	// KnownHosts is the known_hosts file host keys are checked against.
	// Required when services are configured. After Load it is absolute;
	// it is not read at load time.
	KnownHosts string `yaml:"known_hosts"`
	// ConnectTimeout bounds each dial and handshake. Default 10s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// CommandTimeout bounds each remote command unless a stage says
	// otherwise. Default 5m.
	CommandTimeout Duration `yaml:"command_timeout"`
	// Keepalive is the interval of SSH keepalives. Default 15s.
	Keepalive Duration `yaml:"keepalive"`
	// MaxConnections bounds how many SSH handshakes are in flight at once
	// and how many hosts of a group deploy at once (it caps each group's
	// parallel). Default 0: no bound beyond the groups' parallel.
	MaxConnections int `yaml:"max_connections"`
}

// Access lists who may deploy.
type Access struct {
	Deployers Deployers `yaml:"deployers"`
}

// Deployers names deployers by services account and, as a fallback, by
// hostmask glob (nick!user@host). A nick alone never authorizes.
type Deployers struct {
	Accounts  []string `yaml:"accounts"`
	Hostmasks []string `yaml:"hostmasks"`
}

// Service is one deployable service.
type Service struct {
	// Name is the key under services:. It matches
	// ^[a-z0-9][a-z0-9._-]{0,63}$ (names reach shells and file names).
	Name string `yaml:"-"`
	// Repo is the deploy repository's path under deploy.deploy_dir: a
	// clean relative path without "..". Required.
	Repo string `yaml:"repo"`
	// Upstream is what the deploy repository pulls from: a URL (https,
	// http, ssh, git, file), user@host:path, or a local path. Required.
	// After Load a local path is absolute.
	Upstream string `yaml:"upstream"`
	// Branch to follow. Default: the upstream's HEAD.
	Branch string `yaml:"branch"`
	// Submodules initializes and updates submodules recursively. Default
	// false.
	Submodules bool `yaml:"submodules"`
	// SubmoduleURLs are the absolute submodule URLs the deployment host
	// may fetch, as patterns: one with '*' or '?' is a glob over the whole
	// URL ('*' matches '/' too), one without is a prefix. Relative URLs in
	// .gitmodules ("../lib") are always allowed, resolved against the
	// upstream; any other URL must match. A local path or file:// URL
	// matches only a pattern that is itself an absolute path or file://
	// URL. Default: none (relative URLs only).
	SubmoduleURLs []string `yaml:"submodule_urls"`
	// TargetDir is the absolute, clean path of the service on each
	// target. Required.
	TargetDir string `yaml:"target_dir"`
	// Restart is the shell command run on a target after promote.
	// Optional.
	Restart string `yaml:"restart"`
	// Port is the TCP port that must accept a connection after restart.
	// Optional (0 = no port check).
	Port int `yaml:"port"`
	// PortTimeout is how long the port may take to open. Default 30s.
	PortTimeout Duration `yaml:"port_timeout"`
	// KeepRevs is how many done revisions are kept on each target, at
	// least 1. Default 5.
	KeepRevs int `yaml:"keep_revs"`
	// Checks run after the port check, in order.
	Checks []Check `yaml:"checks"`
	// Canary hosts are deployed first. Optional.
	Canary []Host `yaml:"canary"`
	// Groups follow the canary, in order. At least one host in canary or
	// groups is required.
	Groups []Group `yaml:"groups"`
	// PromptTimeout is how long a prompt waits; no answer means rollback.
	// Default 10m.
	PromptTimeout Duration `yaml:"prompt_timeout"`
	// Deployers are added to access.deployers for this service.
	Deployers Deployers `yaml:"deployers"`
}

// Check is one health check: exactly one of HTTP or Command is set.
type Check struct {
	// Name identifies the check in reports; unique within the service,
	// with the same rules as service names. Required.
	Name string `yaml:"name"`
	// HTTP is an http:// or https:// URL, fetched on the target's side.
	HTTP string `yaml:"http"`
	// ExpectStatus is the wanted HTTP status, 100–599. Default 200 for
	// HTTP checks; 0 for command checks.
	ExpectStatus int `yaml:"expect_status"`
	// ExpectBody is a regular expression the body must match. Optional.
	ExpectBody string `yaml:"expect_body"`
	// Command runs on the target in the new revision; exit 0 passes.
	Command string `yaml:"command"`
	// Timeout bounds the check. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

// Group is a batch of hosts deployed together.
type Group struct {
	// Name is unique within the service; "canary" is reserved. Required.
	Name string `yaml:"name"`
	// Hosts are name or name:port. At least one is required.
	Hosts []Host `yaml:"hosts"`
	// Parallel is how many hosts run at once. Default (0): all of them;
	// after Load it is never 0.
	Parallel int `yaml:"parallel"`
	// FailureLimit is how many hosts may fail without failing the group:
	// a count ("2", at most the group's size) or a percentage ("10%").
	// Default 0.
	FailureLimit FailureLimit `yaml:"failure_limit"`
	// Pause asks for !continue before this group starts. Default false.
	Pause bool `yaml:"pause"`
}

// Host is a deploy target, "name" or "name:port" (default port 22). The
// name is a DNS hostname or an IP address; an IPv6 address with a port is
// written "[addr]:port". A host appears at most once per service.
type Host struct {
	Name string
	Port int
}

// Duration is a time.Duration written as in Go ("90s", "10m", "1h30m").
// Where set it is greater than 0; 0 means "not set, use the default".
type Duration time.Duration

// FailureLimit is a count or a percentage of a group's hosts. Allowed
// turns it into a number of hosts.
type FailureLimit struct {
	// Count is the absolute number of hosts, when Percent is false.
	Count int
	// Percent means Count is a percentage (0–100).
	Percent bool
}

// Secret is a string that never prints: fmt (every verb), encoding/json,
// yaml and log/slog all show "[redacted]". Reveal returns the value.
type Secret string
