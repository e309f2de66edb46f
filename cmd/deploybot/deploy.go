package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"sync"
	"syscall"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
)

// parseInterspersed parses flags that may come before or after the
// positional arguments ("deploy citoid --rev abc" as well as "deploy --rev
// abc citoid") and returns the positional ones, or the exit code to stop
// with (-1 to go on).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if code := parseFlags(fs, args); code >= 0 {
			return nil, code
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, -1
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), -1
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseOptionalArg parses fs's flags, anywhere among args, and at most one
// positional argument: given says whether there was one (an empty one, as
// "$UNSET" gives, counts: it is not taken for none). More than one is a
// usage error. code is exitUsage then (after the usage), or parseFlags'
// code; -1 when the command goes on.
func parseOptionalArg(fs *flag.FlagSet, args []string) (arg string, given bool, code int) {
	pos, code := parseInterspersed(fs, args)
	switch {
	case code >= 0:
		return "", false, code
	case len(pos) > 1:
		fs.Usage()
		return "", false, exitUsage
	case len(pos) == 1:
		return pos[0], true, -1
	}
	return "", false, -1
}

// operator is who runs the command: $SUDO_USER, else the login name.
func operator() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// loadConfig loads the configuration, printing the error.
func loadConfig(e *env, path string) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, false
	}
	return cfg, true
}

// newEngine loads the configuration and makes an engine logging warnings
// to stderr.
func newEngine(e *env, path string) (*deployer.Engine, *config.Config, bool) {
	cfg, ok := loadConfig(e, path)
	if !ok {
		return nil, nil, false
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := deployer.New(cfg, logger)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
		return nil, nil, false
	}
	return eng, cfg, true
}

const deployHelp = `
Without <service>, the service is the one whose deploy repository
(<deploy_dir>/<repo>) holds the current directory, as with Scap3.

A deploy updates the service's deploy repository, then deploys the canary
and each group in turn, printing one line per group (and one per failed
host). A failed canary or group, or Ctrl-C (abort after the hosts in
flight), asks on the terminal whether to roll back or continue; no answer
within the service's prompt_timeout means rollback. A second Ctrl-C stops
at once and leaves the deploy to 'deploybot recover'.

Exit status: 0 deployed (or already live), 1 failed, refused or rolled
back, 2 bad usage.
`

func runDeploy(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "deploy")
	conf := configFlag(fs)
	rev := fs.String("rev", "", "the `sha1` to deploy (7 to 40 hex digits; default: the upstream head)")
	msg := fs.String("m", "", "the `message`: why (logged with the deploy)")
	dry := fs.Bool("dry-run", false, "print the plan (hosts per group, commit range) and change nothing")
	force := fs.Bool("force", false, "redeploy even if the revision is already live")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), deployHelp) }
	service, given, code := parseOptionalArg(fs, args)
	if code >= 0 {
		return code
	}
	if !given { // inside a deploy repository, as with Scap3
		if service, code = needServiceHere(e, "deploy", *conf); code >= 0 {
			return code
		}
	}
	req := deployer.Request{Service: service, Rev: *rev, Message: *msg, Force: *force}
	return deployFromShell(ctx, e, "deploy", *conf, req, *dry)
}

const revertHelp = `
Without <service>, the service is the one whose deploy repository holds
the current directory. A revert deploys an earlier revision: <sha1>, or without it the last
revision that finished a successful deploy before the live one. It runs
and asks as deploy does, is announced in the channel as !revert is, and
afterwards the service is locked "reverted by <you>" until
'deploybot unlock <service>' (or !unlock in the channel).

Exit status: 0 reverted, 1 failed, refused or rolled back, 2 bad usage.
`

func runRevert(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "revert")
	conf := configFlag(fs)
	msg := fs.String("m", "", "the `message`: why (default: \"revert <live> to <sha1>\")")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), revertHelp) }
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 2 {
		fs.Usage()
		return exitUsage
	}
	if len(pos) < 2 { // inside a deploy repository: [<sha1>]
		if cfg, ok := loadConfig(e, *conf); !ok {
			return exitFailed
		} else if _, named := cfg.Service(first(pos)); !named {
			here, code := needServiceHere(e, "revert", *conf)
			if code >= 0 {
				return code
			}
			pos = append([]string{here}, pos...)
		}
	}
	req := deployer.Request{Service: pos[0], Message: *msg, Revert: true}
	if len(pos) == 2 {
		req.Rev = pos[1]
	}
	return deployFromShell(ctx, e, "revert", *conf, req, false)
}

