package remote

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"deploybot/config"
)

// Stage names, as in StageResult.Stage and the stage markers.
const (
	StageFetch    = "fetch"    // fetch into <target_dir>-cache/cache
	StageCheckout = "checkout" // check out revs/<sha>, with submodules
	StagePromote  = "promote"  // switch current and <target_dir>
	StageRestart  = "restart"  // run the restart command in the new rev
	StageNoop     = "noop"     // Deploy: the revision is already live and done
	StageFinalize = "finalize" // Finalize: mark done, prune old revs
	StageRollback = "rollback" // Rollback: back to the done rev, restart
)

// Target is one service as deployed on a target host: what the scripts
// need to know. Build it with NewTarget or by hand; every method that
// uses it validates it first (Validate). The scripts assume one operation
// per service and host at a time (the deployer's lock sees to that).
type Target struct {
	// Service is the service's name (config key), for messages.
	Service string
	// Dir is target_dir: an absolute, clean path. The revisions live in
	// Dir+"-cache".
	Dir string
	// ServeURL is the deploy host's read-only git server, without a
	// trailing slash; the deploy repository is fetched from
	// ServeURL/Repo/.git (dumb HTTP: the deploy host runs
	// update-server-info). The revision deployed must be reachable from
	// the served repository's HEAD or one of its refs.
	ServeURL string
	// Repo is the deploy repository's path under the server's root.
	Repo string
	// Submodules are the names of the repository's submodules (as in
	// .gitmodules). Each is cloned from ServeURL/Repo/.git/modules/<name>
	// (served with update-server-info too), then git submodule update
	// --init --recursive runs: nested submodules keep the URLs their own
	// .gitmodules give. Empty: submodules are not checked out.
	Submodules []string
	// Restart is the shell command run after promote, in the new
	// revision's directory, with DEPLOY_REV=<sha> in its environment;
	// empty means no restart stage. It is configuration written by the
	// operator, run as shell code by design (never text from a user).
	Restart string
	// KeepRevs is how many done revisions Finalize keeps; 0 means 5.
	KeepRevs int
}

// NewTarget returns the Target of service name as configured, fetching
// from serveURL (deploy.serve_url). submodules are the names read from the
// deploy repository's .gitmodules; they are used only when the service
// has submodules: true.
func NewTarget(name string, s *config.Service, serveURL string, submodules []string) Target {
	t := Target{
		Service:  name,
		Dir:      s.TargetDir,
		ServeURL: strings.TrimRight(serveURL, "/"),
		Repo:     s.Repo,
		Restart:  s.Restart,
		KeepRevs: s.KeepRevs,
	}
	if s.Submodules {
		t.Submodules = append([]string(nil), submodules...)
	}
	return t
}

// StageResult is one stage on one host, for the journal.
type StageResult struct {
	Stage string
	// ExitCode is the stage's exit status; -1 when it did not finish
	// (timed out, connection lost).
	ExitCode int
	// Duration is measured on the target for the stages of Deploy (10 ms
	// resolution), here for Finalize and Rollback.
	Duration time.Duration
	// Output is the tail (at most OutputTail bytes) of the stage's
	// stdout and stderr.
	Output string
	// Command is the shell code the stage ran.
	Command string
	// TimedOut is set on the stage that was running when the deploy's
	// timeout killed it.
	TimedOut bool
}

// StageError is a stage that ran and failed (exit status not 0).
type StageError struct {
	Host     string
	Stage    string
	ExitCode int
	Output   string // tail of the stage's output
}

func (e *StageError) Error() string {
	msg := fmt.Sprintf("%s: %s failed (exit status %d)", e.Host, e.Stage, e.ExitCode)
	if l := lastLine(e.Output); l != "" {
		msg += ": " + l
	}
	return msg
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return clip(s, 300)
}

// ErrNothingToRollBack is returned by Rollback on a host where no revision
// was ever marked done (or its directory is gone).
var ErrNothingToRollBack = errors.New("no done revision to roll back to")

// paths are the target's file names, each already quoted for the shell.
type paths struct {
	dir, dirTmp, root, cache, revs, current, curTmp string
	done, history, deploying, restartLog            string
	url                                             string
}

