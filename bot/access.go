package bot

import (
	"fmt"
	"slices"
	"strings"

	"deploybot/config"
)

// deployerOf reports whether the sender of r may deploy service s: by
// services account (when the server grants account-tag), else by a
// hostmask glob. Per-service deployers add to the global ones. A nick
// alone never authorizes.
func (b *Bot) deployerOf(r *request, s *config.Service) bool {
	global := b.cfg.Access.Deployers
	return b.identified(r,
		[][]string{global.Accounts, s.Deployers.Accounts},
		[][]string{global.Hostmasks, s.Deployers.Hostmasks})
}

// relayOf reports whether the sender of r is a relay bot (irc.relays by
// services account, irc.relay_hostmasks by hostmask), identified as a
// deployer is. Its nick plays no part: anybody may take a free nick.
func (b *Bot) relayOf(r *request) bool {
	return b.identified(r, [][]string{b.cfg.IRC.Relays}, [][]string{b.cfg.IRC.RelayHostmasks})
}

// identified reports whether r's sender is logged in to one of accounts
// (only when the server grants account-tag, so that r.account comes from
// the server) or matches one of hostmasks.
//
// Accounts are compared exactly as services report them: the tag carries
// the account's canonical spelling, and no case mapping of the bot's can
// know how the services package folds names (Anope, Atheme and Ergo each
// have their own), so a configured account must be spelled as services
// spell it ("Alice" is not "alice"). Folding could only ever let in
// somebody the configuration did not name.
func (b *Bot) identified(r *request, accounts, hostmasks [][]string) bool {
	b.mu.Lock()
	tags := b.accountTags
	b.mu.Unlock()
	if tags && r.account != "" && r.account != "*" {
		for _, list := range accounts {
			if slices.Contains(list, r.account) {
				return true
			}
		}
	}
	if r.nick == "" || r.user == "" || r.host == "" {
		return false
	}
	mask := strings.ToLower(r.nick + "!" + r.user + "@" + r.host)
	for _, list := range hostmasks {
		for _, m := range list {
			if globMatch(strings.ToLower(m), mask) {
				return true
			}
		}
	}
	return false
}

// isDeployer reports whether r's sender is a deployer of any service (or
// a global one). Their commands and the answers to them go first.
func (b *Bot) isDeployer(r *request) bool {
	if b.deployerOf(r, &config.Service{}) {
		return true
	}
	for _, name := range b.cfg.ServiceNames() {
		if s, ok := b.cfg.Service(name); ok && b.deployerOf(r, s) {
			return true
		}
	}
	return false
}

// checkDeployer answers and logs a refusal unless r's sender is a deployer
// of the service named by its first argument; it returns the service when
// they are.
func (b *Bot) checkDeployer(c *command, r *request) (*config.Service, bool) {
	s, ok := b.service(r, r.args[0])
	if !ok {
		return nil, false
	}
	if b.deployerOf(r, s) {
		return s, true
	}
	b.log.Warn("refused: not a deployer", "nick", r.nick, "account", r.account, "host", r.user+"@"+r.host, "command", c.name, "service", s.Name)
	b.reply(r, fmt.Sprintf("you are not a deployer of %s (log in to a services account listed in access.deployers or services.%s.deployers)", s.Name, s.Name))
	return nil, false
}

// service returns the configured service name, or answers r with the list
// of services.
func (b *Bot) service(r *request, name string) (*config.Service, bool) {
	if s, ok := b.cfg.Service(name); ok {
		return s, true
	}
	names := b.cfg.ServiceNames()
	if len(names) == 0 {
		b.reply(r, fmt.Sprintf("unknown service %q: no services are configured.", name))
	} else {
		b.reply(r, fmt.Sprintf("unknown service %q. Services: %s.", name, strings.Join(names, ", ")))
	}
	return nil, false
}

// globMatch matches s against pattern, where * matches any run of bytes
// (including none) and ? exactly one byte (one rune for UTF-8 text).
// Unlike path.Match, / is an ordinary character.
func globMatch(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