// first is the first of args, or "".
func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// deployFromShell runs req (a deploy or a revert) for the operator at the
// terminal: progress on stdout, prompts on the terminal, announcements in
// the channel through the running bot.
func deployFromShell(ctx context.Context, e *env, cmd, conf string, req deployer.Request, dry bool) int {
	// Refuse a bad revision before anything else.
	if err := deployer.ValidateRev(req.Rev); err != nil {
		fmt.Fprintf(e.stderr, "deploybot %s: %v. Nothing was run.\n", cmd, err)
		return exitFailed
	}
	if strings.ContainsAny(req.Message, "\x00\r\n") {
		fmt.Fprintf(e.stderr, "deploybot %s: the message must be one line\n", cmd)
		return exitUsage
	}
	eng, cfg, ok := newEngine(e, conf)
	if !ok {
		return exitFailed
	}
	defer eng.Close()
	req.Who, req.Source = operator(), deployer.SourceCLI
	if dry {
		p, err := eng.Plan(ctx, req)
		if err != nil {
			fmt.Fprintf(e.stderr, "deploybot %s: %v\n", cmd, err)
			return exitFailed
		}
		printPlan(e.stdout, p)
		return exitOK
	}

	// First Ctrl-C: abort after the hosts in flight, and ask. Second: stop.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 && eng.Abort(req.Service) == nil {
					fmt.Fprintln(e.stderr, "\nAborting after the hosts in flight (Ctrl-C again to stop now)...")
					continue
				}
				cancel()
				return
			case <-dctx.Done():
				return
			}
		}
	}()

	prog := newProgress(e.stdout)
	var obs deployer.Observer = prog
	if s, ok := cfg.Service(req.Service); ok {
		if ca := newChannelAnnouncer(cfg, s, req.Who, e.stderr); ca != nil {
			defer ca.Close()
			obs = deployer.ObserverFunc(func(ev deployer.Event) {
				prog.Observe(ev)
				ca.Observe(ev)
			})
		}
	}
	pr := &termPrompter{w: e.stderr, in: os.Stdin}
	res, err := eng.Deploy(dctx, req, obs, pr)
	prog.endLine()
	if err != nil {
		if res != nil {
			fmt.Fprintf(e.stderr, "deploybot %s: %s interrupted: %v; see 'deploybot recover %s'\n", cmd, res.ID, err, res.ID)
		} else {
			fmt.Fprintf(e.stderr, "deploybot %s: %v\n", cmd, err)
		}
		return exitFailed
	}
	printResult(e.stdout, res)
	switch {
	case res.LockErr != nil:
		fmt.Fprintf(e.stderr, "deploybot %s: could not lock %s after the revert: %v\n", cmd, req.Service, res.LockErr)
	case res.Locked != nil:
		fmt.Fprintf(e.stdout, "%s is locked (%s) until 'deploybot unlock %s'\n", req.Service, res.Locked.Why, req.Service)
	}
	if res.Outcome.Good() && res.LockErr == nil {
		return exitOK
	}
	return exitFailed
}

// printResult lists the hosts a deploy failed on and those it restored.
func printResult(w io.Writer, res *deployer.Result) {
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  failed: [%s] %s: %s\n", f.Group, f.Host, f.Reason)
	}
	for _, rb := range res.RolledBack {
		fmt.Fprintf(w, "  restored: %s to %s\n", rb.Host, shortRev(rb.Rev))
	}
}

func shortRev(s string) string {
	if s == "" {
		return "(none)"
	}
	return deployer.ShortRev(s)
}

func printPlan(w io.Writer, p *deployer.Plan) {
	fmt.Fprintf(w, "Plan for %s: %s..%s", p.Service, shortRev(p.From), shortRev(p.To))
	switch {
	case p.From == p.To:
		fmt.Fprintf(w, " (already the last deployed revision; a deploy is a no-op unless --force)\n")
	case p.Range.Backwards:
		fmt.Fprintf(w, " (backwards: %d commit(s) taken away)\n", len(p.Range.Commits))
	default:
		fmt.Fprintf(w, " (%d commit(s))\n", len(p.Range.Commits))
	}
	for _, c := range p.Range.Commits {
		fmt.Fprintf(w, "  %s %s (%s)\n", c.Short(), c.Subject, c.Author)
	}
	for _, c := range p.Range.Dropped {
		fmt.Fprintf(w, "  dropped %s %s (%s)\n", c.Short(), c.Subject, c.Author)
	}
	for _, g := range p.Groups {
		extra := ""
		if g.Pause {
			extra = ", pause before"
		}
		fmt.Fprintf(w, "group %s: %d host(s), %d at a time, %d may fail%s: %s\n", g.Name, len(g.Hosts), g.Parallel, g.FailureLimit, extra, strings.Join(g.Hosts, " "))
	}
	for _, n := range p.Unsupported {
		fmt.Fprintf(w, "not carried out from scap/: %s\n", n)
	}
	fmt.Fprintln(w, "Dry run: nothing was changed on any target.")
}

// termPrompter asks on the terminal: "r"/"rollback" or "c"/"continue".
type termPrompter struct {
	w     io.Writer
	in    io.Reader
	once  sync.Once
	lines chan string
}