func (t Target) paths() paths {
	q := ShellQuote
	c := t.Dir + "-cache"
	return paths{
		dir:        q(t.Dir),
		dirTmp:     q(t.Dir + ".deploybot-tmp"),
		root:       q(c),
		cache:      q(c + "/cache"),
		revs:       q(c + "/revs"),
		current:    q(c + "/current"),
		curTmp:     q(c + "/.current.tmp"),
		done:       q(c + "/.done"),
		history:    q(c + "/.history"),
		deploying:  q(c + "/.deploying"),
		restartLog: q(c + "/.restart.log"),
		url:        q(t.repoURL()),
	}
}

// repoURL is where the target fetches the deploy repository.
func (t Target) repoURL() string {
	return t.ServeURL + "/" + escapePath(t.Repo) + "/.git"
}

// submoduleURL is where the target clones submodule name from.
func (t Target) submoduleURL(name string) string {
	return t.repoURL() + "/modules/" + escapePath(name)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func (t Target) keepRevs() int {
	if t.KeepRevs > 0 {
		return t.KeepRevs
	}
	return 5
}

// scriptHeader defines what every stage script uses: the marker prefix,
// now (milliseconds since boot, into NOW, without forking) and stage
// (run a function between begin and end markers; stop the script when it
// fails).
const scriptHeader = `umask 022
M=` + "'##deploybot'" + `
if [ -r /proc/uptime ]; then
	now() {
		read -r _u _x </proc/uptime
		_u=${_u%.*}${_u#*.}
		while :; do case $_u in 0?*) _u=${_u#0} ;; *) break ;; esac; done
		NOW=$((_u * 10))
	}
else
	now() { NOW=$(($(date +%s) * 1000)); }
fi
stage() {
	printf '%s begin %s\n' "$M" "$1"
	now; _t0=$NOW
	"$2"; _rc=$?
	now
	printf '%s end %s %s %s\n' "$M" "$1" "$_rc" "$((NOW - _t0))"
	[ "$_rc" -eq 0 ] || exit "$_rc"
}
`

// deployPlan is a generated deploy script and the code of each stage.
type deployPlan struct {
	script   string
	commands map[string]string
	stages   []string
}

// DeployScript returns the POSIX sh script Deploy runs for sha: fetch,
// checkout, promote and restart, each between stage markers (see the
// package documentation). Unless force is set, it does nothing but print
// the noop marker when sha is already current and done (and target_dir
// points at it), and skips fetch and checkout when revs/<sha> exists. With
// force, revs/<sha> is checked out afresh and replaces the existing one.
func (t Target) DeployScript(sha string, force bool) (string, error) {
	p, err := t.deployPlan(sha, force)
	if err != nil {
		return "", err
	}
	return p.script, nil
}

func (t Target) deployPlan(sha string, force bool) (*deployPlan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := checkSHA(sha); err != nil {
		return nil, err
	}
	q := ShellQuote
	p := t.paths()
	revPath := t.Dir + "-cache/revs/" + sha
	rev := q(revPath)
	tmp := q(t.Dir + "-cache/revs/." + sha + ".tmp")
	old := q(t.Dir + "-cache/revs/." + sha + ".old")
	s := q(sha)

	var fetch, checkout, promote, restart strings.Builder
	// fetch
	fmt.Fprintf(&fetch, "[ -d %s ] || mkdir -p %s || return\n", p.revs, p.revs)
	fmt.Fprintf(&fetch, "printf '%%s\\n' %s >%s || return\n", s, p.deploying)
	if !force {
		fmt.Fprintf(&fetch, "if [ -d %s ]; then echo %s; return 0; fi\n", rev, q("revs/"+sha+" is already checked out"))
	}
	fmt.Fprintf(&fetch, "[ -d %s ] || git -c init.defaultBranch=deploy init -q --bare %s || return\n", p.cache, p.cache)
	fmt.Fprintf(&fetch, "if git -C %s cat-file -e %s 2>/dev/null; then\n", p.cache, q(sha+"^{commit}"))
	fmt.Fprintf(&fetch, "\techo %s\n", q(sha+" is already in the cache"))
	fmt.Fprintf(&fetch, "else\n")
	fmt.Fprintf(&fetch, "\tGIT_TERMINAL_PROMPT=0 git -C %s fetch -q --no-tags %s '+HEAD:refs/remotes/deploy/HEAD' '+refs/*:refs/remotes/deploy/*' || return\n", p.cache, p.url)
	fmt.Fprintf(&fetch, "\tgit -C %s cat-file -e %s 2>/dev/null || { echo %s; return 2; }\n", p.cache, q(sha+"^{commit}"), q("revision "+sha+" is not in "+t.repoURL()))
	fmt.Fprintf(&fetch, "fi\n")
	fmt.Fprintf(&fetch, "git -C %s update-ref %s %s || return\n", p.cache, q("refs/deploybot/revs/"+sha), s)

	// checkout
	if !force {
		fmt.Fprintf(&checkout, "if [ -d %s ]; then echo %s; return 0; fi\n", rev, q("revs/"+sha+" is already checked out"))
	}
	fmt.Fprintf(&checkout, "[ ! -e %s ] || rm -rf %s || return\n", tmp, tmp)
	fmt.Fprintf(&checkout, "git -c init.defaultBranch=deploy init -q --template= %s || return\n", tmp)
	fmt.Fprintf(&checkout, "printf '%%s\\n' %s >%s/.git/objects/info/alternates || abort || return\n", q(t.Dir+"-cache/cache/objects"), tmp)
	fmt.Fprintf(&checkout, "git -C %s -c advice.detachedHead=false checkout -q --detach %s || abort || return\n", tmp, s)
	if len(t.Submodules) > 0 {
		fmt.Fprintf(&checkout, "if [ -f %s/.gitmodules ]; then\n", tmp)
		for _, name := range t.Submodules {
			fmt.Fprintf(&checkout, "\tgit -C %s config %s %s || abort || return\n", tmp, q("submodule."+name+".url"), q(t.submoduleURL(name)))
		}
		fmt.Fprintf(&checkout, "\tGIT_TERMINAL_PROMPT=0 git -C %s submodule update -q --init --recursive || abort || return\n", tmp)
		fmt.Fprintf(&checkout, "fi\n")
	}
	if force {
		fmt.Fprintf(&checkout, "if [ -e %s ]; then\n", rev)
		fmt.Fprintf(&checkout, "\t[ ! -e %s ] || rm -rf %s || abort || return\n", old, old)
		fmt.Fprintf(&checkout, "\tmv -T %s %s || abort || return\n", rev, old)
		fmt.Fprintf(&checkout, "fi\n")
	}
	fmt.Fprintf(&checkout, "mv -T %s %s || abort || return\n", tmp, rev)
	if force {
		fmt.Fprintf(&checkout, "[ ! -e %s ] || rm -rf %s\n", old, old)
	}
	fmt.Fprintf(&checkout, "echo %s\n", q("checked out revs/"+sha))

	// promote
	promote.WriteString(promoteCode(p, q("revs/"+sha), "return"))
	fmt.Fprintf(&promote, "echo %s\n", q("current -> revs/"+sha))

	// restart
	if t.Restart != "" {
		restart.WriteString(restartCode(p, rev, s, q(t.Restart)))
		restart.WriteString("return \"$_rc\"\n")
	}

	plan := &deployPlan{commands: map[string]string{}}
	var b strings.Builder
	b.WriteString(scriptHeader)
	fmt.Fprintf(&b, "abort() { _rc=$?; rm -rf %s; return \"$_rc\"; }\n", tmp)
	add := func(name string, body *strings.Builder) {
		plan.commands[name] = body.String()
		plan.stages = append(plan.stages, name)
		fmt.Fprintf(&b, "s_%s() {\n%s}\n", name, indent(body.String()))
	}
	add(StageFetch, &fetch)
	add(StageCheckout, &checkout)
	add(StagePromote, &promote)
	if t.Restart != "" {
		add(StageRestart, &restart)
	}
	if !force {
		noop := fmt.Sprintf("[ -f %s ] && read -r _done <%s && [ \"$_done\" = %s ] && [ %s -ef %s ] && [ -L %s ] && [ %s -ef %s ]",
			p.done, p.done, s, p.current, rev, p.dir, p.dir, rev)
		plan.commands[StageNoop] = noop
		fmt.Fprintf(&b, "if %s; then\n\tprintf '%%s noop %%s\\n' \"$M\" %s\n\texit 0\nfi\n", noop, s)
	}
	for _, name := range plan.stages {
		fmt.Fprintf(&b, "stage %s s_%s\n", name, name)
	}
	plan.script = b.String()
	return plan, nil
}

// promoteCode switches current to rel (a quoted path relative to the
// cache root) and makes target_dir point at current, both atomically;
// on failure it runs fail ("return" or "exit").
func promoteCode(p paths, rel, fail string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ln -sfn %s %s && mv -T %s %s || { _rc=$?; rm -f %s; %s \"$_rc\"; }\n", rel, p.curTmp, p.curTmp, p.current, p.curTmp, fail)
	fmt.Fprintf(&b, "if [ -L %s ] && [ %s -ef %s ]; then :; else\n", p.dir, p.dir, p.current)
	fmt.Fprintf(&b, "\tln -sfn %s %s && mv -T %s %s || { _rc=$?; rm -f %s; %s \"$_rc\"; }\n", p.current, p.dirTmp, p.dirTmp, p.dir, p.dirTmp, fail)
	fmt.Fprintf(&b, "fi\n")
	return b.String()
}

// restartCode runs the restart command (quoted) in dir with DEPLOY_REV
// (quoted or a "$var") set, its output in the restart log (a service it
// starts in the background may keep that open, not our session's
// output), then prints the log's tail. The status is left in _rc.
func restartCode(p paths, dir, rev, restart string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "( cd %s && DEPLOY_REV=%s && export DEPLOY_REV && eval %s ) >%s 2>&1 </dev/null\n", dir, rev, restart, p.restartLog)
	fmt.Fprintf(&b, "_rc=$?\n")
	fmt.Fprintf(&b, "[ ! -s %s ] || tail -c 3072 %s\n", p.restartLog, p.restartLog)
	return b.String()
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "\n" {
			b.WriteByte('\t')
		}
		b.WriteString(l)
	}
	return b.String()
}

