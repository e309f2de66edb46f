package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"deploybot/config"
)

func runCheckConfig(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "check-config")
	path := configFlag(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, ce := range errs {
				fmt.Fprintln(e.stderr, ce)
			}
			fmt.Fprintf(e.stderr, "%s: %d error(s)\n", *path, len(errs))
		} else {
			fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
		}
		return exitFailed
	}
	failed, scapLines := checkScap(cfg, e.stderr)
	fmt.Fprint(e.stdout, summary(cfg, scapLines))
	for _, w := range cfg.Warnings {
		fmt.Fprintln(e.stderr, "warning: "+w.Error())
	}
	if failed > 0 {
		fmt.Fprintf(e.stderr, "%s: the Scap3 settings of %d service(s) cannot be used\n", *path, failed)
		return exitFailed
	}
	return exitOK
}

// summary describes cfg in a few lines; scapLines describe the scap:
// true services (see checkScap).
func summary(cfg *config.Config, scapLines map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ok\n", cfg.Path)
	login := "no SASL"
	if cfg.IRC.SASL != nil {
		login = "SASL as " + cfg.IRC.SASL.Account
	}
	tls := ""
	if cfg.IRC.TLS {
		tls = " (TLS)"
	}
	fmt.Fprintf(&b, "irc:      %s%s as %s, %s; channels %s\n", cfg.IRC.Server, tls, cfg.IRC.Nick, login, strings.Join(cfg.IRC.Channels, " "))
	if cfg.IRC.RelayListen != "" {
		fmt.Fprintf(&b, "relay:    %s (allow %s)\n", cfg.IRC.RelayListen, strings.Join(cfg.IRC.RelayAllow, " "))
	}
	web := "no web"
	if cfg.SAL.Listen != "" {
		web = "web on " + cfg.SAL.Listen + ", links " + cfg.SAL.PublicURL
	}
	fmt.Fprintf(&b, "sal:      %s (%s)\n", config.RedactURL(cfg.SAL.Database), web)
	fmt.Fprintf(&b, "deployers: %d account(s), %d hostmask(s)\n", len(cfg.Access.Deployers.Accounts), len(cfg.Access.Deployers.Hostmasks))
	names := cfg.ServiceNames()
	fmt.Fprintf(&b, "services: %d\n", len(names))
	for _, name := range names {
		s, _ := cfg.Service(name)
		if s.Scap {
			fmt.Fprintf(&b, "  %s: %s\n", name, scapLines[name])
			continue
		}
		fmt.Fprintf(&b, "  %s: %d host(s) — %s\n", name, len(s.AllHosts()), groupParts(s))
	}
	return b.String()
}
