package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"deploybot/config"
	"deploybot/deployer/build"
	"deploybot/deployer/gitrepo"
)

const buildHelp = `
Makes a new revision of the service's deploy repository: in a fresh
working copy (cloned from upstream), the source submodule (build_submodule)
is moved to the source repository's branch head (build_source_branch) or
to --source-rev, build_command runs at the top of the working copy, and
the result is committed — the message names the new source revision and
lists the source commits since the previous pointer — and pushed to
build_push_url (default: upstream): with --review to build_review_ref
(default refs/for/<branch>), otherwise to the branch (--to, default the
deploy repository's). SSH remotes use deploy.ssh.key_file and
deploy.ssh.known_hosts. With the bot's relay listener configured, the
channel is told.

Exit status: 0 pushed, 1 failed (nothing pushed), 2 bad usage.
`

func runBuild(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "build")
	conf := configFlag(fs)
	rev := fs.String("source-rev", "", "the source `sha1` to move the submodule to (default: the source branch's head)")
	review := fs.Bool("review", false, "push for review, to build_review_ref (default refs/for/<branch>)")
	to := fs.String("to", "", "the `branch` to push to without --review (default: the deploy repository's)")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), buildHelp) }
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 || (*review && *to != "") {
		fs.Usage()
		return exitUsage
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "deploybot build: "+format+"\n", args...)
		return exitFailed
	}
	if err := gitrepo.ValidateRev(*rev); err != nil {
		return fail("%v", err)
	}
	cfg, ok := loadConfig(e, *conf)
	if !ok {
		return exitFailed
	}
	s, ok := cfg.Service(pos[0])
	if !ok {
		return fail("unknown service %q (configured: %s)", pos[0], strings.Join(cfg.ServiceNames(), ", "))
	}
	dir, err := os.MkdirTemp("", "deploybot-build-"+s.Name+"-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	who := operator()
	opts := build.Options{
		Service: s.Name, Upstream: s.Upstream, PushURL: s.BuildPushURL, Branch: s.Branch,
		Submodule: s.BuildSubmodule, SourceBranch: s.BuildSourceBranch, SourceRev: *rev,
		Command: s.BuildCommand, Timeout: s.BuildTimeout.D(), Dir: dir, Output: e.stderr,
		Author: object.Signature{Name: who, Email: who + "@deploybot", When: time.Now()},
	}
	switch {
	case *review && s.BuildReviewRef != "":
		opts.Ref = s.BuildReviewRef
	case *review:
		opts.Ref = "refs/for/<branch>"
	case *to != "":
		opts.Ref = "refs/heads/" + *to
	}
	if opts.Auth, err = sshAuth(cfg, opts.PushURL, s.Upstream); err != nil {
		return fail("%v", err)
	}
	res, err := build.Run(ctx, opts)
	if errors.Is(err, build.ErrNothingToBuild) {
		fmt.Fprintf(e.stdout, "%s: %v\n", s.Name, err)
		return exitOK
	}
	if err != nil {
		return fail("%s: %v. Nothing was pushed.", s.Name, err)
	}
	pushURL := res.PushURL
	fmt.Fprintf(e.stdout, "commit %s\npushed to %s %s\n\n%s", res.Commit, config.RedactURL(pushURL), res.Ref, res.Message)
	tellChannel(cfg, e, buildLine(who, s.Name, res))
	return exitOK
}

// buildLine is what the channel is told of a build.
func buildLine(who, service string, res *build.Result) string {
	kind := "pushed to " + res.Ref
	if strings.HasPrefix(res.Ref, "refs/for/") {
		kind = "sent for review (" + res.Ref + ")"
	}
	from := "nothing"
	if res.From != "" {
		from = res.From[:7]
	}
	return fmt.Sprintf("%s built %s: deploy repository commit %s moves the source %s..%s (%d commit(s)), %s",
		who, service, res.Commit[:7], from, res.To[:7], len(res.Commits)+res.More, kind)
}

// tellChannel says line in the channel through the running bot's relay
// listener, when one is configured.
func tellChannel(cfg *config.Config, e *env, line string) {
	if cfg.IRC.RelayListen == "" {
		return
	}
	c := &relayClient{addr: cfg.IRC.RelayListen, stderr: e.stderr}
	c.say(line)
	c.close()
}

// sshAuth is go-git's authentication for the SSH remotes of a build:
// deploy.ssh.key_file, host keys checked against deploy.ssh.known_hosts,
// as the user of the first SSH URL among urls (else deploy.ssh.user).
// nil when no key is configured.
func sshAuth(cfg *config.Config, urls ...string) (transport.AuthMethod, error) {
	ssh := cfg.Deploy.SSH
	if ssh.KeyFile == "" || ssh.KnownHosts == "" {
		return nil, nil
	}
	user := ssh.User
	for _, u := range urls {
		if ep, err := transport.NewEndpoint(u); u != "" && err == nil && ep.Protocol == "ssh" && ep.User != "" {
			user = ep.User
			break
		}
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, ssh.KeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("deploy.ssh.key_file: %v", err)
	}
	cb, err := knownhosts.New(ssh.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("deploy.ssh.known_hosts: %v", err)
	}
	keys.HostKeyCallback = cb
	return keys, nil
}