// Deploy runs the deploy script for sha on the target in ONE session (see
// DeployScript) and returns a StageResult per stage that ran, with
// Command set; for a no-op, a single StageResult with Stage StageNoop.
// timeout bounds the whole script (0: the Dialer's CommandTimeout).
//
// The error is nil when every stage succeeded (or nothing was to be done),
// a *StageError for the stage that failed, or a *HostError (command timed
// out — the stage then running has TimedOut set —, connection lost,
// canceled). Stages run before a failure are returned in every case.
func (c *Conn) Deploy(ctx context.Context, t Target, sha string, force bool, timeout time.Duration) ([]StageResult, error) {
	plan, err := t.deployPlan(sha, force)
	if err != nil {
		return nil, err
	}
	res, p, err := c.run(ctx, plan.script, timeout, newParser())
	stages, _, marks, _ := p.result()
	for i := range stages {
		stages[i].Command = plan.commands[stages[i].Stage]
	}
	if err != nil {
		if n := len(stages); n > 0 && stages[n-1].ExitCode == -1 {
			stages[n-1].TimedOut = res.TimedOut
		}
		return stages, err
	}
	if _, ok := marks["noop"]; ok && res.ExitCode == 0 && len(stages) == 0 {
		return []StageResult{{
			Stage:    StageNoop,
			Duration: res.Duration,
			Output:   "revision " + sha + " is already current and done",
			Command:  plan.commands[StageNoop],
		}}, nil
	}
	if res.ExitCode != 0 {
		if n := len(stages); n > 0 && stages[n-1].ExitCode != 0 {
			return stages, &StageError{Host: c.host.String(), Stage: stages[n-1].Stage, ExitCode: stages[n-1].ExitCode, Output: stages[n-1].Output}
		}
		return stages, &StageError{Host: c.host.String(), Stage: "script", ExitCode: res.ExitCode, Output: res.Output}
	}
	if len(stages) != len(plan.stages) {
		return stages, &StageError{Host: c.host.String(), Stage: "script", ExitCode: res.ExitCode,
			Output: fmt.Sprintf("script ended after %d of %d stages: %s", len(stages), len(plan.stages), lastLine(res.Output))}
	}
	return stages, nil
}

