package gitrepo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Revision syntax: an abbreviated or full sha1.
const (
	MinRevLen = 7  // shortest sha1 prefix accepted
	MaxRevLen = 40 // a full sha1
)

// Reasons of a RevisionError, besides the "ambiguous (matches …)" one.
const (
	ReasonNotHex    = "not hex"
	ReasonTooShort  = "too short"
	ReasonTooLong   = "too long"
	ReasonUnknown   = "unknown"
	reasonAmbiguous = "ambiguous"
)

// RevisionError says why a revision given by an operator was refused.
// Its message is meant for the operator, e.g.
//
//	revision "1a2b3c4": ambiguous (matches 1a2b3c4d5e6f…, 1a2b3c4e0f1a…), give more digits
type RevisionError struct {
	// Rev is the revision as given.
	Rev string
	// Reason is "not hex", "too short", "too long", "unknown" or
	// "ambiguous (matches 1a2b3c4d5e6f…, 1a2b3c4e0f1a…)".
	Reason string
}

func (e *RevisionError) Error() string {
	rev := e.Rev
	if len(rev) > 2*MaxRevLen {
		rev = rev[:2*MaxRevLen] + "…"
	}
	var hint string
	switch {
	case e.Reason == ReasonNotHex || e.Reason == ReasonTooShort || e.Reason == ReasonTooLong:
		hint = fmt.Sprintf(", want a commit sha1: %d to %d hex digits", MinRevLen, MaxRevLen)
	case e.Reason == ReasonUnknown:
		hint = ", no such commit in the deploy repository"
	case e.Ambiguous():
		hint = ", give more digits"
	}
	return fmt.Sprintf("revision %q: %s%s", rev, e.Reason, hint)
}

// Ambiguous reports whether the revision matched several commits.
func (e *RevisionError) Ambiguous() bool { return strings.HasPrefix(e.Reason, reasonAmbiguous) }

// ValidateRev checks the syntax of a revision given by an operator, without
// looking at any repository: "" (meaning the new HEAD) or 7 to 40 hex
// digits, either case. The error is a *RevisionError.
func ValidateRev(rev string) error {
	if rev == "" {
		return nil
	}
	for i := 0; i < len(rev); i++ {
		if !isHex(rev[i]) {
			return &RevisionError{Rev: rev, Reason: ReasonNotHex}
		}
	}
	switch {
	case len(rev) < MinRevLen:
		return &RevisionError{Rev: rev, Reason: ReasonTooShort}
	case len(rev) > MaxRevLen:
		return &RevisionError{Rev: rev, Reason: ReasonTooLong}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Resolve turns the revision an operator asked for into the full sha1 of a
// commit: "" is HEAD (after Update, the upstream head); otherwise rev must
// be 7 to 40 hex digits (either case) that are the prefix of exactly one
// commit object in the repository's object store, reachable or not (tags,
// trees and blobs do not count). The syntax is checked before the
// repository is touched. Errors about the revision are *RevisionError:
// "not hex", "too short", "too long", "unknown" or "ambiguous (matches …)".
func (r *Repo) Resolve(rev string) (string, error) {
	if err := ValidateRev(rev); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (r *Repo) resolve(rev string) (plumbing.Hash, error) {
	if rev == "" {
		return r.head()
	}
	if err := ValidateRev(rev); err != nil {
		return plumbing.ZeroHash, err
	}
	prefix := strings.ToLower(rev)
	cands, err := commitsWithPrefix(r.repo.Storer, prefix)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: %s: look up %q: %w", r.opts.Dir, rev, err)
	}
	sha, err := matchPrefix(rev, cands)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return plumbing.NewHash(sha), nil
}

// matchPrefix picks the one sha among shas that starts with rev (compared
// case-insensitively; shas are lowercase hex). No match is "unknown", more
// than one is "ambiguous (matches …)", listing them.
func matchPrefix(rev string, shas []string) (string, error) {
	prefix := strings.ToLower(rev)
	seen := map[string]bool{}
	var matches []string
	for _, s := range shas {
		s = strings.ToLower(s)
		if strings.HasPrefix(s, prefix) && !seen[s] {
			seen[s] = true
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 0:
		return "", &RevisionError{Rev: rev, Reason: ReasonUnknown}
	case 1:
		return matches[0], nil
	}
	sort.Strings(matches)
	return "", &RevisionError{Rev: rev, Reason: ambiguousReason(len(prefix), matches)}
}

// ambiguousReason lists (up to 5 of) the sorted matches, each abbreviated
// to at least 12 digits and as many as needed to tell it from the others.
func ambiguousReason(prefixLen int, matches []string) string {
	const show = 5
	var parts []string
	for i, m := range matches {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(matches)-show))
			break
		}
		n := max(12, prefixLen+1)
		if i > 0 {
			n = max(n, commonPrefixLen(matches[i-1], m)+1)
		}
		if i+1 < len(matches) {
			n = max(n, commonPrefixLen(m, matches[i+1])+1)
		}
		if n < len(m) {
			m = m[:n] + "…"
		}
		parts = append(parts, m)
	}
	return fmt.Sprintf("%s (matches %s)", reasonAmbiguous, strings.Join(parts, ", "))
}

func commonPrefixLen(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// prefixSearcher is implemented by go-git's filesystem object storage.
type prefixSearcher interface {
	HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
}

// commitsWithPrefix returns the sha1 of every commit object in st whose
// sha1 starts with prefix (lowercase hex, 7 to 40 digits).
func commitsWithPrefix(st storer.EncodedObjectStorer, prefix string) ([]string, error) {
	isCommit := func(h plumbing.Hash) (bool, error) {
		_, err := st.EncodedObject(plumbing.CommitObject, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	if len(prefix) == MaxRevLen {
		h := plumbing.NewHash(prefix)
		ok, err := isCommit(h)
		if err != nil || !ok {
			return nil, err
		}
		return []string{prefix}, nil
	}

	var out []string
	if ps, ok := st.(prefixSearcher); ok {
		b, err := hex.DecodeString(prefix[:len(prefix)&^1])
		if err != nil {
			return nil, err
		}
		hashes, err := ps.HashesWithPrefix(b)
		if err != nil {
			return nil, err
		}
		for _, h := range hashes {
			s := h.String()
			if !strings.HasPrefix(s, prefix) {
				continue
			}
			ok, err := isCommit(h)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, s)
			}
		}
		return out, nil
	}

	iter, err := st.IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	err = iter.ForEach(func(o plumbing.EncodedObject) error {
		if s := o.Hash().String(); strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}
