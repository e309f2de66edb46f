package gitrepo

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func revErr(t *testing.T, err error) *RevisionError {
	t.Helper()
	var re *RevisionError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RevisionError", err, err)
	}
	return re
}

func TestValidateRev(t *testing.T) {
	for _, c := range []struct{ rev, reason string }{
		{"", ""},
		{"abcdef0", ""},
		{"ABCDEF0", ""},
		{strings.Repeat("a", 40), ""},
		{"abcdef", ReasonTooShort},
		{"a", ReasonTooShort},
		{strings.Repeat("a", 41), ReasonTooLong},
		{"HEAD", ReasonNotHex},
		{"HEAD~1", ReasonNotHex},
		{"abcdefg", ReasonNotHex},
		{"main", ReasonNotHex},
		{"abcdef0 ", ReasonNotHex},
		{"-abcdef0", ReasonNotHex},
		{"abc\ndef0", ReasonNotHex},
		{strings.Repeat("z", 50), ReasonNotHex},
	} {
		err := ValidateRev(c.rev)
		if c.reason == "" {
			if err != nil {
				t.Errorf("ValidateRev(%q) = %v", c.rev, err)
			}
			continue
		}
		if re := revErr(t, err); re.Reason != c.reason || re.Rev != c.rev {
			t.Errorf("ValidateRev(%q) = %+v, want reason %q", c.rev, re, c.reason)
		}
	}
}

func TestRevisionErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  *RevisionError
		want string
	}{
		{&RevisionError{"HEAD~1", ReasonNotHex}, `revision "HEAD~1": not hex, want a commit sha1: 7 to 40 hex digits`},
		{&RevisionError{"abc", ReasonTooShort}, `revision "abc": too short, want a commit sha1: 7 to 40 hex digits`},
		{&RevisionError{"1234567", ReasonUnknown}, `revision "1234567": unknown, no such commit in the deploy repository`},
		{&RevisionError{"1a2b3c4", "ambiguous (matches 1a2b3c4d…, 1a2b3c4e…)"}, `revision "1a2b3c4": ambiguous (matches 1a2b3c4d…, 1a2b3c4e…), give more digits`},
		{&RevisionError{"a\r\nPRIVMSG #x :hi", ReasonNotHex}, `revision "a\r\nPRIVMSG #x :hi": not hex, want a commit sha1: 7 to 40 hex digits`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %s\nwant      %s", got, c.want)
		}
	}
	long := &RevisionError{strings.Repeat("x", 500), ReasonNotHex}
	if n := len(long.Error()); n > 200 {
		t.Errorf("message for a 500-char revision is %d bytes long", n)
	}
}

func TestMatchPrefix(t *testing.T) {
	shas := []string{
		"1a2b3c4d00000000000000000000000000000000",
		"1a2b3c4e00000000000000000000000000000000",
		"1a2b3c4e00000000000000000000000000000001",
		"ffffffffffffffffffffffffffffffffffffffff",
	}
	for _, c := range []struct {
		rev, want, reason string
	}{
		{"fffffff", shas[3], ""},
		{"FFFFFFF", shas[3], ""},
		{shas[0], shas[0], ""},
		{"1a2b3c4d", shas[0], ""},
		{"1A2B3C4D0", shas[0], ""},
		{"0000000", "", ReasonUnknown},
		{"1a2b3c4", "", "ambiguous (matches 1a2b3c4d0000…, 1a2b3c4e00000000000000000000000000000000, 1a2b3c4e00000000000000000000000000000001)"},
		{"1a2b3c4e", "", "ambiguous (matches 1a2b3c4e00000000000000000000000000000000, 1a2b3c4e00000000000000000000000000000001)"},
	} {
		got, err := matchPrefix(c.rev, shas)
		if c.reason == "" {
			if err != nil || got != c.want {
				t.Errorf("matchPrefix(%q) = %q, %v; want %q", c.rev, got, err, c.want)
			}
			continue
		}
		if re := revErr(t, err); re.Reason != c.reason {
			t.Errorf("matchPrefix(%q) reason = %q\nwant %q", c.rev, re.Reason, c.reason)
		}
	}
	// Duplicates count once; many matches are summarised.
	if got, err := matchPrefix("fffffff", []string{shas[3], shas[3]}); err != nil || got != shas[3] {
		t.Errorf("duplicate: %q, %v", got, err)
	}
	var many []string
	for i := range 8 {
		many = append(many, fmt.Sprintf("abcdef0%033d", i))
	}
	_, err := matchPrefix("abcdef0", many)
	if re := revErr(t, err); !re.Ambiguous() || !strings.Contains(re.Reason, "and 3 more") {
		t.Errorf("many matches: %q", re.Reason)
	}
}

