package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// allScripts returns every script the package generates for t.
func allScripts(t *testing.T, tg Target) map[string]string {
	t.Helper()
	sha := strings.Repeat("ab", 20)
	out := map[string]string{}
	for _, force := range []bool{false, true} {
		s, err := tg.DeployScript(sha, force)
		if err != nil {
			t.Fatalf("DeployScript: %v", err)
		}
		out["deploy force="+map[bool]string{false: "0", true: "1"}[force]] = s
	}
	var err error
	if out["finalize"], err = tg.FinalizeScript(sha); err != nil {
		t.Fatal(err)
	}
	if out["rollback"], err = tg.RollbackScript(); err != nil {
		t.Fatal(err)
	}
	if out["status"], err = tg.StatusScript(); err != nil {
		t.Fatal(err)
	}
	if out["check"], err = tg.CheckScript("curl -s localhost | grep -q 'ok'"); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScriptsSyntax: every generated script parses (sh -n), also with
// hostile-looking but valid values, and the command line sent to sshd
// parses too.
func TestScriptsSyntax(t *testing.T) {
	targets := map[string]Target{
		"plain":          testTarget("/srv/deployment/svc/deploy", "http://10.0.0.1:8081"),
		"odd dir":        testTarget("/srv/it's a $(touch PWNED) `x`/deploy", "https://deploy.example.org/git"),
		"no restart":     {Dir: "/srv/x", ServeURL: "http://h", Repo: "x"},
		"multiline":      {Dir: "/srv/x", ServeURL: "http://h", Repo: "x", Restart: "if true; then\n  echo 'it''s' \"$DEPLOY_REV\"\nfi"},
		"broken restart": {Dir: "/srv/x", ServeURL: "http://h", Repo: "x", Restart: "echo 'unbalanced"},
		"submodules":     {Dir: "/srv/x", ServeURL: "http://h", Repo: "a/b", Submodules: []string{"lib", "vendor/dep", "x.y-z_1"}},
	}
	for name, tg := range targets {
		for kind, script := range allScripts(t, tg) {
			for _, s := range []string{script, runHeader + script} {
				cmd := exec.Command("/bin/sh", "-n")
				cmd.Stdin = strings.NewReader(s)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s/%s: sh -n: %v: %s\n%s", name, kind, err, out, s)
				}
			}
			if out, err := exec.Command("/bin/sh", "-n", "-c", wrapScript(script)).CombinedOutput(); err != nil {
				t.Errorf("%s/%s: wrapped: sh -n: %v: %s", name, kind, err, out)
			}
		}
	}
	// The operator's restart command is a quoted prelude value, evaluated
	// from its variable, never spliced: a broken one cannot break the
	// script around it.
	s, _ := targets["broken restart"].DeployScript(strings.Repeat("ab", 20), false)
	if !strings.Contains(s, "\nDEPLOY_RESTART='echo '\\''unbalanced'\n") || !strings.Contains(s, `deploybot-restart "$DEPLOY_RESTART")`) ||
		strings.Count(s, "unbalanced") != 1 {
		t.Errorf("restart command not passed in the prelude:\n%s", s)
	}
}

