package build

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// sourceLog lists the source commits reachable from to and not from from
// (all of to's history when from is "" or unknown), newest first, at most
// MaxCommits, and how many more there are.
func sourceLog(src *git.Repository, from, to string) ([]string, int) {
	stop := map[plumbing.Hash]bool{}
	if from != "" {
		if c, err := src.CommitObject(plumbing.NewHash(from)); err == nil {
			_ = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(c *object.Commit) error {
				stop[c.Hash] = true
				return nil
			})
		}
	}
	tip, err := src.CommitObject(plumbing.NewHash(to))
	if err != nil {
		return nil, 0
	}
	var out []string
	more := 0
	_ = object.NewCommitPreorderIter(tip, stop, nil).ForEach(func(c *object.Commit) error {
		if stop[c.Hash] {
			return storer.ErrStop
		}
		if len(out) == MaxCommits {
			more++
			return nil
		}
		subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
		out = append(out, c.Hash.String()[:7]+" "+subject)
		return nil
	})
	return out, more
}

// message is the commit message of a build.
func message(service string, res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Update %s to %s\n\n", service, res.To[:7])
	fmt.Fprintf(&b, "Source: %s at %s\n", res.SourceURL, res.To)
	switch {
	case res.From == "":
		b.WriteString("Previous pointer: none\n")
	case res.From == res.To:
		fmt.Fprintf(&b, "Previous pointer: %s (unchanged)\n", res.From)
	default:
		fmt.Fprintf(&b, "Previous pointer: %s\n", res.From)
	}
	if len(res.Commits) > 0 {
		fmt.Fprintf(&b, "\nSource commits since %s:\n", short(res.From))
		for _, c := range res.Commits {
			b.WriteString("  " + c + "\n")
		}
		if res.More > 0 {
			fmt.Fprintf(&b, "  … and %d more\n", res.More)
		}
	}
	return b.String()
}

func short(sha string) string {
	if sha == "" {
		return "the start"
	}
	return sha[:7]
}

// commitAndPush commits the staged changes and pushes the commit to
// res.PushURL's res.Ref; it sets res.Commit.
func commitAndPush(ctx context.Context, o Options, repo *git.Repository, wt *git.Worktree, res *Result) error {
	author := o.Author
	h, err := wt.Commit(res.Message, &git.CommitOptions{Author: &author, Committer: &author})
	if errors.Is(err, git.ErrEmptyCommit) {
		return ErrNothingToBuild
	}
	if err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	res.Commit = h.String()
	const remote = "deploybot-push"
	if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: remote, URLs: []string{res.PushURL}}); err != nil {
		return err
	}
	spec := gitconfig.RefSpec("refs/heads/" + res.Branch + ":" + res.Ref)
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("push ref %s: %w", res.Ref, err)
	}
	err = repo.PushContext(ctx, &git.PushOptions{RemoteName: remote, RefSpecs: []gitconfig.RefSpec{spec}, Auth: o.authFor(res.PushURL)})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("pushing %s to %s %s: %w", h.String()[:7], res.PushURL, res.Ref, err)
	}
	return nil
}
