package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
)

// Submodule is a submodule of a revision of the deploy repository: what a
// target needs to check it out from the deployment host.
type Submodule struct {
	// Name is the submodule's name in .gitmodules; its git dir on the
	// deployment host is .git/modules/<Name> of its superproject.
	Name string
	// Path is where it is checked out, relative to its superproject.
	Path string
	// URL is its upstream URL as written in .gitmodules (targets do not use
	// it: they fetch from SubmoduleURL).
	URL string
	// Commit is the full sha1 recorded in the superproject's tree.
	Commit string
	// Submodules are its own submodules, at Commit.
	Submodules []Submodule
}

// Submodules returns the submodules of HEAD; see SubmodulesAt.
func (r *Repo) Submodules() ([]Submodule, error) {
	return r.SubmodulesAt("")
}

// SubmodulesAt returns the submodules of revision rev ("" for HEAD,
// otherwise resolved like Resolve), recursively, sorted by path: those
// listed in the revision's .gitmodules that have a gitlink in its tree.
// It returns nil when Options.Submodules is false (the targets must not
// fetch submodules either). A recorded commit that is not on the deployment
// host (its submodule never fetched — run Update) is an error, since the
// targets could not fetch it.
func (r *Repo) SubmodulesAt(rev string) ([]Submodule, error) {
	if err := ValidateRev(rev); err != nil {
		return nil, err
	}
	if !r.opts.Submodules {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	subs, err := listSubmodules(r.repo.Storer, h, "", maxSubmoduleDepth)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: %s: submodules of %s: %w", r.opts.Dir, h, err)
	}
	return subs, nil
}