func (t *termPrompter) Ask(ctx context.Context, p deployer.Prompt) (deployer.Answer, error) {
	t.once.Do(func() {
		t.lines = make(chan string)
		go func() {
			sc := bufio.NewScanner(t.in)
			for sc.Scan() {
				t.lines <- sc.Text()
			}
			close(t.lines)
		}()
	})
	for {
		fmt.Fprintf(t.w, "%s\n[r]ollback or [c]ontinue? (%s by %s) ", p.Text, p.Default, p.Deadline.Local().Format("15:04:05"))
		select {
		case l, ok := <-t.lines:
			if !ok {
				fmt.Fprintf(t.w, "\nno terminal input: %s\n", p.Default)
				return p.Default, io.EOF
			}
			switch strings.ToLower(strings.TrimSpace(l)) {
			case "r", "rollback":
				return deployer.Rollback, nil
			case "c", "continue":
				return deployer.Continue, nil
			}
		case <-ctx.Done():
			fmt.Fprintf(t.w, "\nno answer: %s\n", p.Default)
			return p.Default, ctx.Err()
		}
	}
}

const recoverHelp = `
Without an id, lists the interrupted deploys (their process died before
they finished) with the last known state of every host. With an id and no
action, shows that deploy; if it was waiting for an answer when its
process died, the question is asked again on the terminal until its
announced deadline, and its default (rollback) is taken then, or at once
when the deadline passed (also when no one is at a terminal). --rollback rolls back every host the deploy
reached, newest group first, and re-checks them; --resume finishes it:
a new deploy of the same revision takes every host there (asking on the
terminal as deploy does); --mark-ended gives up and leaves the hosts as
they are.
`

// awaitPrompt takes up the question the interrupted deploy d was asking:
// on the terminal until its deadline, then its default.
func awaitPrompt(ctx context.Context, e *env, eng *deployer.Engine, d *deployer.Deploy) int {
	p := deployer.PendingPrompt(d)
	fmt.Fprintf(e.stdout, "%s was waiting for an answer when its process died: %s\n", d.Meta.ID, p)
	var pr deployer.Prompter
	if isTerminal(os.Stdin) {
		pr = &termPrompter{w: e.stderr, in: os.Stdin}
	}
	obs := newProgress(e.stdout)
	obs.prompts = pr == nil
	res, err := eng.AwaitPrompt(ctx, d.Meta.ID, operator(), obs, pr)
	obs.endLine()
	if err != nil && res == nil {
		fmt.Fprintf(e.stderr, "deploybot recover: %v\n", err)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot recover: %s interrupted: %v\n", d.Meta.ID, err)
		return exitFailed
	}
	printResult(e.stdout, res)
	fmt.Fprintf(e.stdout, "%s: %s\n", res.ID, res.Outcome)
	if res.Outcome.Good() || res.Outcome == deployer.OutcomeRolledBack {
		return exitOK
	}
	return exitFailed
}

func runRecover(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "recover")
	conf := configFlag(fs)
	rollback := fs.Bool("rollback", false, "roll the deploy back")
	ended := fs.Bool("mark-ended", false, "mark the deploy ended, leaving its hosts as they are")
	resume := fs.Bool("resume", false, "finish the deploy: deploy its revision to every host")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), recoverHelp) }
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	actions := 0
	for _, a := range []bool{*rollback, *ended, *resume} {
		if a {
			actions++
		}
	}
	if len(pos) > 1 || actions > 1 || (actions == 1 && len(pos) == 0) {
		fs.Usage()
		return exitUsage
	}
	eng, _, ok := newEngine(e, *conf)
	if !ok {
		return exitFailed
	}
	defer eng.Close()
	if actions == 0 {
		list, err := eng.Unfinished()
		if err != nil {
			fmt.Fprintf(e.stderr, "deploybot recover: %v\n", err)
			return exitFailed
		}
		n := 0
		for _, d := range list {
			if len(pos) == 1 && d.Meta.ID != pos[0] {
				continue
			}
			n++
			journal.FormatState(e.stdout, d)
			fmt.Fprintln(e.stdout)
			if len(pos) == 1 && deployer.PendingPrompt(d) != nil {
				return awaitPrompt(ctx, e, eng, d)
			}
		}
		if n == 0 {
			if len(pos) == 1 {
				fmt.Fprintf(e.stderr, "deploybot recover: %s is not an interrupted deploy\n", pos[0])
				return exitFailed
			}
			fmt.Fprintln(e.stdout, "No interrupted deploys.")
		}
		return exitOK
	}
	action := deployer.RecoverRollback
	if *ended {
		action = deployer.RecoverMarkEnded
	}
	obs := newProgress(e.stdout)
	var res *deployer.Result
	var err error
	if *resume {
		res, err = eng.Resume(ctx, pos[0], operator(), obs, &termPrompter{w: e.stderr, in: os.Stdin})
	} else {
		res, err = eng.Recover(ctx, pos[0], action, operator(), obs)
	}
	obs.endLine()
	if err != nil {
		if errors.Is(err, journal.ErrFinished) {
			fmt.Fprintf(e.stderr, "deploybot recover: %s already finished\n", pos[0])
		} else {
			fmt.Fprintf(e.stderr, "deploybot recover: %v\n", err)
		}
		return exitFailed
	}
	printResult(e.stdout, res)
	fmt.Fprintf(e.stdout, "%s: %s\n", res.ID, res.Outcome)
	if res.Outcome == deployer.OutcomeFailed {
		return exitFailed
	}
	return exitOK
}
