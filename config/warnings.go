package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// warn records what is allowed but unsafe in a valid configuration, in
// Config.Warnings: secret files others can read, a password sent without
// TLS, a server certificate not checked. It runs after applyDefaults, on
// absolute paths.
func (c *checker) warn() {
	cfg := c.cfg
	if sasl := cfg.IRC.SASL; sasl != nil {
		if sasl.PasswordFile != "" {
			c.warnSecretFile("irc.sasl.password_file", sasl.PasswordFile, "the SASL password file")
		}
		if !cfg.IRC.TLS && !isLoopback(cfg.IRC.Server) {
			c.warnf("irc.sasl", "SASL PLAIN over a connection without TLS: the password crosses the network in clear text; set irc.tls: true")
		}
	}
	if cfg.IRC.TLSInsecure {
		c.warnf("irc.tls_insecure", "the IRC server's certificate is not checked: anyone on the path can pose as the server and read what the bot sends (its SASL password too); meant for test networks only")
	}
	if cfg.Deploy.SSH.KeyFile != "" {
		c.warnSecretFile("deploy.ssh.key_file", cfg.Deploy.SSH.KeyFile, "the SSH private key")
	}
	if urlHasPassword(cfg.SAL.Database) {
		c.warnSecretFile("sal.database", c.file, "the configuration file, which holds the database password,")
	}
	sortErrors(cfg.Warnings)
}

func (c *checker) warnf(key, format string, args ...any) {
	c.cfg.Warnings = append(c.cfg.Warnings, &Error{File: c.file, Line: c.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// warnSecretFile warns when the file at path (what names it) may be read
// or replaced by users other than its owner. A file that cannot be looked
// at is left to whoever opens it.
func (c *checker) warnSecretFile(key, path, what string) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return
	}
	perm := fi.Mode().Perm()
	var who []string
	if perm&0o060 != 0 {
		who = append(who, "its group")
	}
	if perm&0o006 != 0 {
		who = append(who, "every user")
	}
	if len(who) == 0 {
		return
	}
	c.warnf(key, "%s %s can be read or written by %s (mode %04o): want it for the bot's user alone (chmod 600)", what, path, strings.Join(who, " and "), perm)
}

// isLoopback reports whether host:port names this machine, where nothing
// sent crosses a network.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
