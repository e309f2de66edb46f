package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/scap"
)

// checkScap reads the Scap3 settings of every scap: true service of cfg
// from its deploy repository on this host (deploy.deploy_dir/<repo>, at
// its HEAD, without fetching) and reports, on w, the settings deploybot
// does not carry out, each by name. It returns the services whose
// settings cannot be read or mapped (a deploy of that revision would be
// refused), and each service's summary line by name.
func checkScap(cfg *config.Config, w io.Writer) (failed int, lines map[string]string) {
	lines = map[string]string{}
	for _, name := range cfg.ServiceNames() {
		s, _ := cfg.Service(name)
		if !s.Scap {
			continue
		}
		line, notes, err := scapService(cfg, s)
		if err != nil {
			fmt.Fprintf(w, "%s: %v\n", name, err)
			lines[name] = "scap: true — its Scap3 settings cannot be used (see above)"
			failed++
			continue
		}
		lines[name] = line
		for _, n := range notes {
			fmt.Fprintf(w, "warning: %s: not carried out from scap/: %s\n", name, n)
		}
	}
	return failed, lines
}

// scapService maps service s from its deploy repository's HEAD.
func scapService(cfg *config.Config, s *config.Service) (string, []string, error) {
	dir := filepath.Join(cfg.Deploy.DeployDir, filepath.FromSlash(s.Repo))
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return fmt.Sprintf("scap: true — read from scap/ at each deploy (%s is not cloned yet: run a deploy, or deploybot import-scap on a working copy, to check it)", dir), nil, nil
	}
	head, err := repo.Head()
	if err != nil {
		return "", nil, fmt.Errorf("%s: HEAD: %v", dir, err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		return "", nil, fmt.Errorf("%s: HEAD: %v", dir, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return "", nil, fmt.Errorf("%s: HEAD: %v", dir, err)
	}
	set, err := scap.Load(gitrepo.TreeFS(tree), s.Environment)
	if err != nil {
		return "", nil, fmt.Errorf("the Scap3 settings at %.7s of %s:\n%v", head.Hash(), dir, err)
	}
	svc := *s
	un, err := set.Apply(&svc)
	if err != nil {
		return "", nil, fmt.Errorf("the Scap3 settings at %.7s of %s:\n%v", head.Hash(), dir, err)
	}
	notes := make([]string, 0, len(un))
	for _, u := range un {
		notes = append(notes, u.String())
	}
	return fmt.Sprintf("%d host(s) — %s (scap: true, read at %.7s)", len(svc.AllHosts()), groupParts(&svc), head.Hash()), notes, nil
}

// groupParts lists a service's groups with their sizes.
func groupParts(s *config.Service) string {
	var parts []string
	if len(s.Canary) > 0 {
		parts = append(parts, fmt.Sprintf("canary %d", len(s.Canary)))
	}
	for _, g := range s.Groups {
		parts = append(parts, fmt.Sprintf("%s %d", g.Name, len(g.Hosts)))
	}
	return strings.Join(parts, ", ")
}
