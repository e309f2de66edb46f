package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
)

// remoteName is the name of the upstream remote in the deploy repository.
const remoteName = "origin"

// Options says where the deploy repository lives and what it follows.
type Options struct {
	// Dir is the absolute path of the working copy, deploy_dir/<repo>.
	Dir string
	// Upstream is the URL (https://, ssh://, git://, file://, scp-like
	// user@host:path) or the local path of the upstream repository.
	Upstream string
	// Branch is the upstream branch to deploy from (a short name such as
	// "main"); "" follows the upstream HEAD, re-read on every Update.
	Branch string
	// Submodules makes Open and Update initialize and update the
	// submodules, recursively. When false, submodules are left alone and
	// Repo.Submodules reports none: targets must not fetch them either.
	Submodules bool
	// SubmoduleURLs are the patterns of the absolute submodule URLs that
	// may be fetched (see MatchURL). Relative URLs ("./x", "../x") are
	// always allowed: they are resolved against Upstream (against a local
	// Upstream they must stay in the directory holding it). Any other URL
	// in a .gitmodules must match a pattern, and a local path or file://
	// URL only a pattern that is itself one. A refused URL fails Open and
	// Update with a *URLRefusedError.
	SubmoduleURLs []string
}

func (o Options) validate() error {
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		return fmt.Errorf("gitrepo: deploy repository dir %q is not an absolute path", o.Dir)
	}
	if o.Upstream == "" {
		return fmt.Errorf("gitrepo: %s: no upstream", o.Dir)
	}
	if o.Branch != "" {
		if err := plumbing.NewBranchReferenceName(o.Branch).Validate(); err != nil ||
			strings.HasPrefix(o.Branch, "refs/") {
			return fmt.Errorf("gitrepo: %s: bad branch name %q", o.Dir, o.Branch)
		}
	}
	return nil
}

// maxSubmoduleDepth bounds the recursion into submodules of submodules
// (git's and go-git's default).
const maxSubmoduleDepth = 10

// Repo is a deploy repository on the deployment host. Its methods are safe
// for concurrent use; they run one at a time.
type Repo struct {
	opts Options

	mu   sync.Mutex
	repo *git.Repository
}

// Open opens the deploy repository at opts.Dir, cloning it from
// opts.Upstream (with its submodules when opts.Submodules is set) when Dir
// is missing or an empty directory. A directory that exists, is not empty
// and is not a git working copy is an error: it is never overwritten.
//
// When it opens an existing repository, Open points its upstream remote at
// opts.Upstream (the configuration may have changed) but fetches nothing:
// call Update. After a clone, the server info is written (see
// UpdateServerInfo), so the repository can be served at once. If the clone
// itself fails, whatever it created is removed; if only the submodules fail,
// the clone is kept, an error returned, and the next Open and Update carry
// on from there.
func Open(ctx context.Context, opts Options) (*Repo, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.Dir = filepath.Clean(opts.Dir)
	r := &Repo{opts: opts}

	empty, err := missingOrEmpty(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: %w", err)
	}
	if empty {
		if err := r.clone(ctx); err != nil {
			return nil, err
		}
		return r, nil
	}

	repo, err := git.PlainOpen(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: open %s: %w", opts.Dir, err)
	}
	if _, err := repo.Worktree(); err != nil {
		return nil, fmt.Errorf("gitrepo: %s: not a working copy: %w", opts.Dir, err)
	}
	r.repo = repo
	if err := r.syncRemote(); err != nil {
		return nil, err
	}
	return r, nil
}

func missingOrEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s exists and is not a directory", dir)
	}
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

func (r *Repo) clone(ctx context.Context) error {
	co := &git.CloneOptions{
		URL:        r.opts.Upstream,
		RemoteName: remoteName,
		Tags:       git.NoTags,
	}
	if r.opts.Branch != "" {
		co.ReferenceName = plumbing.NewBranchReferenceName(r.opts.Branch)
		co.SingleBranch = true
	}
	// PlainCloneContext removes what it created when it fails.
	repo, err := git.PlainCloneContext(ctx, r.opts.Dir, false, co)
	if err != nil {
		return fmt.Errorf("gitrepo: clone %s into %s: %w", r.opts.Upstream, r.opts.Dir, upstreamErr(ctx, r.opts.Upstream, err))
	}
	r.repo = repo
	if r.opts.Submodules {
		if err := updateSubmodules(ctx, repo, r.opts.Upstream, r.policy(), maxSubmoduleDepth); err != nil {
			return fmt.Errorf("gitrepo: %s: %w", r.opts.Dir, err)
		}
	}
	return r.updateServerInfo()
}

func (r *Repo) policy() urlPolicy { return newURLPolicy(r.opts.Upstream, r.opts.SubmoduleURLs) }