// FinalizeScript returns the script Finalize runs.
func (t Target) FinalizeScript(sha string) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	if err := checkSHA(sha); err != nil {
		return "", err
	}
	q := ShellQuote
	p := t.paths()
	rev := q(t.Dir + "-cache/revs/" + sha)
	s := q(sha)
	var b strings.Builder
	fmt.Fprintf(&b, "if [ ! -d %s ] || ! [ %s -ef %s ]; then echo %s; exit 3; fi\n", rev, p.current, rev,
		q("current is not revs/"+sha+": not marking it done"))
	fmt.Fprintf(&b, "printf '%%s\\n' %s >%s.tmp && mv -f %s.tmp %s || exit\n", s, p.done, p.done, p.done)
	fmt.Fprintf(&b, "_h=\n")
	fmt.Fprintf(&b, "if [ -f %s ]; then\n", p.history)
	fmt.Fprintf(&b, "\twhile read -r _s; do\n")
	fmt.Fprintf(&b, "\t\tcase $_s in %s | '' | *[!0-9a-f]*) ;; *) _h=\"$_h $_s\" ;; esac\n", s)
	fmt.Fprintf(&b, "\tdone <%s\n", p.history)
	fmt.Fprintf(&b, "fi\n")
	fmt.Fprintf(&b, "set -f; set -- $_h %s; set +f\n", s)
	fmt.Fprintf(&b, "while [ \"$#\" -gt %d ]; do shift; done\n", t.keepRevs())
	fmt.Fprintf(&b, "_keep=\" $* \"\n")
	fmt.Fprintf(&b, "printf '%%s\\n' \"$@\" >%s.tmp && mv -f %s.tmp %s || exit\n", p.history, p.history, p.history)
	fmt.Fprintf(&b, "rm -f %s\n", p.deploying)
	fmt.Fprintf(&b, "for _d in %s/* %s/.*.tmp %s/.*.old; do\n", p.revs, p.revs, p.revs)
	fmt.Fprintf(&b, "\t[ -e \"$_d\" ] || continue\n")
	fmt.Fprintf(&b, "\t_n=${_d##*/}\n")
	fmt.Fprintf(&b, "\tcase $_keep in *\" $_n \"*) continue ;; esac\n")
	fmt.Fprintf(&b, "\tif [ %s -ef \"$_d\" ]; then continue; fi\n", p.current)
	fmt.Fprintf(&b, "\techo \"removing revs/$_n\"\n")
	fmt.Fprintf(&b, "\trm -rf \"$_d\" || exit\n")
	fmt.Fprintf(&b, "\tcase $_n in .*) ;; *) git -C %s update-ref -d \"refs/deploybot/revs/$_n\" 2>/dev/null ;; esac\n", p.cache)
	fmt.Fprintf(&b, "done\n")
	fmt.Fprintf(&b, "echo \"done: %s; keeping: $*\"\n", sha)
	return b.String(), nil
}

