package e2e

import (
	"deploybot/e2e/harness"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestScapBuild: deploybot build moves the deploy repository's source
// submodule to the source's new head, runs build_command, pushes the
// commit for review to refs/for/main of a bare repository over SSH (a
// fleet host's sshd), and tells the channel; once the change is merged,
// !deploy deploys it.
func TestScapBuild(t *testing.T) {
	e := newScapEnv(t, "simple", 2)
	git := func(dir string, args ...string) string {
		return harness.Git(t, dir, append([]string{"-c", "safe.directory=*", "-c", "protocol.file.allow=always"}, args...)...)
	}

	// The source repository, and the deploy repository with it as its
	// submodule src, published in a bare repository the fleet's user owns.
	src := filepath.Join(e.dir, "src.git")
	srcWork := filepath.Join(e.dir, "src-work")
	write(t, filepath.Join(srcWork, "app.txt"), "app v1\n", 0o644)
	git(srcWork, "-c", "init.defaultBranch=main", "init", "-q")
	git(srcWork, "add", "-A")
	git(srcWork, "commit", "-q", "-m", "app v1")
	git(e.dir, "clone", "-q", "--bare", srcWork, src)
	f, err := os.OpenFile(filepath.Join(e.upstream, "scap", "scap.cfg"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "git_submodules: True")
	f.Close()
	git(e.upstream, "submodule", "add", "-q", "../src.git", "src")
	git(e.upstream, "commit", "-q", "-a", "-m", "the source as a submodule")
	bare := filepath.Join(e.dir, "deploy.git")
	git(e.dir, "clone", "-q", "--bare", e.upstream, bare)
	u, err := user.Lookup(e.fleet.User)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, bare).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	before := git(bare, "rev-parse", "main")

	// The source gets two commits.
	write(t, filepath.Join(srcWork, "app.txt"), "app v2\n", 0o644)
	git(srcWork, "commit", "-q", "-a", "-m", "app v2: a feature")
	write(t, filepath.Join(srcWork, "app.txt"), "app v3\n", 0o644)
	git(srcWork, "commit", "-q", "-a", "-m", "app v3: a fix")
	git(srcWork, "push", "-q", src, "main")
	head := git(src, "rev-parse", "main")

	pushURL := fmt.Sprintf("ssh://%s@%s%s", e.fleet.User, e.fleet.Hosts[0].IP, bare)
	conf := e.config("build.yaml", fmt.Sprintf(scapServiceBlock, bare,
		"    build_command: '{ cat src/app.txt; echo \"built for $DEPLOY_SOURCE_REV\"; } > app-built.txt'\n"+
			"    build_push_url: "+pushURL+"\n", yamlDuration(60*time.Second)))
	alice, _ := e.startIRC(conf)

	code, out, errOut := e.cli(conf, "", "build", "svc", "--review")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^commit ([0-9a-f]{40})\npushed to (\S+) refs/for/main$`).FindStringSubmatch(out)
	if m == nil || m[2] != pushURL {
		t.Fatalf("build printed:\n%s", out)
	}
	commit := m[1]
	line := expectBot(t, alice, "deploybot", "built svc", scapLong())
	if !strings.Contains(line, commit[:7]) || !strings.Contains(line, "refs/for/main") || !strings.Contains(line, head[:7]) {
		t.Errorf("channel line %q", line)
	}

	// What was pushed: refs/for/main, on top of main, with the pointer,
	// the build's output and the message.
	if got := git(bare, "rev-parse", "refs/for/main"); got != commit {
		t.Fatalf("refs/for/main = %s, want %s", got, commit)
	}
	if got := git(bare, "rev-parse", "main"); got != before {
		t.Errorf("main moved to %s: a review push must not move it", got)
	}
	if got := git(bare, "rev-parse", commit+"^"); got != before {
		t.Errorf("the build's parent is %s, want main %s", got, before)
	}
	if got := git(bare, "ls-tree", commit, "src"); !strings.HasPrefix(got, "160000 commit "+head+"\t") {
		t.Errorf("src in the build: %q, want the gitlink to %s", got, head)
	}
	if got := git(bare, "show", commit+":app-built.txt"); got != "app v3\nbuilt for "+head {
		t.Errorf("app-built.txt = %q", got)
	}
	msg := git(bare, "log", "-1", "--format=%B", commit)
	for _, want := range []string{"Update svc to " + head[:7], "app v3: a fix", "app v2: a feature"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "app v1") {
		t.Errorf("message lists a commit before the previous pointer:\n%s", msg)
	}

	// Merged (as a review's submit would), then deployed from IRC.
	git(bare, "update-ref", "refs/heads/main", commit, before)
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, "deploybot", "alice: Finished deploy [svc@"+commit[:7]+"]", scapLong())
	for i := range e.fleet.Hosts {
		if got := e.hostExec(i, "cat "+targetDir+"/src/app.txt "+targetDir+"/app-built.txt"); got != "app v3\napp v3\nbuilt for "+head {
			t.Errorf("host %d runs %q", i, got)
		}
	}
}
