package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

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
// per service and host at a time: the deployer's lock sees to that among
// its own operations, and the operation file (see OpID) keeps a deploy,
// finalize or rollback from starting while one left running by a
// deploybot that is gone still runs.
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
	// Pins, when not empty, are the path and commit of each of Submodules
	// (in the same order) at the revision deployed, as the deploy host
	// read them from its repository: the deploy then takes them as they
	// are, instead of reading each submodule's path in the revision's
	// .gitmodules and its commit in the revision's tree on the target
	// (two git processes per submodule and host). Empty: the target reads
	// them.
	Pins []SubmodulePin
	// Restart is the shell command run after promote, in the new
	// revision's directory, with DEPLOY_REV=<sha> in its environment;
	// empty means no restart stage. It is configuration written by the
	// operator, run as shell code by design (never text from a user).
	Restart string
	// KeepRevs is how many done revisions Finalize keeps; 0 means
	// config.DefaultKeepRevs.
	KeepRevs int
	// ConfigFiles are written into the new revision by the config stage
	// of a deploy, between checkout and promote (see ConfigFile). Empty:
	// no config stage.
	ConfigFiles []ConfigFile
	// OpID names the deploybot operation the scripts run for: Deploy,
	// Finalize and Rollback record it, with their process group, in the
	// operation file <Dir>-cache/.deploybot-op while they run, so that a
	// later deploybot can find it (Op) and stop it (Stop). At most 80
	// letters, digits and ._- ; empty: nothing is recorded (a live
	// operation recorded by another still refuses the script).
	OpID string
	// Undo, for Rollback only: a revision the deploy being rolled back
	// may already have marked done here (it finalizes every host as soon
	// as the host passes). When .done names it, the done revision before
	// it in .history is restored and marked done again, and Undo leaves
	// the history. Empty: the done revision is restored as it is.
	Undo string
}

