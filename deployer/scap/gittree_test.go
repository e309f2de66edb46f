package scap

import (
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/go-git/go-git/v5"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
)

// A deploy repository read at a revision (gitrepo.TreeFS) gives what its
// working copy gives.
func TestLoadFromGitTree(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	for _, c := range []struct{ repo, env string }{{"fleet", "beta"}, {"configs", "staging"}} {
		t.Run(c.repo, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS("testdata/"+c.repo)); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "deploy repository"}} {
				cmd := exec.Command("git", args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
					"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.org", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.org")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			repo, err := git.PlainOpen(dir)
			if err != nil {
				t.Fatal(err)
			}
			head, err := repo.Head()
			if err != nil {
				t.Fatal(err)
			}
			commit, err := repo.CommitObject(head.Hash())
			if err != nil {
				t.Fatal(err)
			}
			tree, err := commit.Tree()
			if err != nil {
				t.Fatal(err)
			}
			apply := func(s *Settings) (config.Service, []Unsupported) {
				var svc config.Service
				un, err := s.Apply(&svc)
				if err != nil {
					t.Fatal(err)
				}
				return svc, un
			}
			fromTree, err := Load(gitrepo.TreeFS(tree), c.env)
			if err != nil {
				t.Fatal(err)
			}
			fromDir, err := Load(os.DirFS("testdata/"+c.repo), c.env)
			if err != nil {
				t.Fatal(err)
			}
			s1, u1 := apply(fromTree)
			s2, u2 := apply(fromDir)
			if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(u1, u2) {
				t.Errorf("from the tree:\n%+v\n%v\nfrom the directory:\n%+v\n%v", s1, u1, s2, u2)
			}
			if !reflect.DeepEqual(fromTree.ConfigFiles, fromDir.ConfigFiles) || !reflect.DeepEqual(fromTree.Vars, fromDir.Vars) {
				t.Errorf("config files or vars differ")
			}
		})
	}
}
