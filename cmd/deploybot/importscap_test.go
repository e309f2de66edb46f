package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer/scap"
)

// The rest of a configuration, for the services import-scap prints.
const importScapFrame = `irc:
  server: 127.0.0.1:6667
  nick: deploybot
  channels: ["#ops"]
sal:
  database: sal.db
deploy:
  ssh: {user: deploy-service, key_file: id_ed25519, known_hosts: known_hosts}
`

// What import-scap prints is a valid service that loads back as exactly
// the service scap.Settings.Apply makes (with config's defaults for the
// rest), and says what was not carried over.
func TestImportScapLoadsBack(t *testing.T) {
	const upstream = "https://gerrit.example.org/r/svc/deploy"
	tests := []struct {
		repo, env, name string
		wantName        string
		wantComments    []string
	}{
		{"simple", "", "", "mockbase", []string{"ssh_user", "git_repo_user"}},
		{"fleet", "", "", "citoid", []string{"checks.warmup", "checks.canary_only", "tags_to_keep", "eqiad_group_size", `Scap3 ignores ":2222"`}},
		{"fleet", "beta", "citoid-beta", "citoid-beta", []string{"canary_dsh_targets", "(environment beta)"}},
		{"configs", "", "", "eventgate", []string{"checks.endpoints: an NRPE check", "git_fat", "[deploy1001.eqiad.wmnet]", "config_files./etc/eventgate/config.yaml"}},
		{"configs", "staging", "", "eventgate", []string{"banner.txt.owner", "[config_files]"}},
	}
	for _, tt := range tests {
		t.Run(tt.repo+"/"+tt.env, func(t *testing.T) {
			dir := filepath.Join("..", "..", "deployer", "scap", "testdata", tt.repo)
			args := []string{"import-scap", dir, "-upstream", upstream}
			if tt.env != "" {
				args = append(args, "-environment", tt.env)
			}
			if tt.name != "" {
				args = append(args, "-name", tt.name)
			}
			code, out, errOut := runCLI(t, args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			for _, c := range tt.wantComments {
				if !strings.Contains(commentText(out), c) {
					t.Errorf("the comments do not mention %q:\n%s", c, out)
				}
			}

			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(importScapFrame+out), 0o600); err != nil {
				t.Fatal(err)
			}
			code, sum, errOut := runCLI(t, "check-config", "-c", path)
			if code != exitOK {
				t.Fatalf("check-config: exit %d\n%s\nof\n%s", code, errOut, out)
			}
			if !strings.Contains(sum, "services: 1\n  "+tt.wantName+":") {
				t.Errorf("check-config summary:\n%s", sum)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := cfg.Service(tt.wantName)
			if !ok {
				t.Fatalf("no service %s in %v", tt.wantName, cfg.ServiceNames())
			}

			s, err := scap.Load(os.DirFS(dir), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := config.Service{Name: tt.wantName, Upstream: upstream}
			if _, err := s.Apply(&want); err != nil {
				t.Fatal(err)
			}
			want.PromptTimeout = config.Duration(10 * time.Minute) // config's defaults
			want.BuildTimeout = config.Duration(10 * time.Minute)
			if want.Port == 0 {
				// Without a port, port_timeout means nothing and is not printed.
				want.PortTimeout = config.Duration(30 * time.Second)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("loaded back:\n%+v\nwant\n%+v\nfrom\n%s", *got, want, out)
			}
		})
	}
}

// commentText joins the comment lines, unwrapped.
func commentText(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "#"); ok {
			b.WriteString(strings.TrimSpace(rest))
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func TestImportScapOrigin(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../deployer/scap/testdata/simple")); err != nil {
		t.Fatal(err)
	}
	// Without a repository, no upstream.
	code, _, errOut := runCLI(t, "import-scap", dir)
	if code != exitFailed || !strings.Contains(errOut, "-upstream") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", "https://gerrit.example.org/r/mockbase/deploy"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	code, out, errOut := runCLI(t, "import-scap", dir)
	if code != exitOK || !strings.Contains(out, "\n    upstream: https://gerrit.example.org/r/mockbase/deploy\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestImportScapErrors(t *testing.T) {
	code, _, errOut := runCLI(t, "import-scap")
	if code != exitUsage || !strings.Contains(errOut, "Usage: deploybot import-scap") {
		t.Errorf("no directory: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "import-scap", t.TempDir(), "-upstream", "x")
	if code != exitFailed || !strings.Contains(errOut, "scap/scap.cfg: cannot read") {
		t.Errorf("no scap.cfg: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "import-scap", "../../deployer/scap/testdata/fleet", "-environment", "nope", "-upstream", "x")
	if code != exitFailed || !strings.Contains(errOut, `environment "nope" does not exist`) {
		t.Errorf("bad environment: exit %d\n%s", code, errOut)
	}
}
