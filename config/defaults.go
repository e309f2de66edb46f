package config

import (
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults of the deploy settings, as documented on each field. Load
// applies them; they are exported so that a package given a configuration
// built by hand (a test, a tool) falls back on the same values instead of
// keeping copies of its own.
const (
	DefaultConnectTimeout = defaultConnectTimeout
	DefaultCommandTimeout = defaultCommandTimeout
	DefaultKeepalive      = defaultKeepalive
	DefaultPortTimeout    = defaultPortTimeout
	DefaultKeepRevs       = defaultKeepRevs
	DefaultCheckTimeout   = defaultCheckTimeout
	DefaultExpectStatus   = defaultExpectStatus
	DefaultPromptTimeout  = defaultPromptTimeout
)

// Defaults, as documented on each field.
const (
	defaultPrefix         = "!"
	defaultRealName       = "deploybot"
	defaultRatePerSecond  = 0.5
	defaultRateBurst      = 5
	defaultDeployDir      = "/srv/deployment"
	defaultServe          = ":8081"
	defaultJournalDir     = "/var/lib/deploybot/deploys"
	defaultConnectTimeout = Duration(10 * time.Second)
	defaultCommandTimeout = Duration(5 * time.Minute)
	defaultKeepalive      = Duration(15 * time.Second)
	defaultPortTimeout    = Duration(30 * time.Second)
	defaultKeepRevs       = 5
	defaultCheckTimeout   = Duration(10 * time.Second)
	defaultExpectStatus   = 200
	defaultPromptTimeout  = Duration(10 * time.Minute)
)

// defaultRelayAllow is who may use the relay listener when relay_allow is
// not set: this machine only.
var defaultRelayAllow = []string{"127.0.0.0/8", "::1/128"}

// applyDefaults fills in what the file left out and makes relative paths
// absolute. It runs only on a configuration that validated.
// defaultSpool is sal.spool when the database is PostgreSQL.
const defaultSpool = "/var/lib/deploybot/sal.spool"

func (c *checker) applyDefaults() {
	cfg := c.cfg

	irc := &cfg.IRC
	if irc.Prefix == "" {
		irc.Prefix = defaultPrefix
	}
	if irc.User == "" {
		irc.User = irc.Nick
	}
	if irc.RealName == "" {
		irc.RealName = defaultRealName
	}
	irc.TLSCAFile = c.resolve(irc.TLSCAFile)
	irc.RelayAllowPrefixes = c.relayAllow
	if irc.RelayListen != "" && len(irc.RelayAllow) == 0 {
		irc.RelayAllow = append([]string(nil), defaultRelayAllow...)
		irc.RelayAllowPrefixes = nil
		for _, s := range defaultRelayAllow {
			irc.RelayAllowPrefixes = append(irc.RelayAllowPrefixes, netip.MustParsePrefix(s))
		}
	}
	if irc.Rate.PerSecond == 0 {
		irc.Rate.PerSecond = defaultRatePerSecond
	}
	if irc.Rate.Burst == 0 {
		irc.Rate.Burst = defaultRateBurst
	}

	sal := &cfg.SAL
	if !isPostgres(sal.Database) {
		sal.Database = c.resolve(sal.Database)
	}
	switch {
	case sal.Spool != "":
		sal.Spool = c.resolve(sal.Spool)
	case isPostgres(sal.Database):
		sal.Spool = defaultSpool
	default:
		sal.Spool = sal.Database + ".spool"
	}
	if sal.PublicURL == "" && sal.Listen != "" {
		sal.PublicURL = "http://" + urlHost(sal.Listen)
	}
	sal.PublicURL = strings.TrimRight(sal.PublicURL, "/")
	if sal.Projects == nil {
		sal.Projects = make(map[string]string, len(irc.Channels))
		for _, ch := range irc.Channels {
			sal.Projects[ch] = ch[1:]
		}
	}

	d := &cfg.Deploy
	if d.DeployDir == "" {
		d.DeployDir = defaultDeployDir
	}
	d.DeployDir = c.resolve(d.DeployDir)
	if d.Serve == "" {
		d.Serve = defaultServe
	}
	if d.ServeURL == "" {
		d.ServeURL = "http://" + urlHost(d.Serve)
	}
	d.ServeURL = strings.TrimRight(d.ServeURL, "/")
	if d.JournalDir == "" {
		d.JournalDir = defaultJournalDir
	}
	d.JournalDir = c.resolve(d.JournalDir)
	if !c.has("deploy.serve_logs") {
		d.ServeLogs = true
	}
	if !c.has("metrics.serve") {
		cfg.Metrics.Serve = true
	}
	switch {
	case !d.ServeLogs:
		d.LogsPublicURL = ""
	case d.LogsListen != "":
		if d.LogsPublicURL == "" {
			d.LogsPublicURL = "http://" + urlHost(d.LogsListen)
		}
	default:
		d.LogsPublicURL = cfg.SAL.PublicURL
	}
	d.LogsPublicURL = strings.TrimRight(d.LogsPublicURL, "/")
	ssh := &d.SSH
	ssh.KeyFile = c.resolve(ssh.KeyFile)
	ssh.KnownHosts = c.resolve(ssh.KnownHosts)
	if ssh.ConnectTimeout == 0 {
		ssh.ConnectTimeout = defaultConnectTimeout
	}
	if ssh.CommandTimeout == 0 {
		ssh.CommandTimeout = defaultCommandTimeout
	}
	if ssh.Keepalive == 0 {
		ssh.Keepalive = defaultKeepalive
	}

	for name, s := range cfg.Services {
		s.Name = name
		if isLocalUpstream(s.Upstream) {
			s.Upstream = c.resolve(s.Upstream)
		}
		if s.PortTimeout == 0 {
			s.PortTimeout = defaultPortTimeout
		}
		if s.KeepRevs == 0 {
			s.KeepRevs = defaultKeepRevs
		}
		if s.PromptTimeout == 0 {
			s.PromptTimeout = defaultPromptTimeout
		}
		for i := range s.Checks {
			ch := &s.Checks[i]
			if ch.Timeout == 0 {
				ch.Timeout = defaultCheckTimeout
			}
			if ch.HTTP != "" && ch.ExpectStatus == 0 {
				ch.ExpectStatus = defaultExpectStatus
			}
		}
		for i := range s.Groups {
			g := &s.Groups[i]
			if g.Parallel == 0 {
				g.Parallel = len(g.Hosts)
			}
		}
	}
}

// urlHost turns a listen address into the host:port of a URL: a listen
// address without a host (":8081", or 0.0.0.0/:: for all interfaces)
// becomes localhost.
func urlHost(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