// Finalize marks sha done on the target (it must be current), records it
// in the history, keeps the last KeepRevs done revisions and removes every
// other revision directory except the current one; one session. The
// error is a *StageError (e.g. sha is not current) or a *HostError.
func (c *Conn) Finalize(ctx context.Context, t Target, sha string) (StageResult, error) {
	script, err := t.FinalizeScript(sha)
	if err != nil {
		return StageResult{}, err
	}
	return c.runStage(ctx, StageFinalize, script)
}

// runStage runs a one-stage script and reports it as a StageResult.
func (c *Conn) runStage(ctx context.Context, stage, script string) (StageResult, error) {
	res, err := c.Run(ctx, script, 0)
	sr := StageResult{Stage: stage, ExitCode: res.ExitCode, Duration: res.Duration, Output: res.Output, Command: script, TimedOut: res.TimedOut}
	if err == nil && res.ExitCode != 0 {
		err = &StageError{Host: c.host.String(), Stage: stage, ExitCode: res.ExitCode, Output: res.Output}
	}
	return sr, err
}

// RollbackScript returns the script Rollback runs.
func (t Target) RollbackScript() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	q := ShellQuote
	p := t.paths()
	var b strings.Builder
	fmt.Fprintf(&b, "M='##deploybot'\n")
	fmt.Fprintf(&b, "_d=\n[ ! -f %s ] || read -r _d <%s || :\n", p.done, p.done)
	fmt.Fprintf(&b, "case $_d in\n")
	fmt.Fprintf(&b, "'') echo 'no revision was ever marked done here: nothing to roll back to'; exit 3 ;;\n")
	fmt.Fprintf(&b, "*[!0-9a-f]*) echo %s; exit 3 ;;\n", q(t.Dir+"-cache/.done holds no revision"))
	fmt.Fprintf(&b, "esac\n")
	fmt.Fprintf(&b, "_rev=%s/\"$_d\"\n", p.revs)
	fmt.Fprintf(&b, "[ -d \"$_rev\" ] || { echo \"revs/$_d (the done revision) is missing: nothing to roll back to\"; exit 3; }\n")
	fmt.Fprintf(&b, "printf '%%s rev %%s\\n' \"$M\" \"$_d\"\n")
	fmt.Fprintf(&b, "if [ %s -ef \"$_rev\" ] && [ -L %s ] && [ %s -ef \"$_rev\" ]; then\n", p.current, p.dir, p.dir)
	fmt.Fprintf(&b, "\trm -f %s\n", p.deploying)
	fmt.Fprintf(&b, "\techo \"already at the done revision $_d: nothing to do\"\n")
	fmt.Fprintf(&b, "\tprintf '%%s noop %%s\\n' \"$M\" \"$_d\"\n")
	fmt.Fprintf(&b, "\texit 0\nfi\n")
	b.WriteString(promoteCode(p, "revs/\"$_d\"", "exit"))
	fmt.Fprintf(&b, "echo \"current -> revs/$_d\"\n")
	fmt.Fprintf(&b, "rm -f %s\n", p.deploying)
	if t.Restart != "" {
		b.WriteString(restartCode(p, "\"$_rev\"", "\"$_d\"", q(t.Restart)))
		fmt.Fprintf(&b, "exit \"$_rc\"\n")
	}
	return b.String(), nil
}

