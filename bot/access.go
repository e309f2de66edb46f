package bot

import (
	"fmt"
	"strings"

	"deploybot/config"
)

// deployerOf reports whether the sender of r may deploy service s: by
// services account (when the server grants account-tag), else by a
// hostmask glob. Per-service deployers add to the global ones. A nick
// alone never authorizes.
func (b *Bot) deployerOf(r *request, s *config.Service) bool {
	b.mu.Lock()
	tags := b.accountTags
	b.mu.Unlock()
	global := b.cfg.Access.Deployers
	if tags && r.account != "" && r.account != "*" {
		acct := config.FoldName(r.account)
		for _, list := range [][]string{global.Accounts, s.Deployers.Accounts} {
			for _, a := range list {
				if config.FoldName(a) == acct {
					return true
				}
			}
		}
	}
	if r.nick == "" || r.user == "" || r.host == "" {
		return false
	}
	mask := r.nick + "!" + r.user + "@" + r.host
	for _, list := range [][]string{global.Hostmasks, s.Deployers.Hostmasks} {
		for _, m := range list {
			if globMatch(strings.ToLower(m), strings.ToLower(mask)) {
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
	b.reply(r, fmt.Sprintf("you are not a deployer of %s (log in to a services account listed in access.deployers or services.%s.deployers)", s.Name, s.Name))
	b.log.Warn("refused: not a deployer", "nick", r.nick, "account", r.account, "host", r.user+"@"+r.host, "command", c.name, "service", s.Name)
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
