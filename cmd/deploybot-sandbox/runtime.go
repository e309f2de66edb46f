package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"deploybot/config"
)

// runtimeConfig is what the sandbox fills in when it copies the sandbox
// configuration for `deploybot serve`.
type runtimeConfig struct {
	Serve      string   // deploy.serve, host:port on the fleet's bridge
	User       string   // deploy.ssh.user
	KeyFile    string   // deploy.ssh.key_file
	KnownHosts string   // deploy.ssh.known_hosts
	Hosts      []string // the service's canary and group hosts, in order
	Deployer   string   // an account added to access.deployers.accounts
}

// serviceHosts returns the host nodes of service name: canary first, then
// each group's, in order.
func serviceHosts(root *yaml.Node, name string) []*yaml.Node {
	svc := lookup(root, "services", name)
	var hosts []*yaml.Node
	if c := lookup(svc, "canary"); c != nil {
		hosts = append(hosts, c.Content...)
	}
	if g := lookup(svc, "groups"); g != nil && g.Kind == yaml.SequenceNode {
		for _, group := range g.Content {
			if h := lookup(group, "hosts"); h != nil {
				hosts = append(hosts, h.Content...)
			}
		}
	}
	return hosts
}

// parseYAML returns the document's top mapping.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a YAML mapping")
	}
	return doc.Content[0], nil
}

// writeRuntimeConfig writes to out a copy of the configuration at path
// (already loaded as cfg) with the values of rc, and with every relative
// path made absolute, and checks that the copy loads to the same paths.
func writeRuntimeConfig(path string, cfg *config.Config, service string, rc runtimeConfig, out string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	root, err := parseYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}

	// Paths: the copy lives elsewhere.
	abs := func(n *yaml.Node, resolved string) {
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
			return
		}
		if resolved == "" {
			resolved = n.Value
			if !filepath.IsAbs(resolved) {
				resolved = filepath.Join(dir, resolved)
			}
		}
		n.Value = resolved
	}
	abs(lookup(root, "irc", "tls_ca_file"), cfg.IRC.TLSCAFile)
	abs(lookup(root, "irc", "sasl", "password_file"), "")
	abs(lookup(root, "sal", "database"), cfg.SAL.Database)
	abs(lookup(root, "sal", "spool"), cfg.SAL.Spool)
	abs(lookup(root, "deploy", "deploy_dir"), cfg.Deploy.DeployDir)
	abs(lookup(root, "deploy", "journal_dir"), cfg.Deploy.JournalDir)
	for name, s := range cfg.Services {
		abs(lookup(root, "services", name, "upstream"), s.Upstream)
	}

	// The fleet.
	deploy := lookup(root, "deploy")
	set(deploy, "serve", rc.Serve)
	set(deploy, "serve_url", "http://"+rc.Serve)
	// Keep serve_url next to serve.
	for i := 0; i+1 < len(deploy.Content); i += 2 {
		if deploy.Content[i].Value == "serve_url" {
			pair := slices.Clone(deploy.Content[i : i+2])
			deploy.Content = slices.Delete(deploy.Content, i, i+2)
			for j := 0; j+1 < len(deploy.Content); j += 2 {
				if deploy.Content[j].Value == "serve" {
					deploy.Content = slices.Insert(deploy.Content, j+2, pair...)
					break
				}
			}
			break
		}
	}
	ssh := lookup(deploy, "ssh")
	if ssh == nil {
		ssh = &yaml.Node{Kind: yaml.MappingNode}
		deploy.Content = append(deploy.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "ssh"}, ssh)
	}
	set(ssh, "user", rc.User)
	set(ssh, "key_file", rc.KeyFile)
	set(ssh, "known_hosts", rc.KnownHosts)
	hosts := serviceHosts(root, service)
	if len(hosts) != len(rc.Hosts) {
		return fmt.Errorf("%s: services.%s lists %d hosts, the fleet has %d", path, service, len(hosts), len(rc.Hosts))
	}
	for i, h := range hosts {
		h.Value = rc.Hosts[i]
	}

	// The user's account may deploy.
	if rc.Deployer != "" {
		access := lookup(root, "access")
		if access == nil {
			access = &yaml.Node{Kind: yaml.MappingNode}
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "access"}, access)
		}
		deployers := lookup(access, "deployers")
		if deployers == nil {
			deployers = &yaml.Node{Kind: yaml.MappingNode}
			access.Content = append(access.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "deployers"}, deployers)
		}
		accounts := lookup(deployers, "accounts")
		if accounts == nil {
			accounts = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			deployers.Content = append(deployers.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "accounts"}, accounts)
		}
		if !slices.ContainsFunc(accounts.Content, func(n *yaml.Node) bool { return n.Value == rc.Deployer }) {
			accounts.Content = append(accounts.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: rc.Deployer})
		}
	}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Written by deploybot-sandbox from %s for this run: the fleet's\n# addresses, ssh user, key and known_hosts, and absolute paths. Edit %[1]s instead.\n\n", filepath.Join(dir, filepath.Base(path)))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		return err
	}

	// The copy must mean the same but for what was rewritten.
	got, err := config.Load(out)
	if err != nil {
		return fmt.Errorf("the runtime configuration is invalid: %v", err)
	}
	same := func(what, a, b string) error {
		if a != b {
			return fmt.Errorf("the runtime configuration %s: %s is %q, want %q", out, what, a, b)
		}
		return nil
	}
	checks := []error{
		same("sal.database", got.SAL.Database, cfg.SAL.Database),
		same("sal.spool", got.SAL.Spool, cfg.SAL.Spool),
		same("deploy.deploy_dir", got.Deploy.DeployDir, cfg.Deploy.DeployDir),
		same("deploy.journal_dir", got.Deploy.JournalDir, cfg.Deploy.JournalDir),
		same("irc.tls_ca_file", got.IRC.TLSCAFile, cfg.IRC.TLSCAFile),
		same("services."+service+".upstream", got.Services[service].Upstream, cfg.Services[service].Upstream),
	}
	if cfg.IRC.SASL != nil {
		checks = append(checks, same("the SASL password", got.IRC.SASL.Password.Reveal(), cfg.IRC.SASL.Password.Reveal()))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// lookup follows keys down from mapping n; nil when a key is missing.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// set sets key of mapping n to the string value, adding the key if needed.
func set(n *yaml.Node, key, value string) {
	if v := lookup(n, key); v != nil {
		*v = yaml.Node{Kind: yaml.ScalarNode, Value: value, LineComment: v.LineComment, HeadComment: v.HeadComment}
		return
	}
	n.Content = append(n.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Value: value})
}

// freePort returns host:port with a port free on ip at the time of the call.
func freePort(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
