package deployer

import (
	"context"
	"fmt"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/remote"
	"deploybot/deployer/scap"
)

// ServiceAt returns the model of service s at revision sha of its deploy
// repository: s itself, or, for a service with scap: true, a copy of s
// with its hosts, groups, checks, restart, port, target_dir, revisions
// kept, submodules and config files read from the repository's scap/
// directory at sha (package scap). The second result names every Scap3
// setting found there that deploybot does not carry out, one line each
// ("key (file:line): why"); a deploy reports them when it starts.
func ServiceAt(s *config.Service, repo *gitrepo.Repo, sha string) (*config.Service, []string, error) {
	if !s.Scap {
		return s, nil, nil
	}
	fsys, err := repo.FSAt(sha)
	if err != nil {
		return nil, nil, err
	}
	set, err := scap.Load(fsys, s.Environment)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the Scap3 settings at %s: %w", s.Name, short(sha), err)
	}
	svc := *s
	un, err := set.Apply(&svc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the Scap3 settings at %s: %w", s.Name, short(sha), err)
	}
	if len(svc.AllHosts()) == 0 {
		return nil, nil, fmt.Errorf("%s: the Scap3 settings at %s list no target", s.Name, short(sha))
	}
	notes := make([]string, 0, len(un))
	for _, u := range un {
		notes = append(notes, u.String())
	}
	return &svc, notes, nil
}

// serviceAt is ServiceAt for a service whose deploy repository is opened
// (and updated) first: for the recovery of a deploy of sha.
func (e *Engine) serviceAt(ctx context.Context, s *config.Service, sha string) (*config.Service, error) {
	if !s.Scap {
		return s, nil
	}
	repo, err := e.openRepo(ctx, s)
	if err != nil {
		return nil, err
	}
	svc, _, err := ServiceAt(s, repo, sha)
	return svc, err
}

// renderConfigFiles renders the config files of s from its deploy
// repository at sha (package scap's renderer, gonja): the same text for
// every target, written into the new revision by the config stage.
func renderConfigFiles(s *config.Service, repo *gitrepo.Repo, sha string) ([]remote.ConfigFile, error) {
	if len(s.ConfigFiles) == 0 {
		return nil, nil
	}
	fsys, err := repo.FSAt(sha)
	if err != nil {
		return nil, err
	}
	out := make([]remote.ConfigFile, 0, len(s.ConfigFiles))
	for _, f := range s.ConfigFiles {
		text, err := scap.RenderFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("%s: config file %s at %s: %w", s.Name, f.Path, short(sha), err)
		}
		out = append(out, remote.ConfigFile{Path: f.Path, Content: text})
	}
	return out, nil
}
