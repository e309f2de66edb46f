package gitrepo

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// This file decides which submodule URLs the deployment host may fetch.
// A .gitmodules file is written by whoever can merge into the upstream;
// without a policy, an absolute local path in it would make go-git copy any
// repository the bot's user can read into .git/modules/, from where the git
// server hands it to anyone (the class of CVE-2022-39253).

// urlPolicy says which submodule URLs may be fetched.
type urlPolicy struct {
	// allow are the patterns of Options.SubmoduleURLs.
	allow []string
	// localBase is the directory holding the top upstream when that is
	// local (a path or file:// URL), "" otherwise: a relative URL resolved
	// against a local upstream must stay under it.
	localBase string
}

func newURLPolicy(upstream string, allow []string) urlPolicy {
	p := urlPolicy{allow: allow}
	if lp, ok := localPath(upstream); ok {
		p.localBase = filepath.Dir(filepath.Clean(lp))
	}
	return p
}

// localPath returns the path of u when u names a repository on this
// machine: a plain path or a file:// URL.
func localPath(u string) (string, bool) {
	ep, err := transport.NewEndpoint(u)
	if err != nil {
		return "", false
	}
	if ep.Protocol != "file" {
		return "", false
	}
	return ep.Path, true
}

// isRelativeURL reports whether a .gitmodules URL is relative to the
// superproject's URL, as git reads it.
func isRelativeURL(u string) bool {
	return strings.HasPrefix(u, "./") || strings.HasPrefix(u, "../")
}

// check says why the submodule URL raw (as written in .gitmodules),
// resolved to resolved, may not be fetched; "" when it may.
//
//   - A relative URL is allowed: it names a repository next to the
//     superproject on the same server. Resolved against a local upstream it
//     must stay under the directory holding the top upstream (or match an
//     allowed pattern).
//   - Any other URL must match one of the allowed patterns. A local path or
//     file:// URL matches only a pattern that is itself a local path or
//     file:// URL, so that a broad pattern never lets a local path in.
func (p urlPolicy) check(raw, resolved string) string {
	if hasDotSegment(resolved) {
		return "it has '.' or '..' path segments"
	}
	lp, local := localPath(resolved)
	if isRelativeURL(raw) {
		if !local {
			return ""
		}
		if p.localBase != "" && within(p.localBase, lp) {
			return ""
		}
		if p.matches(resolved, true) {
			return ""
		}
		return fmt.Sprintf("relative URL resolves to the local path %s, outside %s", lp, p.localBase)
	}
	if p.matches(resolved, local) {
		return ""
	}
	if len(p.allow) == 0 {
		return "only relative submodule URLs are allowed; list it in the service's submodule_urls to allow it"
	}
	if local {
		return "a local path is allowed only when a submodule_urls pattern that is a local path or file:// URL matches it"
	}
	return "it matches no pattern of the service's submodule_urls"
}

func (p urlPolicy) matches(u string, local bool) bool {
	for _, pat := range p.allow {
		if isLocalPattern(pat) != local {
			continue
		}
		if MatchURL(pat, u) {
			return true
		}
	}
	return false
}

// isLocalPattern reports whether a submodule_urls pattern names local
// repositories: an absolute path or a file:// URL.
func isLocalPattern(pat string) bool {
	return strings.HasPrefix(pat, "/") || strings.HasPrefix(pat, "file://")
}

// MatchURL reports whether the URL u matches the submodule_urls pattern
// pat. A pattern with a '*' or '?' is a glob over the whole URL: '*'
// matches any run of characters, '/' included, and '?' any one character.
// A pattern without them is a prefix: u matches when it starts with pat.
func MatchURL(pat, u string) bool {
	if !strings.ContainsAny(pat, "*?") {
		return strings.HasPrefix(u, pat)
	}
	return globMatch(pat, u)
}

// globMatch matches s against pat, where '*' is any run of bytes and '?'
// any one byte (iterative, with backtracking to the last '*').
func globMatch(pat, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == s[si]):
			pi++
			si++
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// hasDotSegment reports whether u has a "." or ".." path segment, which
// would let a prefix or glob match a URL that leaves it.
func hasDotSegment(u string) bool {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	for _, seg := range strings.FieldsFunc(u, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// within reports whether p is base or under it.
func within(base, p string) bool {
	rel, err := filepath.Rel(base, filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !path.IsAbs(rel)
}
