package remote

import (
	"io/fs"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// scriptKinds maps each kind of generated script to the fragments it is
// made of, after its prelude, and a generator for Target t.
var scriptKinds = []struct {
	kind      string
	fragments []string
	gen       func(t Target) (string, error)
}{
	{"deploy", []string{"common.sh", "op.sh", "claim.sh", "switch.sh", "configfiles.sh", "done.sh", "deploy.sh"}, func(t Target) (string, error) { return t.DeployScript(strings.Repeat("ab", 20), false) }},
	{"deploy force", []string{"common.sh", "op.sh", "claim.sh", "switch.sh", "configfiles.sh", "done.sh", "deploy.sh"}, func(t Target) (string, error) { return t.DeployScript(strings.Repeat("cd", 20), true) }},
	{"deploy held", []string{"common.sh", "op.sh", "claim.sh", "switch.sh", "configfiles.sh", "done.sh", "deploy.sh"}, func(t Target) (string, error) {
		p, err := t.deployPlan(strings.Repeat("ef", 20), false, true)
		if err != nil {
			return "", err
		}
		return p.script, nil
	}},
	{"finalize", []string{"common.sh", "op.sh", "claim.sh", "done.sh", "finalize.sh"}, func(t Target) (string, error) { return t.FinalizeScript(strings.Repeat("ab", 20)) }},
	{"rollback", []string{"common.sh", "op.sh", "claim.sh", "switch.sh", "rollback.sh"}, Target.RollbackScript},
	{"status", []string{"common.sh", "status.sh"}, Target.StatusScript},
	{"op", []string{"common.sh", "op.sh", "opstate.sh"}, Target.OpScript},
	{"stop", []string{"common.sh", "op.sh", "stop.sh"}, func(t Target) (string, error) { return t.StopScript(t.OpID, 1500*time.Millisecond) }},
	{"check", []string{"check.sh"}, func(t Target) (string, error) { return t.CheckScript("test -f version") }},
	{"kill", []string{"groups.sh", "kill.sh"}, func(Target) (string, error) {
		return prelude(shellVar{"DEPLOY_PGID", "4242"}) + groupsSh + killSh, nil
	}},
}

var (
	// A prelude variable read: $NAME or ${NAME...}.
	deployVarRe = regexp.MustCompile(`\$\{?(DEPLOY_[A-Z_]+)\b`)
	// An assignment; an indexed variable (DEPLOY_CF_PATH_1) counts as
	// its stem (DEPLOY_CF_PATH_), as the fragments name it.
	assignRe = regexp.MustCompile(`^(DEPLOY_[A-Z_]+)[0-9]*=`)
)

// fragment is one embedded scripts/*.sh file, read back for the tests.
type fragment struct {
	name     string
	header   string   // the leading comment block
	code     string   // every non-comment line
	declared []string // prelude variables listed in the header
	guarded  []string // DEPLOY_* variables in the ': "${VAR?}"' guard lines
	used     []string // DEPLOY_* variables the code reads
}

func readFragments(t *testing.T) map[string]fragment {
	t.Helper()
	ents, err := fs.ReadDir(scriptFiles, "scripts")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fragment{}
	for _, e := range ents {
		b, err := fs.ReadFile(scriptFiles, "scripts/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		f := fragment{name: e.Name()}
		lines := strings.Split(string(b), "\n")
		i := 0
		for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
			f.header += lines[i] + "\n"
		}
		if _, after, ok := strings.Cut(f.header, "Prelude variables:"); ok {
			for _, l := range strings.Split(after, "\n") {
				// "#   NAME  description": a name right after the indent.
				if m := regexp.MustCompile(`^#   (DEPLOY_[A-Z_]+)\b`).FindStringSubmatch(l); m != nil {
					f.declared = append(f.declared, m[1])
				}
			}
		}
		for _, l := range lines[i:] {
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue
			}
			f.code += l + "\n"
			if strings.HasPrefix(l, `: "${`) {
				for _, m := range regexp.MustCompile(`"\$\{(DEPLOY_[A-Z_]+)\?\}"`).FindAllStringSubmatch(l, -1) {
					f.guarded = append(f.guarded, m[1])
				}
			}
		}
		for _, m := range deployVarRe.FindAllStringSubmatch(f.code, -1) {
			v := m[1]
			// DEPLOY_REV is what the scripts give the operator's commands.
			if v != "DEPLOY_REV" && !slices.Contains(f.used, v) {
				f.used = append(f.used, v)
			}
		}
		out[e.Name()] = f
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

// TestScriptFragments: every embedded fragment is shellcheck-ready (a
// shell directive), documents exactly the prelude variables it reads and
// guards them; every generated script's prelude sets exactly the
// variables its fragments declare, and is followed by those fragments,
// unchanged.
func TestScriptFragments(t *testing.T) {
	frags := readFragments(t)
	if len(frags) < 9 {
		t.Fatalf("only %d fragments embedded", len(frags))
	}
	for name, f := range frags {
		if !strings.HasPrefix(f.header, "# shellcheck shell=sh\n") {
			t.Errorf("%s: does not start with a shellcheck shell=sh directive", name)
		}
		if !strings.Contains(f.header, "Prelude variables:") {
			t.Errorf("%s: no \"Prelude variables:\" in its header", name)
		}
		if got, want := sorted(f.declared), sorted(f.used); !slices.Equal(got, want) {
			t.Errorf("%s: header declares %v, code reads %v", name, got, want)
		}
		// Indexed variables (a stem ending in '_') cannot be guarded by
		// name: their count is.
		unindexed := slices.DeleteFunc(slices.Clone(f.used), func(v string) bool { return strings.HasSuffix(v, "_") })
		if got, want := sorted(f.guarded), sorted(unindexed); !slices.Equal(got, want) {
			t.Errorf("%s: guards %v, code reads %v", name, got, want)
		}
		used := name == "run.sh" // runHeader, covered by every script Conn.Run sends
		for _, k := range scriptKinds {
			used = used || slices.Contains(k.fragments, name)
		}
		if !used {
			t.Errorf("%s: no script is made with it", name)
		}
	}

	// The marker prefix the scripts print is the one markers.go parses.
	if !strings.Contains(runHeader, `echo "`+MarkerPrefix+`pid $$"`+"\n") ||
		!strings.Contains(commonSh, "\nM='"+strings.TrimSpace(MarkerPrefix)+"'\n") {
		t.Errorf("marker prefix %q not in run.sh and common.sh", MarkerPrefix)
	}

	tg := Target{Dir: "/srv/x", ServeURL: "http://h", Repo: "r", Submodules: []string{"lib"}, Restart: "true",
		Pins:        []SubmodulePin{{Path: "lib", Commit: strings.Repeat("ab", 20)}},
		ConfigFiles: []ConfigFile{{Path: "/etc/x.yaml", Content: "a: 1"}}}
	for _, k := range scriptKinds {
		s, err := k.gen(tg)
		if err != nil {
			t.Fatalf("%s: %v", k.kind, err)
		}
		var set []string
		rest := s
		for {
			line, after, _ := strings.Cut(rest, "\n")
			m := assignRe.FindStringSubmatch(line)
			if m == nil {
				break
			}
			set = append(set, m[1])
			rest = after
		}
		var want []string
		var body string
		for _, fr := range k.fragments {
			want = append(want, frags[fr].declared...)
			body += loadScript(fr)
		}
		if got, want := sorted(set), sorted(want); !slices.Equal(got, want) {
			t.Errorf("%s: prelude sets %v, fragments declare %v", k.kind, got, want)
		}
		if rest != body {
			t.Errorf("%s: after the prelude, the script is not %v:\n%s", k.kind, k.fragments, rest)
		}
	}
}

// TestScriptsNoSplicing: the code of every script is the same whatever
// the values; they reach the shell only through the prelude, intact.
func TestScriptsNoSplicing(t *testing.T) {
	a := Target{Dir: "/srv/a", ServeURL: "http://a", Repo: "a", Restart: "ra", ConfigFiles: []ConfigFile{{Path: "a.conf", Content: "a"}}}
	b := Target{
		Dir:        "/srv/ZZ it's \"$(touch PWNED)\" `x` \\ ;&|<>*?[]~ é/deploy",
		ServeURL:   "https://deploy.example.org:8443/git",
		Repo:       "ZZ repo/with space & 'quote'",
		Submodules: []string{"ZZlib", "vendor/ZZdep"},
		// The same path and commit twice: the check below knows one value
		// per variable stem.
		Pins: []SubmodulePin{{Path: "ZZ it's/$(touch PWNED) `x`", Commit: strings.Repeat("9f", 20)},
			{Path: "ZZ it's/$(touch PWNED) `x`", Commit: strings.Repeat("9f", 20)}},
		Restart:  "if true; then\n  echo 'ZZ' \"$DEPLOY_REV\" $1\nfi\n# ZZ comment",
		KeepRevs: 3,
		OpID:     "ZZ.op-1",
		ConfigFiles: []ConfigFile{{Path: "/etc/ZZ it's/$(touch PWNED).yaml",
			Content: "ZZ: 'q' \"$(touch PWNED)\" `x`\n# ZZ\n\\ end\n\n"}},
	}
	for _, k := range scriptKinds {
		sa, err := k.gen(a)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := k.gen(b)
		if err != nil {
			t.Fatal(err)
		}
		var body string
		for _, fr := range k.fragments {
			body += loadScript(fr)
		}
		preA, okA := strings.CutSuffix(sa, body)
		preB, okB := strings.CutSuffix(sb, body)
		if !okA || !okB {
			t.Errorf("%s: script does not end with its fragments", k.kind)
			continue
		}
		if strings.Contains(body, "ZZ") || strings.Contains(preA, "ZZ") {
			t.Errorf("%s: a value leaked into the code", k.kind)
		}
		// Run the prelude alone: every variable holds its value exactly.
		var names []string
		for _, m := range regexp.MustCompile(`(?m)^(DEPLOY_[A-Z_]+[0-9]*)=`).FindAllStringSubmatch(preA, -1) {
			names = append(names, m[1])
		}
		probe := preB
		for _, n := range names {
			probe += `printf '%s\0' "$` + n + `"` + "\n"
		}
		out, err := exec.Command("/bin/sh", "-c", probe).Output()
		if err != nil {
			t.Fatalf("%s: running the prelude: %v", k.kind, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		want := map[string]string{
			"DEPLOY_DIR":        b.Dir,
			"DEPLOY_SHA":        strings.Repeat(map[string]string{"deploy force": "cd", "deploy held": "ef"}[k.kind]+map[bool]string{true: "", false: "ab"}[k.kind == "deploy force" || k.kind == "deploy held"], 20),
			"DEPLOY_URL":        b.repoURL(),
			"DEPLOY_FORCE":      map[bool]string{true: "1", false: "0"}[k.kind == "deploy force"],
			"DEPLOY_HOLD":       map[bool]string{true: "1", false: "0"}[k.kind == "deploy held"],
			"DEPLOY_SM_PINNED":  "1",
			"DEPLOY_SM_PATH_":   b.Pins[0].Path,
			"DEPLOY_SM_COMMIT_": b.Pins[0].Commit,
			"DEPLOY_SUBMODULES": "ZZlib vendor/ZZdep",
			"DEPLOY_RESTART":    b.Restart,
			"DEPLOY_UNDO":       b.Undo,
			"DEPLOY_KEEP_REVS":  "3",
			"DEPLOY_CHECK":      "test -f version",
			"DEPLOY_PGID":       "4242",
			"DEPLOY_OP_ID":      b.OpID,
			"DEPLOY_OP_KIND":    map[string]string{"deploy": OpDeploy, "deploy force": OpDeploy, "deploy held": OpDeploy, "finalize": OpFinalize, "rollback": OpRollback}[k.kind],
			"DEPLOY_STOP_OP":    b.OpID,
			"DEPLOY_STOP_GRACE": "1500",
			"DEPLOY_CF_COUNT":   "1",
			"DEPLOY_CF_PATH_":   b.ConfigFiles[0].Path,
			"DEPLOY_CF_BODY_":   b.ConfigFiles[0].Content,
		}
		if len(got) != len(names) {
			t.Fatalf("%s: %d values for %v", k.kind, len(got), names)
		}
		for i, n := range names {
			n = strings.TrimRight(n, "0123456789")
			if got[i] != want[n] {
				t.Errorf("%s: %s = %q, want %q", k.kind, n, got[i], want[n])
			}
		}
	}

	// Each stage's Command is its function after the prelude.
	sha := strings.Repeat("ab", 20)
	plan, err := b.deployPlan(sha, false, true)
	if err != nil {
		t.Fatal(err)
	}
	pre := plan.script[:strings.Index(plan.script, commonSh)]
	if c := plan.commands[StageFinalize]; c != pre+doneSh {
		t.Errorf("command of %s:\n%s", StageFinalize, c)
	}
	for stage, fn := range map[string]string{StageFetch: "s_fetch", StageCheckout: "s_checkout", StagePromote: "s_promote", StageRestart: "s_restart", StageNoop: "already_live"} {
		c := plan.commands[stage]
		if !strings.HasPrefix(c, pre+fn+"() {\n") || !strings.HasSuffix(c, "\n}\n") || !strings.Contains(plan.script, c[len(pre):]) {
			t.Errorf("command of %s:\n%s", stage, c)
		}
	}
	if !slices.Equal(plan.stages, []string{StageFetch, StageCheckout, StageConfig, StagePromote, StageRestart}) {
		t.Errorf("stages %v", plan.stages)
	}
	plan, _ = a.deployPlan(sha, true, false)
	if _, ok := plan.commands[StageNoop]; ok || len(plan.stages) != 5 {
		t.Errorf("forced: %v %v", plan.stages, plan.commands)
	}
	a.Restart, a.ConfigFiles = "", nil
	if plan, _ = a.deployPlan(sha, false, false); !slices.Equal(plan.stages, []string{StageFetch, StageCheckout, StagePromote}) {
		t.Errorf("no restart, no config files: %v", plan.stages)
	}
}

// TestSubmoduleURLs: deploy.sh fetches submodule <name> from
// $DEPLOY_URL/modules/<name> without escaping, which is right only because
// Validate admits no character that escapePath would change.
func TestSubmoduleURLs(t *testing.T) {
	for c := 0; c < 256; c++ {
		name := "a" + string(rune(c))
		if c >= 0x80 {
			name = "a" + string([]byte{byte(c)})
		}
		if (Target{Dir: "/srv/x", ServeURL: "http://h", Repo: "r", Submodules: []string{name}}).Validate() != nil {
			continue
		}
		if escapePath(name) != name {
			t.Errorf("submodule name %q is valid but escapes to %q", name, escapePath(name))
		}
		if _, err := url.Parse("http://h/r/.git/modules/" + name); err != nil {
			t.Errorf("submodule name %q: %v", name, err)
		}
	}
}
