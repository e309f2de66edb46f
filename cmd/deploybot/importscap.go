package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"gopkg.in/yaml.v3"

	"deploybot/config"
	"deploybot/deployer/scap"
)

const importScapHelp = `
Reads the Scap3 settings of a deploy repository's working copy
(scap/scap.cfg, its target lists, checks.yaml, and the files of
scap/environments/ENV with -environment) and prints the equivalent
deploybot service as YAML, a services: entry to merge into the
configuration. Every Scap3 setting it cannot carry over is listed in a
comment above it; docs/scap.md describes the mapping.

Exit status: 0 printed, 1 the settings cannot be read or mapped, 2 bad
usage.
`

func runImportScap(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "import-scap")
	environment := fs.String("environment", "", "the Scap3 `environment` to read (scap/environments/ENV; default: scap.cfg's environment key, or none)")
	name := fs.String("name", "", "the service `name` (default: the first element of git_repo, citoid/deploy → citoid)")
	upstream := fs.String("upstream", "", "the `URL` or path the deploy repository pulls from (default: the repository's origin remote)")
	branch := fs.String("branch", "", "the upstream `branch` to follow (default: the upstream's HEAD)")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), importScapHelp) }
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	dir := pos[0]
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "deploybot import-scap: "+format+"\n", args...)
		return exitFailed
	}

	s, err := scap.Load(os.DirFS(dir), *environment)
	if err != nil {
		return fail("%s:\n%v", dir, err)
	}
	svc := config.Service{Name: *name, Upstream: *upstream, Branch: *branch}
	if svc.Name == "" {
		if svc.Name = s.DefaultName(); svc.Name == "" {
			return fail("cannot derive a service name from git_repo: give one with -name")
		}
	}
	if svc.Upstream == "" {
		u, err := originURL(dir)
		if err != nil {
			return fail("%v: give the upstream with -upstream", err)
		}
		svc.Upstream = u
	}
	unsupported, err := s.Apply(&svc)
	if err != nil {
		return fail("%s:\n%v", dir, err)
	}
	if err := writeServiceYAML(e.stdout, dir, s.Environment, &svc, unsupported); err != nil {
		return fail("%v", err)
	}
	return exitOK
}

// originURL is the URL of the origin remote of the git repository at dir.
func originURL(dir string) (string, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return "", fmt.Errorf("%s is not a git repository (%v)", dir, err)
	}
	r, err := repo.Remote("origin")
	if err != nil {
		return "", fmt.Errorf("%s has no origin remote", dir)
	}
	if urls := r.Config().URLs; len(urls) > 0 && urls[0] != "" {
		return urls[0], nil
	}
	return "", fmt.Errorf("the origin remote of %s has no URL", dir)
}

// writeServiceYAML prints svc as a services: entry, with a comment listing
// the unsupported settings. Values left at deploybot's defaults (or
// empty) are left out.
func writeServiceYAML(w io.Writer, dir, environment string, svc *config.Service, unsupported []scap.Unsupported) error {
	var m mapping
	m.str("repo", svc.Repo)
	m.str("upstream", svc.Upstream)
	if svc.Branch != "" {
		m.str("branch", svc.Branch)
	}
	if svc.Submodules {
		m.scalar("submodules", "true", "!!bool")
	}
	m.str("target_dir", svc.TargetDir)
	if svc.Restart != "" {
		m.str("restart", svc.Restart)
	}
	if svc.Port != 0 {
		m.scalar("port", strconv.Itoa(svc.Port), "!!int")
		m.str("port_timeout", svc.PortTimeout.String())
	}
	m.scalar("keep_revs", strconv.Itoa(svc.KeepRevs), "!!int")
	if len(svc.Checks) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range svc.Checks {
			var cm mapping
			cm.str("name", c.Name)
			cm.str("command", c.Command)
			cm.str("timeout", c.Timeout.String())
			seq.Content = append(seq.Content, cm.node())
		}
		m.add("checks", seq)
	}
	if len(svc.Canary) > 0 {
		m.add("canary", hostList(svc.Canary))
	}
	if len(svc.Groups) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, g := range svc.Groups {
			var gm mapping
			gm.str("name", g.Name)
			gm.add("hosts", hostList(g.Hosts))
			if g.Parallel != 0 && g.Parallel != len(g.Hosts) {
				gm.scalar("parallel", strconv.Itoa(g.Parallel), "!!int")
			}
			if g.FailureLimit != (config.FailureLimit{}) {
				if g.FailureLimit.Percent {
					gm.str("failure_limit", g.FailureLimit.String())
				} else {
					gm.scalar("failure_limit", g.FailureLimit.String(), "!!int")
				}
			}
			if g.Pause {
				gm.scalar("pause", "true", "!!bool")
			}
			seq.Content = append(seq.Content, gm.node())
		}
		m.add("groups", seq)
	}
	if len(svc.ConfigFiles) > 0 {
		m.add("config_files", configFilesYAML(svc.ConfigFiles))
	}

	var services mapping
	services.add(svc.Name, m.node())
	var root mapping
	root.add("services", services.node())
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	from := abs
	if environment != "" {
		from += " (environment " + environment + ")"
	}
	head := []string{"deploybot service imported from the Scap3 settings of " + from + "."}
	if len(unsupported) == 0 {
		head = append(head, "Every Scap3 setting was carried over.")
	} else {
		head = append(head, fmt.Sprintf("Not carried over as Scap3 would (%d):", len(unsupported)))
		for _, u := range unsupported {
			head = append(head, wrap("- "+u.String(), "  ", 76)...)
		}
	}
	for i, l := range head {
		head[i] = strings.TrimRight("# "+l, " ")
	}
	root.n.Content[0].HeadComment = strings.Join(head, "\n")

	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.node()}}); err != nil {
		return err
	}
	return enc.Close()
}

// mapping builds a YAML mapping node in key order.
type mapping struct{ n *yaml.Node }

func (m *mapping) node() *yaml.Node {
	if m.n == nil {
		m.n = &yaml.Node{Kind: yaml.MappingNode}
	}
	return m.n
}

func (m *mapping) add(key string, v *yaml.Node) {
	n := m.node()
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

// str adds a string value; the encoder quotes it where YAML would read it
// as something else.
func (m *mapping) str(key, v string) {
	m.add(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
}

func (m *mapping) scalar(key, v, tag string) {
	m.add(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v})
}

func hostList(hosts []config.Host) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, h := range hosts {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: h.String()})
	}
	return seq
}

// wrap breaks s at spaces into lines of at most width bytes where it can;
// lines after the first start with indent.
func wrap(s, indent string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) > width:
			lines = append(lines, line)
			line = indent + word
		default:
			line += " " + word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// configFilesYAML is the config_files list of a service.
func configFilesYAML(files []config.ConfigFile) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range files {
		var fm mapping
		fm.str("path", f.Path)
		fm.str("template", f.Template)
		if len(f.Vars) > 0 {
			vars := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, v := range f.Vars {
				vars.Content = append(vars.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
			}
			fm.add("vars", vars)
		}
		if f.ERBSyntax {
			fm.scalar("erb_syntax", "true", "!!bool")
		}
		if f.OutputFormat != "" {
			fm.str("output_format", f.OutputFormat)
		}
		seq.Content = append(seq.Content, fm.node())
	}
	return seq
}
