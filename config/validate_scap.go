package config

import (
	"path"
	"strings"
)

// scapKeys are the service keys that scap: true reads from the deploy
// repository's scap/ directory instead.
var scapKeys = []string{"target_dir", "restart", "port", "port_timeout", "keep_revs", "checks", "canary", "groups", "config_files"}

// checkScap checks scap: and environment:.
func (c *checker) checkScap(p string, s *Service) {
	if !s.Scap {
		if s.Environment != "" {
			c.errf(p+".environment", "only with scap: true (it names a directory of scap/environments in the deploy repository)")
		}
		return
	}
	for _, k := range scapKeys {
		if c.has(p + "." + k) {
			c.errf(p+"."+k, "with scap: true this is read from the deploy repository's scap/ directory at each deploy: remove it here (or set scap: false)")
		}
	}
	if e := s.Environment; e != "" && (strings.ContainsAny(e, "/\\\x00") || e == "." || e == ".." || hasSpaceOrControl(e)) {
		c.errf(p+".environment", "invalid environment %q: want the name of a directory under scap/environments", e)
	}
}

// cleanRepoPath reports whether p is a clean relative path inside a
// repository.
func cleanRepoPath(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsAny(p, "\x00\n\r")
}

// checkConfigFiles checks config_files.
func (c *checker) checkConfigFiles(p string, files []ConfigFile) {
	seen := map[string]string{}
	for i, f := range files {
		fp := index(p+".config_files", i)
		switch {
		case f.Path == "":
			c.required(fp+".path", "where the file goes: an absolute path, or one relative to the revision")
		case strings.ContainsAny(f.Path, "\x00\n\r") || path.Clean(f.Path) != f.Path || f.Path == "/" || f.Path == "." ||
			f.Path == ".." || strings.HasPrefix(f.Path, "../") || (!path.IsAbs(f.Path) && strings.HasPrefix(f.Path, ".git/")) || f.Path == ".git":
			c.errf(fp+".path", "invalid path %q: want a clean absolute path, or a clean path inside the revision (not in .git)", f.Path)
		default:
			if first, dup := seen[f.Path]; dup {
				c.errf(fp+".path", "%s is already rendered by %s", f.Path, first)
			}
			seen[f.Path] = fp
		}
		if f.Template == "" {
			c.required(fp+".template", "the template's path in the deploy repository, such as scap/templates/config.yaml.j2")
		} else if !cleanRepoPath(f.Template) {
			c.errf(fp+".template", "invalid template %q: want a clean path in the deploy repository", f.Template)
		}
		for j, v := range f.Vars {
			if !cleanRepoPath(v) {
				c.errf(index(fp+".vars", j), "invalid vars file %q: want a clean path in the deploy repository", v)
			}
		}
		if f.OutputFormat != "" && f.OutputFormat != "yaml" {
			c.errf(fp+".output_format", "invalid output_format %q: want yaml, or leave it out", f.OutputFormat)
		}
	}
}

// checkBuild checks the build_* keys.
func (c *checker) checkBuild(p string, s *Service) {
	if strings.ContainsRune(s.BuildCommand, 0) {
		c.errf(p+".build_command", "must not contain NUL bytes")
	}
	if s.BuildSubmodule != "" && !cleanRepoPath(s.BuildSubmodule) {
		c.errf(p+".build_submodule", "invalid path %q: want the submodule's clean path in the deploy repository, such as src", s.BuildSubmodule)
	}
	if s.BuildSourceBranch != "" && refProblem(s.BuildSourceBranch) {
		c.errf(p+".build_source_branch", "invalid branch %q: want a git branch name such as main", s.BuildSourceBranch)
	}
	if r := s.BuildReviewRef; r != "" && (!strings.HasPrefix(r, "refs/") || refProblem(strings.TrimPrefix(r, "refs/"))) {
		c.errf(p+".build_review_ref", "invalid ref %q: want a full ref such as refs/for/main", r)
	}
	if s.BuildPushURL != "" {
		if why := upstreamProblem(s.BuildPushURL); why != "" {
			c.errf(p+".build_push_url", "invalid URL %q: %s", s.BuildPushURL, why)
		}
	}
	if c.has(p+".build_timeout") && s.BuildTimeout <= 0 {
		c.errf(p+".build_timeout", "must be more than 0")
	}
}
