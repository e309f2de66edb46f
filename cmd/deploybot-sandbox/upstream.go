package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildService builds the demo service, e2e/testdata/svc, into bin
// (mode 0755: the fleet's user runs it).
func buildService(ctx context.Context, bin string) error {
	gobin := os.Getenv("GO")
	if gobin == "" {
		gobin = "go"
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "deploybot/e2e/testdata/svc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the demo service (%s): %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return os.Chmod(bin, 0o755)
}

// restartScript is the demo service's restart.sh, committed in the
// upstream: deploybot runs it on each host, in the revision's directory,
// once the revision is current (and again on a rollback). It stops the
// previous instance by its pid file and starts this revision's.
const restartScript = `#!/bin/sh
# Restarts the demo service on this host: stops the previous instance, then
# starts this revision's (the current directory) on 127.0.0.1:%[2]d. deploybot
# runs it in the revision's directory with DEPLOY_REV set.
svc=%[1]s
state=%[3]s
if [ -f "$state/svc.pid" ]; then
  old=$(cat "$state/svc.pid")
  kill "$old" 2>/dev/null && while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
fi
nohup "$svc" -addr 127.0.0.1:%[2]d -dir "$PWD" >"$state/svc.log" 2>&1 </dev/null &
echo $! >"$state/svc.pid"
echo "started $(cat VERSION) (health $(cat health_status)) as pid $!"
`

// upstream is the demo service's upstream repository.
type upstream struct {
	dir               string
	v1, v2, bad       string // sha1s
	badBranch         string
	svcBin, targetDir string
	port              int
	gitName, gitEmail string
}

// git runs git in the upstream with a fixed identity and no user or
// system configuration, and returns its trimmed output.
func (u *upstream) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+u.dir,
		"GIT_AUTHOR_NAME="+u.gitName, "GIT_AUTHOR_EMAIL="+u.gitEmail,
		"GIT_COMMITTER_NAME="+u.gitName, "GIT_COMMITTER_EMAIL="+u.gitEmail)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// commit writes VERSION and health_status and commits them with msg.
func (u *upstream) commit(ctx context.Context, version string, status int, msg string) (string, error) {
	for name, content := range map[string]string{"VERSION": version + "\n", "health_status": fmt.Sprintf("%d\n", status)} {
		if err := os.WriteFile(filepath.Join(u.dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := u.git(ctx, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := u.git(ctx, "commit", "-q", "-m", msg); err != nil {
		return "", err
	}
	return u.git(ctx, "rev-parse", "HEAD")
}

// create makes the upstream from scratch: on main, v1 and v2 (healthy);
// on the branch "bad", v3 whose health check answers 500. The deploy
// repository follows main and fetches every branch, so the bad revision
// can be deployed by its sha1.
func (u *upstream) create(ctx context.Context) error {
	if err := os.RemoveAll(u.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(u.dir, 0o755); err != nil {
		return err
	}
	if _, err := u.git(ctx, "-c", "init.defaultBranch=main", "init", "-q"); err != nil {
		return err
	}
	// So that the commands the sandbox prints work as they are.
	for k, v := range map[string]string{"user.name": u.gitName, "user.email": u.gitEmail} {
		if _, err := u.git(ctx, "config", k, v); err != nil {
			return err
		}
	}
	script := fmt.Sprintf(restartScript, shellQuote(u.svcBin), u.port, shellQuote(filepath.Dir(u.targetDir)))
	if err := os.WriteFile(filepath.Join(u.dir, "restart.sh"), []byte(script), 0o755); err != nil {
		return err
	}
	var err error
	if u.v1, err = u.commit(ctx, "v1", 200, "demo v1: first release"); err != nil {
		return err
	}
	if u.v2, err = u.commit(ctx, "v2", 200, "demo v2: faster startup (T12345)"); err != nil {
		return err
	}
	u.badBranch = "bad"
	if _, err := u.git(ctx, "checkout", "-q", "-b", u.badBranch); err != nil {
		return err
	}
	if u.bad, err = u.commit(ctx, "v3", 500, "demo v3: a release whose health check fails"); err != nil {
		return err
	}
	_, err = u.git(ctx, "checkout", "-q", "main")
	return err
}
