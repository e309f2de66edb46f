package gitrepo

import (
	"context"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func shas(cs []Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SHA
	}
	return out
}

func sameList(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestRange(t *testing.T) {
	w := newWorld(t)
	w.advance()
	// A side branch from c2, merged into main: c1 c2 c3 c4 M, with s1 on
	// the side.
	w.git(w.up, "checkout", "-q", "-b", "side", w.c2)
	s1 := w.commit(w.up, "Side work", map[string]string{"side.txt": "s\n"})
	w.git(w.up, "checkout", "-q", "main")
	date := w.clock.next()
	runGit(t, w.up, gitEnv("GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date),
		"merge", "-q", "--no-ff", "-m", "Merge side", "side")
	m := w.git(w.up, "rev-parse", "HEAD")
	if err := w.repo.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := w.repo

	// Forward, newest first, with subjects.
	rg, err := r.Range(w.c1, w.c3)
	if err != nil {
		t.Fatal(err)
	}
	if rg.Backwards || len(rg.Dropped) != 0 || !sameList(shas(rg.Commits), []string{w.c3, w.c2}) {
		t.Fatalf("Range(c1, c3) = %+v", rg)
	}
	if rg.From != w.c1 || rg.To != w.c3 {
		t.Errorf("From/To = %s %s", rg.From, rg.To)
	}
	c := rg.Commits[0]
	if c.Subject != "Third: README v2" || c.Author != "Alice Author" || c.Time.IsZero() || c.Short() != w.c3[:7] {
		t.Errorf("commit = %+v", c)
	}
	if rg.Commits[1].Subject != "Add lib submodule" {
		t.Errorf("subject = %q", rg.Commits[1].Subject)
	}
	if !rg.Commits[0].Time.After(rg.Commits[1].Time) {
		t.Errorf("not newest first")
	}

	// To "" is HEAD; prefixes work; through a merge.
	rg, err = r.Range(w.c3[:7], "")
	if err != nil {
		t.Fatal(err)
	}
	if rg.Backwards || !sameList(shas(rg.Commits), []string{m, s1, w.c4}) {
		t.Errorf("Range(c3, HEAD) = %v, want [M s1 c4]", shas(rg.Commits))
	}

	// First deploy: To and its first parents, newest first.
	rg, err = r.Range("", w.c3)
	if err != nil || len(rg.Commits) < 3 || !sameList(shas(rg.Commits[:3]), []string{w.c3, w.c2, w.c1}) || rg.From != "" || rg.More {
		t.Errorf("Range(\"\", c3) = %+v, %v", rg, err)
	}
	// At most n of them, saying there are more.
	head, _ := r.repo.CommitObject(r.mustHash(t, w.c3))
	if got, more := firstParents(head, 2); !more || !sameList(shas(got), []string{w.c3, w.c2}) {
		t.Errorf("firstParents(c3, 2) = %v, %v", shas(got), more)
	}

	// Same revision: nothing.
	rg, err = r.Range(w.c3, w.c3)
	if err != nil || len(rg.Commits) != 0 || rg.Backwards {
		t.Errorf("Range(c3, c3) = %+v, %v", rg, err)
	}

	// Rollback: backwards, the commits taken away, newest first.
	rg, err = r.Range(m, w.c2)
	if err != nil {
		t.Fatal(err)
	}
	if !rg.Backwards || len(rg.Dropped) != 0 || !sameList(shas(rg.Commits), []string{m, s1, w.c4, w.c3}) {
		t.Errorf("Range(M, c2) = backwards %v %v", rg.Backwards, shas(rg.Commits))
	}

	// Diverged: c4 vs s1 (both from c2).
	rg, err = r.Range(w.c4, s1)
	if err != nil {
		t.Fatal(err)
	}
	if rg.Backwards || !sameList(shas(rg.Commits), []string{s1}) || !sameList(shas(rg.Dropped), []string{w.c4, w.c3}) {
		t.Errorf("Range(c4, s1) = %v dropped %v backwards %v", shas(rg.Commits), shas(rg.Dropped), rg.Backwards)
	}

	// Bad revisions.
	for _, c := range [][2]string{{"HEAD", w.c3}, {w.c1, "nothex!"}, {unknownPrefix(t, r), w.c3}} {
		if _, err := r.Range(c[0], c[1]); err == nil {
			t.Errorf("Range(%q, %q) succeeded", c[0], c[1])
		} else {
			revErr(t, err)
		}
	}
}

func (r *Repo) mustHash(t *testing.T, rev string) plumbing.Hash {
	t.Helper()
	h, err := r.resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