func TestResolve(t *testing.T) {
	w := newWorld(t)
	r := w.repo

	for _, c := range []struct{ rev, want string }{
		{"", w.c3},
		{w.c3, w.c3},
		{w.c1, w.c1},
		{w.c2[:7], w.c2},
		{strings.ToUpper(w.c2[:12]), w.c2},
		{strings.ToUpper(w.c1), w.c1},
	} {
		got, err := r.Resolve(c.rev)
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.rev, got, err, c.want)
		}
	}

	// A valid sha1 that is not a commit (the README blob, the tree) is unknown.
	blob := w.git(w.up, "rev-parse", w.c1+":README")
	tree := w.git(w.up, "rev-parse", w.c1+"^{tree}")
	// A submodule's commit is not a commit of this repository.
	for _, rev := range []string{blob, tree, blob[:7], w.sub1, unknownPrefix(t, r)} {
		_, err := r.Resolve(rev)
		if re := revErr(t, err); re.Reason != ReasonUnknown {
			t.Errorf("Resolve(%q) reason = %q, want unknown", rev, re.Reason)
		}
	}

	for rev, reason := range map[string]string{
		"HEAD":                  ReasonNotHex,
		"main":                  ReasonNotHex,
		w.c1[:6]:                ReasonTooShort,
		w.c1 + "0":              ReasonTooLong,
		"../../../../etc/passw": ReasonNotHex,
	} {
		_, err := r.Resolve(rev)
		if re := revErr(t, err); re.Reason != reason {
			t.Errorf("Resolve(%q) reason = %q, want %q", rev, re.Reason, reason)
		}
	}

	// Syntax is checked before the repository is touched.
	var none Repo
	if _, err := none.Resolve("zzzzzzz"); revErr(t, err).Reason != ReasonNotHex {
		t.Errorf("Resolve on no repository: %v", err)
	}
}

// unknownPrefix returns a 7-digit prefix that no object of r has.
func unknownPrefix(t *testing.T, r *Repo) string {
	for i := 0; i < 1000; i++ {
		p := fmt.Sprintf("%07x", 0xdead000+i)
		cands, err := commitsWithPrefix(r.repo.Storer, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cands) == 0 {
			return p
		}
	}
	t.Fatal("no unknown prefix")
	return ""
}

// TestResolveAmbiguousRealObjects finds, by the birthday paradox (about
// 2^14 candidates for 28 bits), two commit objects whose sha1s share their
// first 7 hex digits, writes both into the upstream on branches of their
// own, and checks that after Update the 7-digit prefix is ambiguous while a
// longer one resolves.
func TestResolveAmbiguousRealObjects(t *testing.T) {
	w := newWorld(t)
	tree := w.git(w.up, "rev-parse", "HEAD^{tree}")
	body := func(i int) string {
		return fmt.Sprintf("tree %s\nparent %s\nauthor A <a@example.org> 1700000000 +0000\n"+
			"committer A <a@example.org> 1700000000 +0000\n\ncollision candidate %d\n", tree, w.c3, i)
	}
	sum := func(s string) string {
		h := sha1.Sum([]byte(fmt.Sprintf("commit %d\x00%s", len(s), s)))
		return hex.EncodeToString(h[:])
	}
	seen := map[string]int{}
	var a, b int
	for i := 0; ; i++ {
		if i > 1<<20 {
			t.Fatal("no 7-digit collision in 2^20 candidates")
		}
		p := sum(body(i))[:MinRevLen]
		if j, ok := seen[p]; ok {
			a, b = j, i
			break
		}
		seen[p] = i
	}
	var shas []string
	for n, i := range []int{a, b} {
		cmd := body(i)
		sha := hashObject(t, w.up, cmd)
		if sha != sum(cmd) {
			t.Fatalf("git hash-object = %s, computed %s", sha, sum(cmd))
		}
		w.git(w.up, "update-ref", fmt.Sprintf("refs/heads/collide-%d", n), sha)
		shas = append(shas, sha)
	}
	t.Logf("colliding commits: %s %s", shas[0], shas[1])

	if err := w.repo.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	prefix := shas[0][:MinRevLen]
	_, err := w.repo.Resolve(prefix)
	re := revErr(t, err)
	if !re.Ambiguous() || !strings.Contains(re.Reason, shas[0][:12]) || !strings.Contains(re.Reason, shas[1][:12]) {
		t.Errorf("Resolve(%s) = %v, want ambiguous listing both", prefix, err)
	}
	t.Log(err)
	// The odd-length path (7 digits) and an even one both work.
	n := commonPrefixLen(shas[0], shas[1]) + 1
	for _, sha := range shas {
		for _, l := range []int{n, n + 1} {
			if got, err := w.repo.Resolve(sha[:l]); err != nil || got != sha {
				t.Errorf("Resolve(%s) = %s, %v", sha[:l], got, err)
			}
		}
	}
}

func hashObject(t *testing.T, dir, content string) string {
	t.Helper()
	cmd := gitCmd(dir, "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Stdin = strings.NewReader(content)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git hash-object: %v", err)
	}
	return strings.TrimSpace(string(out))
}
