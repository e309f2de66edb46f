package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"deploybot/config"
)

// Scap3 habits: a command run inside a service's deploy repository
// (<deploy.deploy_dir>/<repo>, or any directory below it) takes that
// service when none is named, and the binary run as "deploy" or
// "deploy-log" (install-aliases) is that subcommand.

// serviceAt returns the service whose deploy repository holds dir, or ""
// when dir is in none. Paths are compared with their symlinks resolved;
// the deepest repository wins when one lies inside another.
func serviceAt(cfg *config.Config, dir string) string {
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ""
	}
	best, bestLen := "", -1
	for _, name := range cfg.ServiceNames() {
		s, _ := cfg.Service(name)
		repo, err := filepath.EvalSymlinks(filepath.Join(cfg.Deploy.DeployDir, filepath.FromSlash(s.Repo)))
		if err != nil {
			continue
		}
		if (d == repo || strings.HasPrefix(d, repo+string(filepath.Separator))) && len(repo) > bestLen {
			best, bestLen = name, len(repo)
		}
	}
	return best
}

// serviceHere is the service of the current directory, or "".
func serviceHere(cfg *config.Config) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return serviceAt(cfg, wd)
}

// needServiceHere loads the configuration and returns the service of the
// current directory, or, when there is none, prints why (for cmd) and
// returns the exit code to stop with.
func needServiceHere(e *env, cmd, conf string) (string, int) {
	cfg, ok := loadConfig(e, conf)
	if !ok {
		return "", exitFailed
	}
	if s := serviceHere(cfg); s != "" {
		return s, -1
	}
	fmt.Fprintf(e.stderr, "deploybot %s: name the service, or run it inside a service's deploy repository (%s/<repo>)\n", cmd, cfg.Deploy.DeployDir)
	return "", exitUsage
}

// aliases are the names the binary answers to as a subcommand.
var aliases = []string{"deploy", "deploy-log"}

// aliasArgs returns the arguments to run for a binary called as argv0: a
// subcommand named by the binary's name ("deploy", "deploy-log") comes
// first; otherwise args as they are.
func aliasArgs(argv0 string, args []string) []string {
	base := filepath.Base(argv0)
	for _, a := range aliases {
		if base == a {
			return append([]string{a}, args...)
		}
	}
	return args
}

const installAliasesHelp = `
Creates the commands "deploy" and "deploy-log" in dir (default
/usr/local/bin): symbolic links to this binary, which runs the subcommand
of the name it is called by. With them, as with Scap3:

  cd /srv/deployment/citoid/deploy && deploy -m "Fix T12345"
  deploy-log --latest

An existing file of that name is left alone unless it already links here,
or -force is given.
`

func runInstallAliases(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "install-aliases")
	force := fs.Bool("force", false, "replace existing files of those names")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), installAliasesHelp) }
	dir, given, code := parseOptionalArg(fs, args)
	if code >= 0 {
		return code
	}
	if !given {
		dir = "/usr/local/bin"
	}
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot install-aliases: where is this binary? %v\n", err)
		return exitFailed
	}
	failed := false
	for _, a := range aliases {
		if err := installAlias(filepath.Join(dir, a), self, *force); err != nil {
			fmt.Fprintf(e.stderr, "deploybot install-aliases: %v\n", err)
			failed = true
			continue
		}
		fmt.Fprintf(e.stdout, "%s -> %s\n", filepath.Join(dir, a), self)
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// installAlias makes path a symbolic link to target.
func installAlias(path, target string, force bool) error {
	if old, err := os.Readlink(path); err == nil && old == target {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		if !force {
			return fmt.Errorf("%s exists (and is not a link to %s): -force replaces it", path, target)
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Symlink(target, path)
}
