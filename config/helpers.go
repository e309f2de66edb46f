package config

import "sort"

// Service returns the service configured under services.<name>. Names
// match exactly (service names are lowercase).
func (c *Config) Service(name string) (*Service, bool) {
	s, ok := c.Services[name]
	return s, ok && s != nil
}

// ServiceNames returns the configured service names, sorted.
func (c *Config) ServiceNames() []string {
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// AllHosts returns every host of the service in deploy order: the canary
// hosts, then each group's hosts.
func (s *Service) AllHosts() []Host {
	n := len(s.Canary)
	for _, g := range s.Groups {
		n += len(g.Hosts)
	}
	hosts := make([]Host, 0, n)
	hosts = append(hosts, s.Canary...)
	for _, g := range s.Groups {
		hosts = append(hosts, g.Hosts...)
	}
	return hosts
}

// Project returns the SAL project of a channel, and whether `!log` works
// there. Channel names match case-insensitively (rfc1459 case mapping).
func (c *Config) Project(channel string) (string, bool) {
	if p, ok := c.SAL.Projects[channel]; ok {
		return p, true
	}
	f := FoldName(channel)
	for ch, p := range c.SAL.Projects {
		if FoldName(ch) == f {
			return p, true
		}
	}
	return "", false
}

// SameName reports whether two nicks or channel names are the same to an
// rfc1459 server.
func SameName(a, b string) bool { return FoldName(a) == FoldName(b) }

// CanaryGroup is the name of the group the canary hosts form.
const CanaryGroup = "canary"

// Rollout returns the service's groups in the order a deploy runs them:
// the canary hosts first (as group "canary", all at once, when there are
// any), then Groups. Defaults are applied: Parallel is never 0.
func (s *Service) Rollout() []Group {
	var gs []Group
	if len(s.Canary) > 0 {
		gs = append(gs, Group{Name: CanaryGroup, Hosts: s.Canary, Parallel: len(s.Canary)})
	}
	for _, g := range s.Groups {
		if g.Parallel <= 0 {
			g.Parallel = len(g.Hosts)
		}
		gs = append(gs, g)
	}
	return gs
}
