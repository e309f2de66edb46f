// Package build makes a new revision of a deploy repository from its
// source submodule, as Wikimedia's `server.js build --deploy-repo
// --review` does: in a fresh working copy of the deploy repository, the
// source submodule is moved to the source repository's branch head (or a
// given revision), an optional build command runs (installing
// dependencies, say), the result is committed with a message naming the
// new source revision and the source commits since the previous pointer,
// and the commit is pushed — for review (Gerrit's refs/for/<branch>) or
// to a branch.
//
// Every git operation is go-git's: no git binary is run. The build
// command is the operator's shell code, run with sh -c.
//
// It knows nothing of IRC or of deploys: the command line prints the
// result and tells the channel.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"deploybot/deployer/gitrepo"
)

// Options say what to build.
type Options struct {
	// Service names the service in the commit message.
	Service string
	// Upstream is the deploy repository the working copy is cloned from.
	Upstream string
	// PushURL is where the commit is pushed; "" is Upstream.
	PushURL string
	// Branch is the deploy repository's branch; "" is its HEAD's.
	Branch string
	// Submodule is the source submodule's path; "" is the only one.
	Submodule string
	// SourceBranch is the source repository's branch; "" is the
	// submodule's branch in .gitmodules, else the source's HEAD.
	SourceBranch string
	// SourceRev is the source revision (7 to 40 hex digits); "" is the
	// source branch's head.
	SourceRev string
	// Command runs with sh -c at the top of the working copy, with
	// DEPLOY_SOURCE_REV set, once the pointer moved; "" runs nothing.
	Command string
	// Timeout bounds Command (0: none).
	Timeout time.Duration
	// Ref is the full ref pushed to: refs/for/<branch> for review,
	// refs/heads/<branch> for a branch; "" is refs/heads/<Branch>.
	// "<branch>" in it is replaced by the deploy repository's branch.
	Ref string
	// Dir is the working copy: an empty or missing directory.
	Dir string
	// Auth authenticates to SSH remotes (nil: go-git's default); other
	// remotes get none.
	Auth transport.AuthMethod
	// Author signs the commit.
	Author object.Signature
	// Output receives the build command's output (nil: discarded).
	Output io.Writer
}

// Result is a build that was pushed.
type Result struct {
	// Commit is the new deploy repository commit; Message its message.
	Commit, Message string
	// Branch is the deploy repository's branch; PushURL and Ref where
	// the commit went.
	Branch, PushURL, Ref string
	// From and To are the source revisions before and after ("" From
	// when the submodule had none).
	From, To string
	// SourceURL is where the source was fetched from.
	SourceURL string
	// Commits are the source commits since From, newest first
	// ("<short sha> <subject>"), at most MaxCommits.
	Commits []string
	// More is how many more commits there were.
	More int
}

// MaxCommits is how many source commits a commit message lists.
const MaxCommits = 50

// ErrNothingToBuild: the source is already at the revision asked for and
// the build command changed nothing.
var ErrNothingToBuild = errors.New("nothing to commit: the source submodule is already at that revision and the build changed nothing")

// authFor is Auth for an SSH URL, else nil.
func (o Options) authFor(u string) transport.AuthMethod {
	if ep, err := transport.NewEndpoint(u); err == nil && ep.Protocol == "ssh" {
		return o.Auth
	}
	return nil
}

// Run builds and pushes.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.PushURL == "" {
		o.PushURL = o.Upstream
	}
	if o.SourceRev != "" {
		if err := gitrepo.ValidateRev(o.SourceRev); err != nil {
			return nil, err
		}
	}
	copyOpts := &git.CloneOptions{URL: o.Upstream, Auth: o.authFor(o.Upstream), SingleBranch: true}
	if o.Branch != "" {
		copyOpts.ReferenceName = plumbing.NewBranchReferenceName(o.Branch)
	}
	repo, err := git.PlainCloneContext(ctx, o.Dir, false, copyOpts)
	if err != nil {
		return nil, fmt.Errorf("cloning the deploy repository %s: %w", o.Upstream, err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("the deploy repository's HEAD: %w", err)
	}
	if !head.Name().IsBranch() {
		return nil, errors.New("the deploy repository's HEAD is not a branch: name one with branch:")
	}
	res := &Result{Branch: head.Name().Short(), PushURL: o.PushURL}
	res.Ref = strings.ReplaceAll(o.Ref, "<branch>", res.Branch)
	if res.Ref == "" {
		res.Ref = "refs/heads/" + res.Branch
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, err
	}
	sub, err := findSubmodule(wt, o.Submodule)
	if err != nil {
		return nil, err
	}
	src, err := moveSubmodule(ctx, o, repo, sub, res)
	if err != nil {
		return nil, err
	}
	if err := runCommand(ctx, o, res.To); err != nil {
		return nil, err
	}
	if err := stage(repo, wt, sub.Config().Path, res.To); err != nil {
		return nil, err
	}
	res.Commits, res.More = sourceLog(src, res.From, res.To)
	res.Message = message(o.Service, res)
	if err := commitAndPush(ctx, o, repo, wt, res); err != nil {
		return nil, err
	}
	return res, nil
}