// TestParseStages parses sample deploy output: markers, output glued to a
// marker, a missing end (killed), a noop.
func TestParseStages(t *testing.T) {
	out := "##deploybot pid 4242\n" +
		"##deploybot begin fetch\n" +
		"fetching\n" +
		"##deploybot end fetch 0 120\n" +
		"##deploybot begin checkout\n" +
		"line 1\nno newline at the end" + "##deploybot end checkout 0 1530\n" +
		"##deploybot begin promote\n" +
		"##deploybot end promote 0 0\n" +
		"##deploybot begin restart\n" +
		"Job for svc.service failed.\n" +
		"##deploybot end restart 3 2010\n"
	stages, noop := ParseStages(out)
	if noop {
		t.Error("noop")
	}
	want := []StageResult{
		{Stage: "fetch", ExitCode: 0, Duration: 120 * time.Millisecond, Output: "fetching\n"},
		{Stage: "checkout", ExitCode: 0, Duration: 1530 * time.Millisecond, Output: "line 1\nno newline at the end"},
		{Stage: "promote", ExitCode: 0, Duration: 0},
		{Stage: "restart", ExitCode: 3, Duration: 2010 * time.Millisecond, Output: "Job for svc.service failed.\n"},
	}
	if len(stages) != len(want) {
		t.Fatalf("got %d stages: %+v", len(stages), stages)
	}
	for i := range want {
		if stages[i] != want[i] {
			t.Errorf("stage %d = %+v, want %+v", i, stages[i], want[i])
		}
	}

	// Killed during checkout: the open stage is reported with -1.
	stages, _ = ParseStages("##deploybot begin fetch\n##deploybot end fetch 0 5\n##deploybot begin checkout\npartial")
	if len(stages) != 2 || stages[1].Stage != "checkout" || stages[1].ExitCode != -1 || stages[1].Output != "partial" {
		t.Errorf("killed: %+v", stages)
	}

	// No-op.
	stages, noop = ParseStages("##deploybot pid 1\n##deploybot noop " + strings.Repeat("a", 40) + "\n")
	if !noop || len(stages) != 0 {
		t.Errorf("noop: %v %+v", noop, stages)
	}

	// Output tail is bounded, and the parser copes with output split
	// anywhere, markers included.
	p := newParser()
	big := "##deploybot pid 77\n##deploybot begin fetch\n" + strings.Repeat("0123456789\n", 2000) + "tail\n##deploybot end fetch 1 7\n"
	for i := 0; i < len(big); i += 7 {
		p.Write([]byte(big[i:min(i+7, len(big))]))
	}
	stages, all, _, pid := p.result()
	if pid != 77 || len(stages) != 1 || stages[0].ExitCode != 1 || len(stages[0].Output) > OutputTail ||
		!strings.HasSuffix(stages[0].Output, "789\ntail\n") || len(all) > OutputTail || strings.Contains(all, "##deploybot") {
		t.Errorf("split/tail: pid %d, %d stages, stage output %d bytes, all %d bytes", pid, len(stages), len(stages[0].Output), len(all))
	}
}

func TestTailAndHead(t *testing.T) {
	s := strings.Repeat("é", 10) // 2 bytes each
	if got := tailString(s, 5); got != "éé" {
		t.Errorf("tailString = %q", got)
	}
	if got := headString(s, 5); got != "éé" {
		t.Errorf("headString = %q", got)
	}
	if got := headString("ab\xffcd", 10); got != "ab\uFFFDcd" {
		t.Errorf("headString invalid = %q", got)
	}
}

// local runs generated scripts with /bin/sh on this machine, as a target
// would (same prelude), for fast tests of the scripts' logic.
type local struct {
	t  *testing.T
	tg Target
}

func (l local) run(script string) (out string, code int) {
	l.t.Helper()
	b, err := runLocal(runHeader + script)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		l.t.Fatal(err)
	}
	return string(b), code
}

func (l local) deploy(sha string, force bool) ([]StageResult, bool, int, string) {
	l.t.Helper()
	s, err := l.tg.DeployScript(sha, force)
	if err != nil {
		l.t.Fatal(err)
	}
	out, code := l.run(s)
	stages, noop := ParseStages(out)
	return stages, noop, code, out
}

