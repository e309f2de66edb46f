package gitrepo

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Commit is one commit of a Range, as shown to operators.
type Commit struct {
	// SHA is the full sha1.
	SHA string
	// Subject is the first line of the commit message.
	Subject string
	// Author is the author's name.
	Author string
	// Time is the commit (committer) time, the one ranges are sorted by.
	Time time.Time
}

// Short returns the sha1 abbreviated to 7 digits.
func (c Commit) Short() string { return c.SHA[:min(len(c.SHA), MinRevLen)] }

// Range is what a deploy changes: the commits between the deployed
// revision From and the revision To being deployed.
//
//   - From == To: nothing changes, Commits is empty.
//   - From == "" (first deploy): Commits are the newest commits of To's
//     first-parent history, To first, at most FirstDeployCommits; More is
//     set when there are older ones.
//   - From is an ancestor of To (the usual deploy): Commits are the commits
//     reachable from To and not from From, newest first.
//   - To is an ancestor of From (a rollback to an older revision):
//     Backwards is set and Commits are the commits being taken away —
//     reachable from From and not from To — newest first.
//   - Neither (history rewritten upstream, or a deploy of another branch):
//     Commits are the commits reachable from To and not from From, and
//     Dropped the commits reachable from From and not from To, each newest
//     first.
type Range struct {
	// From and To are full sha1s; From is "" on a first deploy.
	From, To string
	// Commits are the commits the deploy brings in or, when Backwards,
	// takes away; newest first.
	Commits []Commit
	// Backwards is set when To is a strict ancestor of From: a rollback.
	Backwards bool
	// Dropped are, when From and To have diverged, the commits of From
	// that To does not have; newest first. Empty otherwise.
	Dropped []Commit
	// More is set on a first deploy whose history holds more commits than
	// Commits lists.
	More bool
}

// FirstDeployCommits is how many commits a first deploy's Range lists.
const FirstDeployCommits = 10

// Range returns the commits between from (the currently deployed revision,
// "" if none) and to ("" for HEAD); both are resolved like Resolve. See the
// Range type for what it holds in each case. Like git, the walk relies on
// commit times to stop early, with some slack for skewed clocks.
func (r *Repo) Range(from, to string) (Range, error) {
	if err := ValidateRev(from); err != nil {
		return Range{}, err
	}
	if err := ValidateRev(to); err != nil {
		return Range{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	toHash, err := r.resolve(to)
	if err != nil {
		return Range{}, err
	}
	toCommit, err := object.GetCommit(r.repo.Storer, toHash)
	if err != nil {
		return Range{}, fmt.Errorf("gitrepo: %s: commit %s: %w", r.opts.Dir, toHash, err)
	}
	rg := Range{To: toHash.String()}
	if from == "" {
		rg.Commits, rg.More = firstParents(toCommit, FirstDeployCommits)
		return rg, nil
	}
	fromHash, err := r.resolve(from)
	if err != nil {
		return Range{}, err
	}
	rg.From = fromHash.String()
	if fromHash == toHash {
		return rg, nil
	}
	fromCommit, err := object.GetCommit(r.repo.Storer, fromHash)
	if err != nil {
		return Range{}, fmt.Errorf("gitrepo: %s: commit %s: %w", r.opts.Dir, fromHash, err)
	}
	added, removed, err := symmetricDifference(r.repo.Storer, toCommit, fromCommit)
	if err != nil {
		return Range{}, fmt.Errorf("gitrepo: %s: history %s..%s: %w", r.opts.Dir, rg.From, rg.To, err)
	}
	switch {
	case len(added) == 0:
		rg.Commits, rg.Backwards = removed, true
	default:
		rg.Commits, rg.Dropped = added, removed
	}
	return rg, nil
}

// firstParents lists c and its first-parent ancestors, newest first, at
// most n, and whether there are more.
func firstParents(c *object.Commit, n int) ([]Commit, bool) {
	var out []Commit
	for c != nil {
		if len(out) == n {
			return out, true
		}
		out = append(out, toCommitInfo(c))
		if c.NumParents() == 0 {
			break
		}
		p, err := c.Parent(0)
		if err != nil {
			break // a shallow history: list what there is
		}
		c = p
	}
	return out, false
}

func toCommitInfo(c *object.Commit) Commit {
	subject, _, _ := strings.Cut(strings.TrimLeft(c.Message, "\r\n"), "\n")
	return Commit{
		SHA:     c.Hash.String(),
		Subject: strings.TrimSpace(subject),
		Author:  c.Author.Name,
		Time:    c.Committer.When,
	}
}

// Flags painted on commits by symmetricDifference.
const (
	fromA = 1 << iota
	fromB
	fromBoth = fromA | fromB
)

// staleSlack is how many commits reachable from both sides are still walked
// once every queued commit is reachable from both, to cope with commits
// whose time is older than one of their parents' (skewed clocks).
const staleSlack = 64

// symmetricDifference returns the commits reachable from a and not from b,
// and those reachable from b and not from a, each sorted newest first.
// It paints commits from both tips, newest first, and stops when every
// commit left to walk is reachable from both (git's merge-base walk).
func symmetricDifference(s storer.EncodedObjectStorer, a, b *object.Commit) (onlyA, onlyB []Commit, err error) {
	flags := map[plumbing.Hash]int{}
	commits := map[plumbing.Hash]*object.Commit{}
	order := map[plumbing.Hash]int{}
	q := &commitQueue{}
	push := func(c *object.Commit, f int) {
		old := flags[c.Hash]
		if old|f == old {
			return
		}
		flags[c.Hash] = old | f
		if _, ok := commits[c.Hash]; !ok {
			commits[c.Hash] = c
			order[c.Hash] = len(order)
		}
		heap.Push(q, c)
	}
	allStale := func() bool {
		for _, c := range *q {
			if flags[c.Hash] != fromBoth {
				return false
			}
		}
		return true
	}
	push(a, fromA)
	push(b, fromB)
	slack := staleSlack
	for q.Len() > 0 {
		if allStale() {
			if slack == 0 {
				break
			}
			slack--
		}
		c := heap.Pop(q).(*object.Commit)
		f := flags[c.Hash]
		for _, ph := range c.ParentHashes {
			if flags[ph]|f == flags[ph] {
				continue
			}
			p, err := object.GetCommit(s, ph)
			if err != nil {
				return nil, nil, fmt.Errorf("parent %s of %s: %w", ph, c.Hash, err)
			}
			push(p, f)
		}
	}
	collect := func(want int) []Commit {
		var cs []*object.Commit
		for h, f := range flags {
			if f == want {
				cs = append(cs, commits[h])
			}
		}
		sort.Slice(cs, func(i, j int) bool {
			ti, tj := cs[i].Committer.When, cs[j].Committer.When
			if !ti.Equal(tj) {
				return ti.After(tj)
			}
			return order[cs[i].Hash] < order[cs[j].Hash]
		})
		out := make([]Commit, len(cs))
		for i, c := range cs {
			out[i] = toCommitInfo(c)
		}
		return out
	}
	return collect(fromA), collect(fromB), nil
}

// commitQueue is a max-heap of commits by commit time.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When.After(q[j].Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}