// SubmodulePin is where a submodule is checked out in a revision and the
// commit its gitlink records there.
type SubmodulePin struct {
	// Path is relative to the repository: no empty, "." or ".."
	// component.
	Path string
	// Commit is the full object name the gitlink records.
	Commit string
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

// repoURL is where the target fetches the deploy repository. Submodule
// <name> is fetched from repoURL()+"/modules/"+name (deploy.sh): names
// are validated to need no escaping in a URL path.
func (t Target) repoURL() string {
	return t.ServeURL + "/" + escapePath(t.Repo) + "/.git"
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
	return config.DefaultKeepRevs
}

// deployPlan is a generated deploy script and the code of each stage.
// planKey identifies a deployPlan: the target (Target.key), the
// revision, force and hold.
type planKey struct {
	target, sha string
	force, hold bool
}

// key is every field of t in one comparable value, each quoted, so that
// no two targets share one.
func (t Target) key() string {
	var b []byte
	for _, s := range append([]string{t.Service, t.Dir, t.ServeURL, t.Repo, t.Restart, strconv.Itoa(t.KeepRevs),
		t.OpID, t.Undo}, t.Submodules...) {
		b = strconv.AppendQuote(b, s)
	}
	b = strconv.AppendInt(b, int64(len(t.Pins)), 10)
	for _, p := range t.Pins {
		b = strconv.AppendQuote(strconv.AppendQuote(b, p.Path), p.Commit)
	}
	// The config files follow the submodules: a count first, so the two
	// lists cannot be told apart by where one ends.
	b = strconv.AppendInt(b, int64(len(t.ConfigFiles)), 10)
	for _, f := range t.ConfigFiles {
		b = strconv.AppendQuote(strconv.AppendQuote(b, f.Path), f.Content)
	}
	return string(b)
}

type deployPlan struct {
	script   string
	commands map[string]string
	stages   []string
}

// DeployScript returns the POSIX sh script Deploy runs for sha: fetch,
// checkout, promote and restart, each between stage markers (see the
// package documentation and scripts/deploy.sh). Unless force is set, it
// does nothing but print the noop marker when sha is already current and
// done (and target_dir points at it), and skips fetch and checkout when
// revs/<sha> exists. With force, revs/<sha> is checked out afresh and
// replaces the existing one.
func (t Target) DeployScript(sha string, force bool) (string, error) {
	p, err := t.deployPlan(sha, force, false)
	if err != nil {
		return "", err
	}
	return p.script, nil
}

func (t Target) deployPlan(sha string, force, hold bool) (*deployPlan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := checkSHA(sha); err != nil {
		return nil, err
	}
	pre := prelude(append([]shellVar{
		{"DEPLOY_DIR", t.Dir},
		{"DEPLOY_SHA", sha},
		{"DEPLOY_URL", t.repoURL()},
		{"DEPLOY_FORCE", boolVar(force)},
		{"DEPLOY_SUBMODULES", strings.Join(t.Submodules, " ")},
		{"DEPLOY_RESTART", t.Restart},
		{"DEPLOY_OP_ID", t.OpID},
		{"DEPLOY_OP_KIND", OpDeploy},
		{"DEPLOY_HOLD", boolVar(hold)},
		{"DEPLOY_KEEP_REVS", strconv.Itoa(t.keepRevs())},
		{"DEPLOY_SM_PINNED", boolVar(len(t.Pins) > 0)},
	}, append(pinVars(t.Pins), configVars(t.ConfigFiles)...)...)...)
	plan := &deployPlan{
		script:   pre + commonSh + opSh + claimSh + switchSh + configFilesSh + doneSh + deploySh,
		commands: map[string]string{},
		stages:   []string{StageFetch, StageCheckout},
	}
	if len(t.ConfigFiles) > 0 {
		plan.stages = append(plan.stages, StageConfig)
	}
	plan.stages = append(plan.stages, StagePromote)
	if t.Restart != "" {
		plan.stages = append(plan.stages, StageRestart)
	}
	// A stage's command: its function, after the values it reads.
	for _, name := range plan.stages {
		plan.commands[name] = pre + deployFuncs[name]
	}
	if len(t.ConfigFiles) > 0 {
		plan.commands[StageConfig] = pre + configFilesSh + deployFuncs[StageConfig]
	}
	if !force {
		plan.commands[StageNoop] = pre + deployFuncs[StageNoop]
	}
	if hold {
		plan.commands[StageFinalize] = pre + doneSh
	}
	return plan, nil
}

// Deploy runs the deploy script for sha on the target in ONE session (see
// DeployScript) and returns a StageResult per stage that ran, with
// Command set; for a no-op, a single StageResult with Stage StageNoop.
// timeout bounds the whole script (0: the Dialer's CommandTimeout).
//
// The error is nil when every stage succeeded (or nothing was to be done),
// a *BusyError when another operation still runs there (nothing was
// done), a *StageError for the stage that failed, or a *HostError
// (command timed out — the stage then running has TimedOut set —,
// connection lost, canceled). Stages run before a failure are returned in
// every case.
func (c *Conn) Deploy(ctx context.Context, t Target, sha string, force bool, timeout time.Duration) ([]StageResult, error) {
	stages, _, err := c.deploy(ctx, t, sha, force, false, timeout)
	return stages, err
}

// Held is a deploy session left open after its last stage (DeployHeld),
// its script waiting for deploybot's word; Finalize or Release must be
// called, once.
type Held interface {
	// Finalize runs the finalize stage in the session (what Finalize does
	// in a session of its own: mark the revision done, prune), within
	// timeout (0: the Dialer's CommandTimeout) and ctx, and ends it. The
	// error is as Finalize's.
	Finalize(ctx context.Context, timeout time.Duration) (StageResult, error)
	// Release ends the session without finalizing: the revision stays
	// live, not done.
	Release()
}

// DeployHeld is Deploy, whose session, once every stage has succeeded,
// is held open (see Held) instead of ending, so that the finalize stage
// can run in it once the host has passed its checks: a session, and the
// processes that start one, fewer per host. The Held is nil when the
// session ended (an error, a no-op, or a target that does not hold).
func (c *Conn) DeployHeld(ctx context.Context, t Target, sha string, force bool, timeout time.Duration) ([]StageResult, Held, error) {
	stages, h, err := c.deploy(ctx, t, sha, force, true, timeout)
	if h == nil {
		return stages, nil, err
	}
	return stages, h, err
}

// deploy is Deploy and, with hold, DeployHeld.
func (c *Conn) deploy(ctx context.Context, t Target, sha string, force, hold bool, timeout time.Duration) ([]StageResult, *heldDeploy, error) {
	plan, err := c.d.plans.get(planKey{t.key(), sha, force, hold}, func() (*deployPlan, error) { return t.deployPlan(sha, force, hold) })
	if err != nil {
		return nil, nil, err
	}
	p := newParser()
	res, held, err := c.runHold(ctx, plan.script, timeout, p, hold)
	stages, _, marks, _ := p.result()
	for i := range stages {
		stages[i].Command = plan.commands[stages[i].Stage]
	}
	if held != nil {
		// The script holds only after its last stage succeeded.
		if len(stages) != len(plan.stages) {
			held.release()
			return stages, nil, &StageError{Host: c.host.String(), Stage: "script", ExitCode: -1,
				Output: fmt.Sprintf("script held after %d of %d stages", len(stages), len(plan.stages))}
		}
		return stages, &heldDeploy{s: held, stages: len(stages), cmd: plan.commands[StageFinalize]}, nil
	}
	if err != nil {
		if n := len(stages); n > 0 && stages[n-1].ExitCode == -1 {
			stages[n-1].TimedOut = res.TimedOut
		}
		return stages, nil, err
	}
	if be := c.busyError(res, marks); be != nil && len(stages) == 0 {
		return nil, nil, be
	}
	if _, ok := marks["noop"]; ok && res.ExitCode == 0 && len(stages) == 0 {
		return []StageResult{{
			Stage:    StageNoop,
			Duration: res.Duration,
			Output:   "revision " + sha + " is already current and done",
			Command:  plan.commands[StageNoop],
		}}, nil, nil
	}
	if res.ExitCode != 0 {
		if n := len(stages); n > 0 && stages[n-1].ExitCode != 0 {
			return stages, nil, &StageError{Host: c.host.String(), Stage: stages[n-1].Stage, ExitCode: stages[n-1].ExitCode, Output: stages[n-1].Output}
		}
		return stages, nil, &StageError{Host: c.host.String(), Stage: "script", ExitCode: res.ExitCode, Output: res.Output}
	}
	if len(stages) != len(plan.stages) {
		return stages, nil, &StageError{Host: c.host.String(), Stage: "script", ExitCode: res.ExitCode,
			Output: fmt.Sprintf("script ended after %d of %d stages: %s", len(stages), len(plan.stages), lastLine(res.Output))}
	}
	return stages, nil, nil
}

// heldDeploy is the Held of Conn.DeployHeld: s waits in deploy.sh's
// hold, after stages stages.
type heldDeploy struct {
	s      *heldSession
	stages int
	cmd    string // the finalize stage's Command
	once   sync.Once
}

// Finalize implements Held. A finalize that outlives timeout, or whose
// ctx is done, is killed with its process group, as Run kills a command:
// the service the restart started is not in it (switch.sh's run_restart
// gives the restart command a process group of its own).
func (h *heldDeploy) Finalize(ctx context.Context, timeout time.Duration) (StageResult, error) {
	sr := StageResult{Stage: StageFinalize, ExitCode: -1, Command: h.cmd}
	again := true
	h.once.Do(func() { again = false })
	if again {
		return sr, errors.New("remote: held deploy already finalized or released")
	}
	s, c := h.s, h.s.c
	if timeout <= 0 {
		timeout = c.d.commandTimeout()
	}
	start := time.Now()
	defer s.close()
	if _, err := io.WriteString(s.stdin, "finalize\n"); err != nil {
		return sr, c.lost(err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var werr error
	select {
	case werr = <-s.waitc:
	case <-c.done:
		select {
		case werr = <-s.waitc:
		case <-time.After(killGrace):
			return sr, c.lost(nil)
		}
	case <-ctx.Done():
		c.kill(s.sess, s.stdin, s.waitc, s.p.getPID(), s.p.inRestart)
		sr.Duration = time.Since(start)
		return sr, &HostError{Host: c.host.String(), Kind: KindCanceled, Err: ctx.Err()}
	case <-t.C:
		c.kill(s.sess, s.stdin, s.waitc, s.p.getPID(), s.p.inRestart)
		sr.Duration, sr.TimedOut = time.Since(start), true
		return sr, &HostError{Host: c.host.String(), Kind: KindCommandTimeout, Err: fmt.Errorf("finalize: no exit within %v; killed", timeout)}
	}
	stages, out, _, _ := s.p.result()
	sr.Duration, sr.Output = time.Since(start), out
	if len(stages) > h.stages && stages[h.stages].Stage == StageFinalize {
		st := stages[h.stages]
		sr.ExitCode, sr.Output = st.ExitCode, st.Output
	}
	var ee *ssh.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		if sr.ExitCode <= 0 {
			sr.ExitCode = ee.ExitStatus()
		}
	default:
		return sr, c.lost(werr)
	}
	if sr.ExitCode != 0 {
		return sr, &StageError{Host: c.host.String(), Stage: StageFinalize, ExitCode: sr.ExitCode, Output: sr.Output}
	}
	return sr, nil
}

// Release implements Held: the script reads the end of its input and
// ends (Release waits for that, at most killGrace, so that what comes
// next on the host finds the deploy's operation over).
func (h *heldDeploy) Release() {
	h.once.Do(h.s.release)
}

// release ends a held script: its stdin closed, it ends by itself.
func (s *heldSession) release() {
	_ = s.stdin.Close()
	select {
	case <-s.waitc:
	case <-s.c.done:
	case <-time.After(killGrace):
	}
	_ = s.sess.Close()
}

// pinVars are the prelude variables of pins: DEPLOY_SM_PATH_<i> and
// DEPLOY_SM_COMMIT_<i>, i counting from 1.
func pinVars(pins []SubmodulePin) []shellVar {
	var vs []shellVar
	for i, p := range pins {
		n := strconv.Itoa(i + 1)
		vs = append(vs, shellVar{"DEPLOY_SM_PATH_" + n, p.Path}, shellVar{"DEPLOY_SM_COMMIT_" + n, p.Commit})
	}
	return vs
}

// FinalizeScript returns the script Finalize runs (scripts/finalize.sh).
func (t Target) FinalizeScript(sha string) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	if err := checkSHA(sha); err != nil {
		return "", err
	}
	pre := prelude(
		shellVar{"DEPLOY_DIR", t.Dir},
		shellVar{"DEPLOY_SHA", sha},
		shellVar{"DEPLOY_KEEP_REVS", strconv.Itoa(t.keepRevs())},
		shellVar{"DEPLOY_OP_ID", t.OpID},
		shellVar{"DEPLOY_OP_KIND", OpFinalize},
	)
	return pre + commonSh + opSh + claimSh + doneSh + finalizeSh, nil
}

// Finalize marks sha done on the target (it must be current), records it
// in the history, keeps the last KeepRevs done revisions and removes every
// other revision directory except the current one; one session. The
// error is a *BusyError (another operation still runs there; nothing was
// done), a *StageError (e.g. sha is not current) or a *HostError.
func (c *Conn) Finalize(ctx context.Context, t Target, sha string) (StageResult, error) {
	script, err := c.d.finals.get(planKey{t.key(), sha, false, false}, func() (string, error) { return t.FinalizeScript(sha) })
	if err != nil {
		return StageResult{}, err
	}
	res, p, err := c.run(ctx, script, 0, newParser())
	_, _, marks, _ := p.result()
	sr := StageResult{Stage: StageFinalize, ExitCode: res.ExitCode, Duration: res.Duration, Output: res.Output, Command: script, TimedOut: res.TimedOut}
	if err != nil {
		return sr, err
	}
	if be := c.busyError(res, marks); be != nil {
		return sr, be
	}
	if res.ExitCode != 0 {
		return sr, &StageError{Host: c.host.String(), Stage: StageFinalize, ExitCode: res.ExitCode, Output: res.Output}
	}
	return sr, nil
}

// RollbackScript returns the script Rollback runs (scripts/rollback.sh).
func (t Target) RollbackScript() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	pre := prelude(
		shellVar{"DEPLOY_DIR", t.Dir},
		shellVar{"DEPLOY_RESTART", t.Restart},
		shellVar{"DEPLOY_UNDO", t.Undo},
		shellVar{"DEPLOY_OP_ID", t.OpID},
		shellVar{"DEPLOY_OP_KIND", OpRollback},
	)
	return pre + commonSh + opSh + claimSh + switchSh + rollbackSh, nil
}

// Rollback puts the target back on the last revision marked done (the
// one before the deploy in progress): current and target_dir are switched
// to it and the restart command runs; one session. It returns the
// restored revision. When the target already is on that revision (the
// deploy never got to promote, or was rolled back already) it does
// nothing — it is safe to repeat. ErrNothingToRollBack when no revision
// was ever marked done there; a *BusyError when another operation still
// runs there (nothing was done: stop it first, see Stop). A failing
// restart is a *StageError (the symlinks are switched back all the
// same).
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
	if be := c.busyError(res, marks); be != nil && rev == "" {
		return sr, "", be
	}
	if res.ExitCode != 0 {
		if rev == "" && res.ExitCode == 3 {
			return sr, "", fmt.Errorf("%s: %w: %s", c.host, ErrNothingToRollBack, lastLine(res.Output))
		}
		return sr, rev, &StageError{Host: c.host.String(), Stage: StageRollback, ExitCode: res.ExitCode, Output: res.Output}
	}
	return sr, rev, nil
}