// syncRemote makes the upstream remote point at opts.Upstream.
func (r *Repo) syncRemote() error {
	cfg, err := r.repo.Config()
	if err != nil {
		return fmt.Errorf("gitrepo: %s: read config: %w", r.opts.Dir, err)
	}
	rc := cfg.Remotes[remoteName]
	if rc != nil && len(rc.URLs) == 1 && rc.URLs[0] == r.opts.Upstream {
		return nil
	}
	if rc == nil {
		rc = &config.RemoteConfig{
			Name:  remoteName,
			Fetch: []config.RefSpec{config.RefSpec(fmt.Sprintf(config.DefaultFetchRefSpec, remoteName))},
		}
		cfg.Remotes[remoteName] = rc
	}
	rc.URLs = []string{r.opts.Upstream}
	if err := r.repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("gitrepo: %s: set upstream: %w", r.opts.Dir, err)
	}
	return nil
}

// Dir returns the working copy's directory, Options.Dir.
func (r *Repo) Dir() string { return r.opts.Dir }

// GitDir returns the repository's git directory, Dir/.git: what is served
// to the targets.
func (r *Repo) GitDir() string { return filepath.Join(r.opts.Dir, git.GitDirName) }

// Update brings the deploy repository to the head of the upstream branch:
// it fetches the branch (Options.Branch, or the branch the upstream HEAD
// points to, all upstream branches being fetched in that case), points the
// local branch of the same name and HEAD at it, and hard-resets the working
// copy. Then, when Options.Submodules is set, it initializes and updates the
// submodules recursively to the commits recorded in the superproject (their
// URLs re-read from .gitmodules every time, relative URLs resolved against
// the upstream), fetching a submodule only when the recorded commit is
// missing. Last, it writes the server info (UpdateServerInfo).
//
// Update is idempotent. A deploy repository is never edited by hand: local
// changes to tracked files, in the superproject and in the submodules, are
// discarded, and local commits are dropped. Untracked files are left in
// place (they are never served: targets fetch commits, not the working
// copy).
func (r *Repo) Update(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.syncRemote(); err != nil {
		return err
	}
	branch, err := r.upstreamBranch(ctx)
	if err != nil {
		return err
	}

	spec := config.RefSpec(fmt.Sprintf("+refs/heads/*:refs/remotes/%s/*", remoteName))
	if r.opts.Branch != "" {
		spec = config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/%s/%[1]s", branch, remoteName))
	}
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Tags:       git.NoTags,
		Force:      true,
		Prune:      r.opts.Branch == "",
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("gitrepo: %s: fetch %s: %w", r.opts.Dir, r.opts.Upstream, upstreamErr(ctx, r.opts.Upstream, err))
	}

	remoteRef, err := r.repo.Reference(plumbing.NewRemoteReferenceName(remoteName, branch), true)
	if err != nil {
		return fmt.Errorf("gitrepo: %s: upstream branch %q not found after fetch: %w", r.opts.Dir, branch, err)
	}
	head := remoteRef.Hash()
	local := plumbing.NewBranchReferenceName(branch)
	for _, ref := range []*plumbing.Reference{
		plumbing.NewHashReference(local, head),
		plumbing.NewSymbolicReference(plumbing.HEAD, local),
	} {
		if err := r.repo.Storer.SetReference(ref); err != nil {
			return fmt.Errorf("gitrepo: %s: set %s: %w", r.opts.Dir, ref.Name(), err)
		}
	}
	w, err := r.repo.Worktree()
	if err != nil {
		return fmt.Errorf("gitrepo: %s: %w", r.opts.Dir, err)
	}
	if err := w.Reset(&git.ResetOptions{Mode: git.HardReset, Commit: head}); err != nil {
		return fmt.Errorf("gitrepo: %s: reset to %s: %w", r.opts.Dir, head, err)
	}
	if r.opts.Submodules {
		if err := updateSubmodules(ctx, r.repo, r.opts.Upstream, r.policy(), maxSubmoduleDepth); err != nil {
			return fmt.Errorf("gitrepo: %s: %w", r.opts.Dir, err)
		}
	}
	return r.updateServerInfo()
}

// upstreamBranch returns the short name of the branch to deploy from.
func (r *Repo) upstreamBranch(ctx context.Context) (string, error) {
	if r.opts.Branch != "" {
		return r.opts.Branch, nil
	}
	remote, err := r.repo.Remote(remoteName)
	if err != nil {
		return "", fmt.Errorf("gitrepo: %s: %w", r.opts.Dir, err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("gitrepo: %s: list %s: %w", r.opts.Dir, r.opts.Upstream, upstreamErr(ctx, r.opts.Upstream, err))
	}
	var head *plumbing.Reference
	for _, ref := range refs {
		if ref.Name() == plumbing.HEAD {
			head = ref
		}
	}
	if head != nil && head.Type() == plumbing.SymbolicReference && head.Target().IsBranch() {
		return head.Target().Short(), nil
	}
	if head != nil && head.Type() == plumbing.HashReference {
		for _, ref := range refs {
			if ref.Name().IsBranch() && ref.Hash() == head.Hash() {
				return ref.Name().Short(), nil
			}
		}
	}
	return "", fmt.Errorf("gitrepo: %s: the HEAD of %s is not a branch: set the branch to deploy from", r.opts.Dir, r.opts.Upstream)
}

// Head returns the full sha1 of the deploy repository's HEAD.
func (r *Repo) Head() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.head()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (r *Repo) head() (plumbing.Hash, error) {
	ref, err := r.repo.Head()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: %s: HEAD: %w", r.opts.Dir, err)
	}
	return ref.Hash(), nil
}