func (l local) state() (cur, done, deploying string) {
	l.t.Helper()
	s, _ := l.tg.StatusScript()
	out, code := l.run(s)
	if code != 0 {
		l.t.Fatalf("status: %d %s", code, out)
	}
	p := newParser()
	p.Write([]byte(out))
	_, _, m, _ := p.result()
	return m["current"], m["done"], m["deploying"]
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(t *testing.T, p string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestScriptsLocal runs the deploy, finalize, rollback, status and check
// scripts on this machine against a real repository served over dumb
// HTTP: the whole layout logic, without SSH.
func TestScriptsLocal(t *testing.T) {
	f := newGitFixture(t, "127.0.0.1:0", 4)
	base := t.TempDir()
	dir := filepath.Join(base, "it's a dir", "svc", "deploy")
	restarts := filepath.Join(base, "restarts")
	tg := Target{
		Service:    "svc",
		Dir:        dir,
		ServeURL:   f.ServeURL,
		Repo:       f.Repo,
		Submodules: []string{"lib"},
		Restart:    `echo "$DEPLOY_REV $PWD" >> ` + ShellQuote(restarts) + `; echo restarted`,
		KeepRevs:   2,
	}
	l := local{t, tg}
	c := dir + "-cache"
	sha := f.SHAs

	// First deploy: every stage, the layout, the restart.
	stages, noop, code, out := l.deploy(sha[0], false)
	if code != 0 || noop || len(stages) != 4 {
		t.Fatalf("deploy 1: code %d noop %v stages %+v\n%s", code, noop, stages, out)
	}
	for i, name := range []string{StageFetch, StageCheckout, StagePromote, StageRestart} {
		if stages[i].Stage != name || stages[i].ExitCode != 0 {
			t.Errorf("stage %d: %+v", i, stages[i])
		}
	}
	if !strings.Contains(stages[3].Output, "restarted") {
		t.Errorf("restart output %q", stages[3].Output)
	}
	if got := readFile(t, filepath.Join(c, "revs", sha[0], "version")); got != "v1\n" {
		t.Errorf("version = %q", got)
	}
	if got := readFile(t, filepath.Join(c, "revs", sha[0], "lib", "lib.txt")); got != "lib v1\n" {
		t.Errorf("submodule lib.txt = %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(c, "current")); l != "revs/"+sha[0] {
		t.Errorf("current -> %q", l)
	}
	if l, _ := os.Readlink(dir); l != c+"/current" {
		t.Errorf("target dir -> %q", l)
	}
	if got := readFile(t, restarts); got != sha[0]+" "+filepath.Join(c, "revs", sha[0])+"\n" {
		t.Errorf("restarts = %q", got)
	}
	if cur, done, dep := l.state(); cur != sha[0] || done != "" || dep != sha[0] {
		t.Errorf("state = %q %q %q", cur, done, dep)
	}

	// Not done yet: deploying again is not a noop; rev dir reused.
	stages, noop, code, _ = l.deploy(sha[0], false)
	if code != 0 || noop || !strings.Contains(stages[0].Output, "already checked out") {
		t.Errorf("redeploy before finalize: %d %v %+v", code, noop, stages)
	}
	fin := func(s string) string {
		t.Helper()
		script, _ := tg.FinalizeScript(s)
		out, code := l.run(script)
		if code != 0 {
			t.Fatalf("finalize %s: %d %s", s, code, out)
		}
		return out
	}
	fin(sha[0])
	if cur, done, dep := l.state(); cur != sha[0] || done != sha[0] || dep != "" {
		t.Errorf("state after finalize = %q %q %q", cur, done, dep)
	}
	// Live and done: a noop, unless forced.
	n := len(lines(t, restarts))
	stages, noop, code, _ = l.deploy(sha[0], false)
	if code != 0 || !noop || len(stages) != 0 || len(lines(t, restarts)) != n {
		t.Errorf("noop: %d %v %+v", code, noop, stages)
	}
	stages, noop, code, out = l.deploy(sha[0], true)
	if code != 0 || noop || len(stages) != 4 || len(lines(t, restarts)) != n+1 || !strings.Contains(stages[1].Output, "checked out") {
		t.Errorf("force: %d %v %+v\n%s", code, noop, stages, out)
	}
	if got := readFile(t, filepath.Join(c, "revs", sha[0], "lib", "lib.txt")); got != "lib v1\n" {
		t.Errorf("after force: lib.txt = %q", got)
	}

	// Three more revisions, finalized: keep_revs 2 keeps the last two.
	for _, s := range sha[1:3] {
		if _, _, code, out := l.deploy(s, false); code != 0 {
			t.Fatalf("deploy %s: %d\n%s", s, code, out)
		}
		fin(s)
	}
	if got := readFile(t, filepath.Join(c, "revs", sha[1], "lib", "lib.txt")); got != "lib v2\n" {
		t.Errorf("rev 2 lib.txt = %q", got)
	}
	ents, _ := os.ReadDir(filepath.Join(c, "revs"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != strings.Join(sortedPair(sha[1], sha[2]), " ") {
		t.Errorf("revs after finalize = %v, want %s %s", names, sha[1], sha[2])
	}
	if h := lines(t, filepath.Join(c, ".history")); strings.Join(h, " ") != sha[1]+" "+sha[2] {
		t.Errorf("history = %v", h)
	}
	if refs := git(t, filepath.Join(c, "cache"), "for-each-ref", "--format=%(refname)", "refs/deploybot/"); strings.Contains(refs, sha[0]) || !strings.Contains(refs, sha[2]) {
		t.Errorf("cache keep-refs = %q", refs)
	}
	// The submodule's commit of each kept revision is kept too (its
	// checkout borrows the cache's objects), and nothing was cloned.
	for _, s := range sha[1:3] {
		head := strings.TrimSpace(git(t, filepath.Join(c, "revs", s, "lib"), "rev-parse", "HEAD"))
		pins := strings.TrimSpace(git(t, filepath.Join(c, "cache"), "for-each-ref", "--format=%(objectname)", "refs/deploybot/modules/"+s+"/"))
		if pins != head {
			t.Errorf("revision %s: submodule keep-refs %q, checked out %q", s, pins, head)
		}
	}
	if _, err := os.Stat(filepath.Join(c, "revs", sha[2], ".git", "modules")); !os.IsNotExist(err) {
		t.Errorf("a submodule was cloned into .git/modules: %v", err)
	}

	// Deploy the fourth, do not finalize, roll back: the third again.
	if _, _, code, out := l.deploy(sha[3], false); code != 0 {
		t.Fatalf("deploy 4: %d\n%s", code, out)
	}
	rb, _ := tg.RollbackScript()
	out, code = l.run(rb)
	p := newParser()
	p.Write([]byte(out))
	_, _, m, _ := p.result()
	if code != 0 || m["rev"] != sha[2] {
		t.Fatalf("rollback: %d %q\n%s", code, m["rev"], out)
	}
	if cur, done, dep := l.state(); cur != sha[2] || done != sha[2] || dep != "" {
		t.Errorf("state after rollback = %q %q %q", cur, done, dep)
	}
	if ls := lines(t, restarts); !strings.HasPrefix(ls[len(ls)-1], sha[2]+" ") {
		t.Errorf("last restart %q, want %s", ls[len(ls)-1], sha[2])
	}
	// Rolling back again does nothing.
	n = len(lines(t, restarts))
	out, code = l.run(rb)
	if code != 0 || !strings.Contains(out, "nothing to do") || len(lines(t, restarts)) != n {
		t.Errorf("second rollback: %d %s", code, out)
	}
	// Finalize refuses a revision that is not current.
	fs, _ := tg.FinalizeScript(sha[3])
	if out, code := l.run(fs); code != 3 || !strings.Contains(out, "current is not") {
		t.Errorf("finalize non-current: %d %s", code, out)
	}

	// A check command runs in the current revision.
	cs, _ := tg.CheckScript(`echo "$DEPLOY_REV $(cat version)"; pwd; exit 4`)
	out, code = l.run(cs)
	if code != 4 || !strings.Contains(out, sha[2]+" v3\n"+filepath.Join(c, "revs", sha[2])) {
		t.Errorf("check: %d %q", code, out)
	}

	// Failures: an unknown revision, an unreachable server, a failing
	// restart — each reported by its stage.
	stages, _, code, out = l.deploy(strings.Repeat("0", 39)+"1", false)
	if code == 0 || len(stages) != 1 || stages[0].Stage != StageFetch || !strings.Contains(stages[0].Output, "is not in") {
		t.Errorf("unknown rev: %d %+v\n%s", code, stages, out)
	}
	bad := tg
	bad.ServeURL = "http://127.0.0.1:1"
	bad.Dir = filepath.Join(base, "other")
	stages, _, code, _ = local{t, bad}.deploy(sha[0], false)
	if code == 0 || len(stages) != 1 || stages[0].ExitCode == 0 || stages[0].Output == "" {
		t.Errorf("unreachable server: %d %+v", code, stages)
	}
	failing := tg
	failing.Restart = "echo broken; exit 7"
	stages, _, code, _ = local{t, failing}.deploy(sha[3], false)
	if code != 7 || len(stages) != 4 || stages[3].ExitCode != 7 || !strings.Contains(stages[3].Output, "broken") {
		t.Errorf("failing restart: %d %+v", code, stages)
	}
	// The first deploy ever has nothing to roll back to.
	first := Target{Dir: filepath.Join(base, "first"), ServeURL: f.ServeURL, Repo: f.Repo}
	if _, _, code, out := (local{t, first}).deploy(sha[0], false); code != 0 {
		t.Fatalf("first: %d %s", code, out)
	}
	rb, _ = first.RollbackScript()
	if out, code := l.run(rb); code != 3 || !strings.Contains(out, "nothing to roll back") {
		t.Errorf("rollback without done: %d %s", code, out)
	}
}

func sortedPair(a, b string) []string {
	if a < b {
		return []string{a, b}
	}
	return []string{b, a}
}

// Target.key, which Deploy's plans are remembered by, changes with every
// field of the Target: a plan is never reused for another target.
func TestTargetKeyCoversEveryField(t *testing.T) {
	base := Target{Service: "svc", Dir: "/srv/svc", ServeURL: "http://h", Repo: "svc/deploy",
		Submodules: []string{"lib"}, Restart: "./r", KeepRevs: 3, OpID: "op", Undo: "u",
		ConfigFiles: []ConfigFile{{Path: "/etc/svc.yaml", Content: "a: 1\n"}}}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		changed := base
		changed.Submodules = append([]string(nil), base.Submodules...)
		changed.ConfigFiles = append([]ConfigFile(nil), base.ConfigFiles...)
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			elem := reflect.New(f.Type().Elem()).Elem()
			if elem.Kind() == reflect.String {
				elem.SetString("more")
			} else {
				elem.Field(0).SetString("/etc/more")
			}
			f.Set(reflect.Append(f, elem))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
		if changed.key() == base.key() {
			t.Errorf("changing %s leaves the key the same", v.Type().Field(i).Name)
		}
	}
	c1, c2 := base, base
	c1.ConfigFiles = []ConfigFile{{Path: "/etc/svc.yaml", Content: "a: 2\n"}}
	c2.ConfigFiles = []ConfigFile{{Path: "/etc/svc.yaml", Content: "a: 3\n"}}
	if c1.key() == c2.key() {
		t.Error("two targets differing in a config file's content share a key")
	}
	a := Target{Service: "a\"", Dir: "b"}
	b := Target{Service: "a", Dir: "\"b"}
	if a.key() == b.key() {
		t.Error("two targets differing in where a quote is share a key")
	}
}

// TestParserInRestart: a restart command runs from the begin marker of the
// stage restart (a deploy) or "restart begin" (a rollback) until its end;
// Conn.kill kills its process group then.
func TestParserInRestart(t *testing.T) {
	for _, c := range []struct {
		out  string
		want bool
	}{
		{"", false},
		{"##deploybot begin promote\n", false},
		{"##deploybot begin restart\n", true},
		{"##deploybot begin restart\nstarting\n", true},
		{"##deploybot begin restart\n##deploybot end restart 0 10\n", false},
		{"##deploybot end promote 0 1\n##deploybot begin restart\n", true},
		{"##deploybot rev " + strings.Repeat("a", 40) + "\n##deploybot restart begin\n", true},
		{"##deploybot restart begin\n##deploybot restart end\n", false},
		{"output ##deploybot restart begin x\n", false},
	} {
		p := newParser()
		p.Write([]byte(c.out))
		if got := p.inRestart(); got != c.want {
			t.Errorf("%q: in restart %v, want %v", c.out, got, c.want)
		}
	}
}