// findSubmodule returns the submodule at path p, or the only one.
func findSubmodule(wt *git.Worktree, p string) (*git.Submodule, error) {
	subs, err := wt.Submodules()
	if err != nil {
		return nil, fmt.Errorf("reading .gitmodules: %w", err)
	}
	var names []string
	for _, s := range subs {
		if p == "" && len(subs) == 1 || s.Config().Path == p {
			return s, nil
		}
		names = append(names, s.Config().Path)
	}
	if p == "" {
		return nil, fmt.Errorf("the deploy repository has %d submodules (%s): name the source with build_submodule", len(subs), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("no submodule at %s in the deploy repository (it has: %s)", p, strings.Join(names, ", "))
}

// moveSubmodule fetches the source into the submodule and checks out the
// revision asked for; it sets res.SourceURL, From and To.
func moveSubmodule(ctx context.Context, o Options, repo *git.Repository, sub *git.Submodule, res *Result) (*git.Repository, error) {
	cfg := sub.Config()
	u, err := gitrepo.ResolveSubmoduleURL(o.Upstream, cfg.URL)
	if err != nil {
		return nil, err
	}
	res.SourceURL = u
	if st, err := sub.Status(); err == nil && !st.Expected.IsZero() {
		res.From = st.Expected.String()
	}
	if err := sub.Init(); err != nil && !errors.Is(err, git.ErrSubmoduleAlreadyInitialized) {
		return nil, fmt.Errorf("submodule %s: %w", cfg.Path, err)
	}
	src, err := sub.Repository()
	if err != nil {
		return nil, fmt.Errorf("submodule %s: %w", cfg.Path, err)
	}
	_ = src.DeleteRemote(git.DefaultRemoteName)
	if _, err := src.CreateRemote(&gitconfig.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{u}}); err != nil {
		return nil, err
	}
	err = src.FetchContext(ctx, &git.FetchOptions{Auth: o.authFor(u), Tags: git.NoTags, RefSpecs: []gitconfig.RefSpec{
		"+refs/heads/*:refs/remotes/origin/*", "+HEAD:refs/remotes/origin/HEAD",
	}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetching the source %s: %w", u, err)
	}
	rev := o.SourceRev
	if rev == "" {
		branch := o.SourceBranch
		if branch == "" {
			branch = cfg.Branch
		}
		rev = "refs/remotes/origin/HEAD"
		if branch != "" {
			rev = "refs/remotes/origin/" + branch
		}
	}
	h, err := src.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("source revision %s in %s: %w", strings.TrimPrefix(rev, "refs/remotes/origin/"), u, err)
	}
	if _, err := src.CommitObject(*h); err != nil {
		return nil, fmt.Errorf("source revision %s: %w", rev, err)
	}
	swt, err := src.Worktree()
	if err != nil {
		return nil, err
	}
	if err := swt.Checkout(&git.CheckoutOptions{Hash: *h, Force: true}); err != nil {
		return nil, fmt.Errorf("checking out %s in %s: %w", h, cfg.Path, err)
	}
	res.To = h.String()
	return src, nil
}

// runCommand runs the build command, if any.
func runCommand(ctx context.Context, o Options, rev string) error {
	if o.Command == "" {
		return nil
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", o.Command)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "DEPLOY_SOURCE_REV="+rev)
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	var tail tailWriter
	cmd.Stdout = io.MultiWriter(out, &tail)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (build_timeout %s)", ctx.Err(), o.Timeout)
		}
		return fmt.Errorf("build_command failed: %v: %s", err, tail.last())
	}
	return nil
}

// stage adds every change of the working copy and points the submodule
// at rev.
func stage(repo *git.Repository, wt *git.Worktree, subPath, rev string) error {
	st, err := wt.Status()
	if err != nil {
		return fmt.Errorf("the build's changes: %w", err)
	}
	for p, fs := range st {
		if p == subPath || strings.HasPrefix(p, subPath+"/") || fs.Worktree == git.Unmodified {
			continue
		}
		if fs.Worktree == git.Deleted {
			_, err = wt.Remove(p)
		} else {
			_, err = wt.Add(p)
		}
		if err != nil {
			return fmt.Errorf("adding the build's change of %s: %w", p, err)
		}
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		return err
	}
	// The gitlink, whatever Add made of the submodule's directory.
	kept := idx.Entries[:0]
	for _, e := range idx.Entries {
		if e.Name == subPath || strings.HasPrefix(e.Name, subPath+"/") {
			continue
		}
		kept = append(kept, e)
	}
	idx.Entries = kept
	e := idx.Add(path.Clean(subPath))
	e.Hash, e.Mode = plumbing.NewHash(rev), filemode.Submodule
	return repo.Storer.SetIndex(idx)
}

// tailWriter keeps the last line written.
type tailWriter struct{ buf []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailWriter) last() string {
	s := strings.TrimRight(string(t.buf), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