// Rollback puts the target back on the last revision marked done (the
// one before the deploy in progress): current and target_dir are switched
// to it and the restart command runs; one session. It returns the
// restored revision. When the target already is on that revision (the
// deploy never got to promote, or was rolled back already) it does
// nothing — it is safe to repeat. ErrNothingToRollBack when no revision
// was ever marked done there. A failing restart is a *StageError (the
// symlinks are switched back all the same).
func (c *Conn) Rollback(ctx context.Context, t Target) (StageResult, string, error) {
	script, err := t.RollbackScript()
	if err != nil {
		return StageResult{}, "", err
	}
	res, p, err := c.run(ctx, script, 0, newParser())
	_, _, marks, _ := p.result()
	sr := StageResult{Stage: StageRollback, ExitCode: res.ExitCode, Duration: res.Duration, Output: res.Output, Command: script, TimedOut: res.TimedOut}
	rev := marks["rev"]
	if !ValidSHA(rev) {
		rev = ""
	}
	if err != nil {
		return sr, rev, err
	}
	if res.ExitCode != 0 {
		if rev == "" && res.ExitCode == 3 {
			return sr, "", fmt.Errorf("%s: %w: %s", c.host, ErrNothingToRollBack, lastLine(res.Output))
		}
		return sr, rev, &StageError{Host: c.host.String(), Stage: StageRollback, ExitCode: res.ExitCode, Output: res.Output}
	}
	return sr, rev, nil
}

// State returns the revision current points at and the last revision
// marked done on the target ("" when there is none); one session.
func (c *Conn) State(ctx context.Context, t Target) (current, done string, err error) {
	st, err := c.Status(ctx, t)
	return st.Current, st.Done, err
}

// TargetState is what Status reads on a target.
type TargetState struct {
	Current   string // revision current points at
	Done      string // last revision marked done
	Deploying string // revision of a deploy not finalized nor rolled back
}

// StatusScript returns the script Status runs.
func (t Target) StatusScript() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	p := t.paths()
	var b strings.Builder
	fmt.Fprintf(&b, "M='##deploybot'\n")
	fmt.Fprintf(&b, "_c=\nif [ -L %s ]; then _c=$(readlink %s) || _c=; fi\n", p.current, p.current)
	fmt.Fprintf(&b, "_d=\n[ ! -f %s ] || read -r _d <%s || :\n", p.done, p.done)
	fmt.Fprintf(&b, "_p=\n[ ! -f %s ] || read -r _p <%s || :\n", p.deploying, p.deploying)
	fmt.Fprintf(&b, "printf '%%s current %%s\\n%%s done %%s\\n%%s deploying %%s\\n' \"$M\" \"${_c##*/}\" \"$M\" \"$_d\" \"$M\" \"$_p\"\n")
	return b.String(), nil
}

// Status reads current, .done and .deploying on the target; one session.
func (c *Conn) Status(ctx context.Context, t Target) (TargetState, error) {
	script, err := t.StatusScript()
	if err != nil {
		return TargetState{}, err
	}
	res, pr, err := c.run(ctx, script, 0, newParser())
	if err != nil {
		return TargetState{}, err
	}
	if res.ExitCode != 0 {
		return TargetState{}, &StageError{Host: c.host.String(), Stage: "state", ExitCode: res.ExitCode, Output: res.Output}
	}
	_, _, marks, _ := pr.result()
	st := TargetState{Current: marks["current"], Done: marks["done"], Deploying: marks["deploying"]}
	for name, v := range map[string]string{"current": st.Current, "done": st.Done, "deploying": st.Deploying} {
		if v != "" && !ValidSHA(v) {
			return st, fmt.Errorf("%s: %s on the target is %q, not a revision", c.host, name, clip(v, 80))
		}
	}
	return st, nil
}