func listSubmodules(st storage.Storer, commit plumbing.Hash, prefix string, depth int) ([]Submodule, error) {
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	mods, err := modulesInTree(tree)
	if err != nil || len(mods) == 0 {
		return nil, err
	}
	out := make([]Submodule, 0, len(mods))
	for _, m := range mods {
		s := Submodule{Name: m.Name, Path: m.Path, URL: m.URL, Commit: m.commit.String()}
		where := path.Join(prefix, m.Path)
		mst, err := st.Module(m.Name)
		if err != nil {
			return nil, fmt.Errorf("submodule %s: %w", where, err)
		}
		if _, err := object.GetCommit(mst, m.commit); err != nil {
			return nil, fmt.Errorf("submodule %s: commit %s is not on the deployment host: %w", where, m.commit, err)
		}
		if depth > 1 {
			if s.Submodules, err = listSubmodules(mst, m.commit, where, depth-1); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// module is a submodule of a tree: its .gitmodules entry and the commit its
// gitlink records.
type module struct {
	*config.Submodule
	commit plumbing.Hash
}

// modulesInTree reads the .gitmodules of tree and returns the submodules
// that have a gitlink in tree, sorted by path.
func modulesInTree(tree *object.Tree) ([]module, error) {
	f, err := tree.File(".gitmodules")
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf(".gitmodules: %w", err)
	}
	if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
		return nil, fmt.Errorf(".gitmodules is not a regular file")
	}
	content, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf(".gitmodules: %w", err)
	}
	m := config.NewModules()
	if err := m.Unmarshal([]byte(content)); err != nil {
		return nil, fmt.Errorf(".gitmodules: %w", err)
	}
	var out []module
	for _, sm := range m.Submodules {
		if err := sm.Validate(); err != nil {
			return nil, fmt.Errorf(".gitmodules: submodule %q: %w", sm.Name, err)
		}
		e, err := tree.FindEntry(sm.Path)
		if err != nil || e.Mode != filemode.Submodule {
			continue // listed but not a gitlink in this tree: git ignores it too
		}
		out = append(out, module{Submodule: sm, commit: e.Hash})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// updateSubmodules brings the submodules of repo's HEAD to their recorded
// commits, recursing depth levels. superURL is the URL repo was fetched
// from, against which relative submodule URLs are resolved. Every URL of
// the level is checked against pol before anything is configured or
// fetched: one refused URL fails the level.
func updateSubmodules(ctx context.Context, repo *git.Repository, superURL string, pol urlPolicy, depth int) error {
	if depth <= 0 {
		return nil
	}
	headRef, err := repo.Head()
	if err != nil {
		return fmt.Errorf("HEAD: %w", err)
	}
	c, err := repo.CommitObject(headRef.Hash())
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	mods, err := modulesInTree(tree)
	if err != nil || len(mods) == 0 {
		return err
	}

	// Like `git submodule init` + `git submodule sync`: the configuration
	// follows .gitmodules, with relative URLs resolved.
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	urls := map[string]string{}
	changed := false
	for _, m := range mods {
		u, err := resolveSubmoduleURL(superURL, m.URL)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", m.Path, err)
		}
		if why := pol.check(m.URL, u); why != "" {
			return &URLRefusedError{Name: m.Name, Path: m.Path, URL: m.URL, Reason: why}
		}
		urls[m.Name] = u
	}
	for _, m := range mods {
		u := urls[m.Name]
		want := &config.Submodule{Name: m.Name, Path: m.Path, URL: u, Branch: m.Branch}
		if have := cfg.Submodules[m.Name]; have == nil || *have != *want {
			cfg.Submodules[m.Name] = want
			changed = true
		}
	}
	if changed {
		if err := repo.SetConfig(cfg); err != nil {
			return err
		}
	}

	w, err := repo.Worktree()
	if err != nil {
		return err
	}
	subs, err := w.Submodules()
	if err != nil {
		return err
	}
	byName := map[string]*git.Submodule{}
	for _, s := range subs {
		byName[s.Config().Name] = s
	}
	for _, m := range mods {
		s := byName[m.Name]
		if s == nil {
			return fmt.Errorf("submodule %s: not in the working copy's .gitmodules", m.Path)
		}
		if err := updateSubmodule(ctx, s, m, urls[m.Name], pol, depth); err != nil {
			return fmt.Errorf("submodule %s: %w", m.Path, err)
		}
	}
	return nil
}

func updateSubmodule(ctx context.Context, s *git.Submodule, m module, u string, pol urlPolicy, depth int) error {
	sr, err := s.Repository()
	if err != nil {
		return err
	}
	if err := setOrigin(sr, u); err != nil {
		return err
	}
	if err := ensureDotGitFile(sr); err != nil {
		return err
	}
	if _, err := sr.CommitObject(m.commit); err != nil {
		err := sr.FetchContext(ctx, &git.FetchOptions{
			RemoteName: remoteName,
			RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf(config.DefaultFetchRefSpec, remoteName))},
			Tags:       git.NoTags,
			Force:      true,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return fmt.Errorf("fetch %s: %w", u, err)
		}
		if _, err := sr.CommitObject(m.commit); err != nil {
			return fmt.Errorf("recorded commit %s not found in %s: %w", m.commit, u, err)
		}
	}
	if err := sr.Storer.SetReference(plumbing.NewHashReference(plumbing.HEAD, m.commit)); err != nil {
		return err
	}
	sw, err := sr.Worktree()
	if err != nil {
		return err
	}
	if err := sw.Reset(&git.ResetOptions{Mode: git.HardReset, Commit: m.commit}); err != nil {
		return fmt.Errorf("check out %s: %w", m.commit, err)
	}
	return updateSubmodules(ctx, sr, u, pol, depth-1)
}

// URLRefusedError is returned by Open and Repo.Update when a .gitmodules
// names a submodule URL that Options.SubmoduleURLs does not allow. Nothing
// of that level of submodules was fetched or configured.
type URLRefusedError struct {
	Name, Path string // the submodule's name and path in its superproject
	URL        string // as written in .gitmodules
	Reason     string
}

func (e *URLRefusedError) Error() string {
	return fmt.Sprintf("submodule %s (name %q): URL %q refused: %s", e.Path, e.Name, e.URL, e.Reason)
}

// setOrigin points the origin remote of repo at u.
func setOrigin(repo *git.Repository, u string) error {
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	rc := cfg.Remotes[remoteName]
	if rc != nil && len(rc.URLs) == 1 && rc.URLs[0] == u {
		return nil
	}
	if rc == nil {
		rc = &config.RemoteConfig{
			Name:  remoteName,
			Fetch: []config.RefSpec{config.RefSpec(fmt.Sprintf(config.DefaultFetchRefSpec, remoteName))},
		}
		cfg.Remotes[remoteName] = rc
	}
	rc.URLs = []string{u}
	return repo.SetConfig(cfg)
}

