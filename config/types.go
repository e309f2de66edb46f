package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ---- Duration ----

const durationWant = "want a Go duration such as 30s, 10m or 1h30m"

// ParseDuration parses a Go duration string that must be greater than 0.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %s", s, durationWant)
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid duration %q: must be greater than 0; %s", s, durationWant)
	}
	return Duration(d), nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as Go does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d as Go does, so JSON and YAML output can be read
// back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string greater than 0.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s", n.Line, durationWant)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = v
	return nil
}

// ---- FailureLimit ----

const failureLimitWant = `want a number of hosts such as 2, or a percentage of the group such as "10%"`

// ParseFailureLimit parses a host count ("2") or a percentage of the group
// ("10%", 0–100).
func ParseFailureLimit(s string) (FailureLimit, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return FailureLimit{}, fmt.Errorf("invalid failure limit %q: %s", s, failureLimitWant)
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return FailureLimit{}, fmt.Errorf("invalid failure limit %q: %s", s, failureLimitWant)
	}
	if pct && n > 100 {
		return FailureLimit{}, fmt.Errorf("invalid failure limit %q: a percentage must be between 0%% and 100%%", s)
	}
	return FailureLimit{Count: n, Percent: pct}, nil
}

// Allowed returns how many hosts of a group of groupSize hosts may fail
// without failing the group. A percentage rounds down: 10% of 15 hosts is
// 1. The result is never more than groupSize.
func (f FailureLimit) Allowed(groupSize int) int {
	if groupSize <= 0 {
		return 0
	}
	n := f.Count
	if f.Percent {
		n = groupSize * f.Count / 100
	}
	return min(n, groupSize)
}

// String formats f as it is written: "2" or "10%".
func (f FailureLimit) String() string {
	if f.Percent {
		return strconv.Itoa(f.Count) + "%"
	}
	return strconv.Itoa(f.Count)
}

// MarshalText formats f as String does.
func (f FailureLimit) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// MarshalYAML writes a count as an integer and a percentage as "N%".
func (f FailureLimit) MarshalYAML() (any, error) {
	if f.Percent {
		return f.String(), nil
	}
	return f.Count, nil
}

// UnmarshalYAML reads a count (2 or "2") or a percentage ("10%").
func (f *FailureLimit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s", n.Line, failureLimitWant)
	}
	v, err := ParseFailureLimit(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*f = v
	return nil
}

// ---- Host ----

// DefaultSSHPort is the port of a Host written without one.
const DefaultSSHPort = 22

const hostWant = "want a hostname or IP address, optionally with :port (write [addr]:port for an IPv6 address with a port)"

// ParseHost parses "name", "name:port", an IPv6 literal, or
// "[ipv6]:port". The name is a DNS hostname or an IP address; the port is
// 1–65535 and defaults to 22.
func ParseHost(s string) (Host, error) {
	bad := func(why string) (Host, error) {
		if why != "" {
			return Host{}, fmt.Errorf("invalid host %q: %s; %s", s, why, hostWant)
		}
		return Host{}, fmt.Errorf("invalid host %q: %s", s, hostWant)
	}
	if s == "" {
		return bad("empty")
	}
	name, port := s, DefaultSSHPort
	switch {
	case strings.HasPrefix(s, "["):
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return bad("")
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return bad("brackets are only for IPv6 addresses")
		}
		n, ok := parsePort(p)
		if !ok {
			return bad("port must be a number from 1 to 65535")
		}
		name, port = h, n
	case strings.Count(s, ":") == 1:
		h, p, _ := strings.Cut(s, ":")
		n, ok := parsePort(p)
		if !ok {
			return bad("port must be a number from 1 to 65535")
		}
		name, port = h, n
	case strings.Count(s, ":") > 1:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return bad("")
		}
	}
	if _, err := netip.ParseAddr(name); err != nil {
		if why := hostnameProblem(name); why != "" {
			return bad(why)
		}
	}
	return Host{Name: name, Port: port}, nil
}

// hostnameProblem says what is wrong with a DNS hostname, or "" when it is
// valid (RFC 1123 letters, digits and hyphens; labels of 1–63 bytes).
func hostnameProblem(name string) string {
	if name == "" {
		return "the name is empty"
	}
	if len(name) > 253 {
		return "a hostname is at most 253 bytes"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label (two dots, or a leading or trailing dot)"
		}
		if len(l) > 63 {
			return "a hostname label is at most 63 bytes"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "a hostname label cannot start or end with '-'"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "a hostname has only letters, digits, '-' and '.'"
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "not an IP address, and a hostname cannot end in a numeric label"
	}
	return ""
}

// parsePort parses a decimal port 1–65535.
func parsePort(p string) (int, bool) {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return n, true
}

// port returns h's port, 22 when unset.
func (h Host) port() int {
	if h.Port == 0 {
		return DefaultSSHPort
	}
	return h.Port
}

// String formats h as it is written: the name alone when the port is 22,
// otherwise name:port ([ipv6]:port).
func (h Host) String() string {
	if h.port() == DefaultSSHPort {
		return h.Name
	}
	return net.JoinHostPort(h.Name, strconv.Itoa(h.Port))
}

// Addr is the address to dial: always host:port ([ipv6]:port).
func (h Host) Addr() string {
	return net.JoinHostPort(h.Name, strconv.Itoa(h.port()))
}

// key identifies h for duplicate detection: names compare
// case-insensitively.
func (h Host) key() string {
	return strings.ToLower(h.Addr())
}

// MarshalText formats h as String does.
func (h Host) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// MarshalYAML writes h as String does.
func (h Host) MarshalYAML() (any, error) { return h.String(), nil }

// UnmarshalYAML reads "name", "name:port" or "[ipv6]:port".
func (h *Host) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s", n.Line, hostWant)
	}
	v, err := ParseHost(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*h = v
	return nil
}

// ---- Secret ----

const redacted = "[redacted]"

// Reveal returns the secret itself. Call it only where the value is sent
// to whoever needs it (the SASL exchange), never to format a message.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb (%s, %v, %+v, %#v, %q, %x…).
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalYAML returns "[redacted]".
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// LogValue keeps the secret out of log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// UnmarshalYAML refuses to read a secret from YAML: secrets come from
// files or the environment.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	return errors.New("secrets are not read from the configuration file: use a *_file or *_env key")
}