// ensureDotGitFile writes the submodule's ".git" file ("gitdir: <path of
// its git dir>") when it is missing — go-git writes it only when it creates
// the git dir — so that git, run by hand on the deployment host, sees the
// submodule.
func ensureDotGitFile(sr *git.Repository) error {
	w, err := sr.Worktree()
	if err != nil {
		return err
	}
	st, ok := sr.Storer.(interface{ Filesystem() billy.Filesystem })
	if !ok {
		return nil
	}
	wt := w.Filesystem.Root()
	p := filepath.Join(wt, git.GitDirName)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	rel, err := filepath.Rel(wt, st.Filesystem().Root())
	if err != nil {
		return nil
	}
	if err := os.MkdirAll(wt, 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("gitdir: "+filepath.ToSlash(rel)+"\n"), 0o644)
}

// resolveSubmoduleURL resolves a submodule URL from .gitmodules: an
// absolute URL or path is kept, a relative one ("./x", "../x") is resolved
// against the superproject's URL, as git does.
func resolveSubmoduleURL(superURL, u string) (string, error) {
	if !strings.HasPrefix(u, "./") && !strings.HasPrefix(u, "../") {
		return u, nil
	}
	ep, err := transport.NewEndpoint(superURL)
	if err != nil {
		return "", fmt.Errorf("resolve %q against %q: %w", u, superURL, err)
	}
	if ep.Protocol == "file" && !strings.HasPrefix(superURL, "file://") {
		return filepath.Join(superURL, filepath.FromSlash(u)), nil
	}
	ep.Path = path.Join(ep.Path, u)
	return ep.String(), nil
}

// SubmoduleURL returns the URL a target fetches a submodule from:
// <serveURL>/<repo>/.git/modules/<name>. For a nested submodule give the
// chain of names from the top: SubmoduleURL(u, repo, "lib", "inner") is
// <u>/<repo>/.git/modules/lib/modules/inner. Each path segment is escaped.
func SubmoduleURL(serveURL, repo string, names ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(serveURL, "/"))
	b.WriteString("/")
	b.WriteString(escapePath(strings.Trim(repo, "/")))
	b.WriteString("/.git")
	for _, n := range names {
		b.WriteString("/modules/")
		b.WriteString(escapePath(n))
	}
	return b.String()
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// SubmoduleCommands returns the git command lines (argv, starting with
// "git") a target runs, in the directory where it checked out a revision
// of repo, to check out that revision's submodules subs (from
// Repo.SubmodulesAt) from serveURL: for each level, set every submodule's
// URL to SubmoduleURL, then `submodule update --init --checkout --force` the
// level's paths, then the same inside each submodule (git -C <path>) for
// the next level. It returns nothing when subs is empty. The package
// documentation shows an example.
func SubmoduleCommands(serveURL, repo string, subs []Submodule) [][]string {
	var cmds [][]string
	var level func(dir string, chain []string, subs []Submodule)
	level = func(dir string, chain []string, subs []Submodule) {
		if len(subs) == 0 {
			return
		}
		git := []string{"git"}
		if dir != "" {
			git = append(git, "-C", dir)
		}
		cmd := func(args ...string) []string {
			return append(append([]string(nil), git...), args...)
		}
		paths := make([]string, 0, len(subs))
		for _, s := range subs {
			names := append(append([]string(nil), chain...), s.Name)
			cmds = append(cmds, cmd("config", "submodule."+s.Name+".url", SubmoduleURL(serveURL, repo, names...)))
			paths = append(paths, s.Path)
		}
		cmds = append(cmds, cmd(append([]string{"-c", "protocol.file.allow=never",
			"submodule", "update", "--init", "--checkout", "--force", "--"}, paths...)...))
		for _, s := range subs {
			sub := s.Path
			if dir != "" {
				sub = path.Join(dir, s.Path)
			}
			level(sub, append(append([]string(nil), chain...), s.Name), s.Submodules)
		}
	}
	level("", nil, subs)
	return cmds
}

// ResolveSubmoduleURL resolves a submodule URL of .gitmodules against the
// URL (or local path) of the repository that declares it, as git does: a
// URL starting with ./ or ../ is relative to it, any other is returned
// as is.
func ResolveSubmoduleURL(superURL, u string) (string, error) { return resolveSubmoduleURL(superURL, u) }
