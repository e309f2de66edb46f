package bot

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/remote"
	"deploybot/sal"
)

// Announcer turns one deploy's events into channel lines and Server Admin
// Log entries (SPEC §3): a start line with the commit range and the log
// link; one line per group, groups that finish close together sharing a
// line; failures with host and reason; prompts naming the default and its
// deadline; a finish line with the duration. A group of a hundred hosts
// gives a handful of lines: a progress line now and then while it runs,
// and its result.
//
// Announcer is a deployer.Observer. The bot posts its lines through the
// paced sender; the CLI posts them through the relay listener of the
// running bot.
type Announcer struct {
	// Service is the configured service (for describing its checks).
	Service *config.Service
	// Nick is who the start and finish lines address: the operator.
	Nick string
	// Channel and Project are those of the SAL entries.
	Channel, Project string
	// LogURL returns the address of a deploy's full log ("" for none).
	LogURL func(id string) string
	// Say posts one line. key is "" or names a line that a newer one with
	// the same key replaces while it still waits to be sent (progress).
	Say func(text, key string)
	// Urgent posts a prompt or a failure: a line that is never dropped,
	// merged or delayed behind others. Nil: Say.
	Urgent func(text string)
	// Log writes a SAL entry (source deploy); nil for none.
	Log func(*sal.Entry)
	// Merge is how long a finished group's line waits for the next group
	// to share it. Default 3s.
	Merge time.Duration
	// Progress is how often a running group reports its counts. Default
	// 30s.
	Progress time.Duration
	// AnswerAt, when set, says where prompts are answered instead of the
	// channel commands (a deploy run from a shell asks on its terminal).
	AnswerAt string
	// Recovery: the events are those of an interrupted deploy being rolled
	// back; its start was logged when it first started.
	Recovery bool

	mu       sync.Mutex
	started  deployer.Event
	message  string // the SAL message: the operator's, or the head subject
	groups   map[string]*groupTally
	merged   []string // finished-group texts waiting to be posted
	mergeT   *time.Timer
	progress *time.Ticker
	stop     chan struct{}
	running  string // the group in progress
	rolled   int    // hosts rolled back
	rollBad  int    // hosts whose rollback failed
	stopped  int    // hosts where a dead deploy's leftover operation was stopped
	prompts  int
	closed   bool
}

// groupTally is what the announcer knows of one group.
type groupTally struct {
	name       string
	total      int
	ok, failed int
	failures   []hostFailure
	checks     map[string]remote.CheckResult // slowest passing result per check
	checkOrder []string
}

type hostFailure struct{ host, why string }

// maxNamedFailures is how many failed hosts a line names; the rest are
// counted.
const maxNamedFailures = 3

func (a *Announcer) merge() time.Duration {
	if a.Merge > 0 {
		return a.Merge
	}
	return 3 * time.Second
}

func (a *Announcer) progressEvery() time.Duration {
	if a.Progress > 0 {
		return a.Progress
	}
	return 30 * time.Second
}

func (a *Announcer) say(text string) { a.Say(text, "") }

// urgent posts a prompt or a failure line.
func (a *Announcer) urgent(text string) {
	if a.Urgent != nil {
		a.Urgent(text)
		return
	}
	a.Say(text, "")
}

func (a *Announcer) addressed(text string) string {
	if a.Nick == "" {
		return text
	}
	return a.Nick + ": " + text
}

func (a *Announcer) keyPrefix() string {
	if a.Recovery {
		return a.started.DeployID + ":recovery:"
	}
	return a.started.DeployID + ":"
}

func (a *Announcer) log(key, text string) {
	if a.Log == nil {
		return
	}
	nick, account := a.started.Nick, a.started.Who
	if nick == "" { // from the shell: a Unix user, no account
		nick, account = a.started.Who, ""
	}
	a.Log(&sal.Entry{
		Nick:    nick,
		Account: account,
		Channel: a.Channel,
		Project: a.Project,
		Message: text,
		Source:  sal.SourceDeploy,
		Key:     a.keyPrefix() + key,
	})
}

// Observe implements deployer.Observer.
func (a *Announcer) Observe(ev deployer.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if a.groups == nil {
		a.groups = map[string]*groupTally{}
	}
	if a.started.Service == "" && ev.Type != deployer.EventStarted {
		// Events of a deploy taken up after a crash: no start to announce.
		a.started = deployer.Event{Service: ev.Service, DeployID: ev.DeployID, From: ev.From, To: ev.To}
		a.Recovery = ev.Recovery
	}
	switch ev.Type {
	case deployer.EventStarted:
		a.onStarted(ev)
	case deployer.EventGroupStarted:
		a.groups[ev.Group] = &groupTally{name: ev.Group, total: ev.Total, checks: map[string]remote.CheckResult{}}
		a.running = ev.Group
		a.startProgress()
	case deployer.EventCheckResult:
		g := a.group(ev.Group)
		for _, cr := range ev.Checks {
			if !cr.OK {
				continue
			}
			old, seen := g.checks[cr.Name]
			if !seen {
				g.checkOrder = append(g.checkOrder, cr.Name)
			}
			if !seen || cr.Latency > old.Latency {
				g.checks[cr.Name] = cr
			}
		}
	case deployer.EventHostDone:
		a.group(ev.Group).ok++
	case deployer.EventHostFailed:
		g := a.group(ev.Group)
		g.failed++
		g.failures = append(g.failures, hostFailure{ev.Host, a.failureText(ev)})
	case deployer.EventGroupFinished:
		a.onGroupFinished(ev)
	case deployer.EventPrompt:
		a.onPrompt(ev)
	case deployer.EventAnswer:
		a.onAnswer(ev)
	case deployer.EventRollback:
		a.rolled += ev.OK
		a.rollBad += ev.Failed
	case deployer.EventStopped:
		a.stopped++
	case deployer.EventFinished:
		a.onFinished(ev)
	}
}

func (a *Announcer) group(name string) *groupTally {
	g := a.groups[name]
	if g == nil {
		g = &groupTally{name: name, checks: map[string]remote.CheckResult{}}
		a.groups[name] = g
	}
	return g
}

func (a *Announcer) onStarted(ev deployer.Event) {
	a.started = ev
	a.Recovery = ev.Recovery
	a.message = ev.Message
	if a.message == "" && len(ev.Commits) > 0 && !ev.Backwards {
		a.message = ev.Commits[0].Subject
	}
	var sb strings.Builder
	if a.Recovery {
		fmt.Fprintf(&sb, "rolling back the interrupted deploy %s of %s (%s → %s) on %d host%s", ev.DeployID, ev.Service, short(ev.From), short(ev.To), ev.Total, plural(ev.Total))
		if u := a.logURL(ev.DeployID); u != "" {
			sb.WriteString(" — log: " + u)
		}
		a.say(a.addressed(sb.String()))
		return
	}
	verb := "deploying"
	if ev.Backwards {
		verb = "reverting"
	}
	fmt.Fprintf(&sb, "%s %s ", verb, ev.Service)
	if ev.From != "" && ev.From != ev.To {
		fmt.Fprintf(&sb, "%s..%s", short(ev.From), short(ev.To))
	} else {
		sb.WriteString(short(ev.To))
	}
	if ev.From == "" && len(ev.Commits) > 0 {
		sb.WriteString(firstDeploySubjects(ev.Commits, ev.More))
	} else if n := len(ev.Commits); n > 0 {
		what := "commit"
		if ev.Backwards {
			what = "commit taken away"
		}
		if n > 1 {
			what = strings.Replace(what, "commit", "commits", 1)
		}
		fmt.Fprintf(&sb, " (%d %s: %q", n, what, ev.Commits[0].Subject)
		if n > 1 {
			sb.WriteString(", …")
		}
		sb.WriteString(")")
	}
	if ev.Message != "" {
		fmt.Fprintf(&sb, ": %s", ev.Message)
	}
	fmt.Fprintf(&sb, " on %d host%s", ev.Total, plural(ev.Total))
	if u := a.logURL(ev.DeployID); u != "" {
		sb.WriteString(" — log: " + u)
	}
	a.say(a.addressed(sb.String()))
	a.log("start", "Started deploy "+a.tag(ev.To)+a.messageSuffix())
}

// maxFirstSubjects is how many commit subjects the start line of a first
// deploy names.
const maxFirstSubjects = 3

// firstDeploySubjects is ` (first deploy: "Fix X", "Add Y", "Init", …)`:
// the newest subjects of the revision's history, up to maxFirstSubjects.
func firstDeploySubjects(commits []gitrepo.Commit, more bool) string {
	var sb strings.Builder
	sb.WriteString(" (first deploy: ")
	for i, c := range commits[:min(len(commits), maxFirstSubjects)] {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%q", truncate(c.Subject, 80))
	}
	if more || len(commits) > maxFirstSubjects {
		sb.WriteString(", …")
	}
	sb.WriteString(")")
	return sb.String()
}

func (a *Announcer) logURL(id string) string {
	if a.LogURL == nil {
		return ""
	}
	return a.LogURL(id)
}

// tag is "[citoid@5d6e7f8]".
func (a *Announcer) tag(rev string) string {
	return "[" + a.started.Service + "@" + short(rev) + "]"
}

func (a *Announcer) messageSuffix() string {
	if a.message == "" {
		return ""
	}
	return ": " + a.message
}

// startProgress posts the running group's counts every Progress while it
// runs; the line replaces an older one still waiting to be sent.
func (a *Announcer) startProgress() {
	if a.progress != nil {
		return
	}
	a.progress = time.NewTicker(a.progressEvery())
	a.stop = make(chan struct{})
	t, stop := a.progress, a.stop
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				a.mu.Lock()
				if g := a.groups[a.running]; g != nil && a.running != "" && !a.closed {
					text := fmt.Sprintf("%s: %s %d/%d done", a.started.Service, g.name, g.ok+g.failed, g.total)
					if g.failed > 0 {
						text += fmt.Sprintf(", %d failed so far", g.failed)
					}
					a.Say(text, "progress:"+a.started.DeployID)
				}
				a.mu.Unlock()
			}
		}
	}()
}

func (a *Announcer) stopProgress() {
	if a.progress != nil {
		a.progress.Stop()
		close(a.stop)
		a.progress = nil
	}
}

func (a *Announcer) onGroupFinished(ev deployer.Event) {
	g := a.group(ev.Group)
	g.total, g.ok, g.failed = ev.Total, ev.OK, ev.Failed
	a.running = ""
	svc := a.started.Service
	switch {
	case ev.Failed == 0 && ev.Outcome != deployer.OutcomeAborted && g.name == "canary":
		// The canary's result goes out at once, with its health results:
		// the operator wants it before the fleet follows.
		text := fmt.Sprintf("%s: canary %d/%d ok", svc, ev.OK, ev.Total)
		if h := a.healthText(g); h != "" {
			text += " — " + h
		}
		a.flushMerged()
		a.say(text)
	case ev.Failed == 0 && ev.Outcome != deployer.OutcomeAborted:
		text := fmt.Sprintf("%s %d/%d ok", g.name, ev.OK, ev.Total)
		a.merged = append(a.merged, text)
		if a.mergeT == nil {
			a.mergeT = time.AfterFunc(a.merge(), func() {
				a.mu.Lock()
				defer a.mu.Unlock()
				a.flushMerged()
			})
		}
		return
	case ev.Outcome == deployer.OutcomeSuccess:
		a.flushMerged()
		a.say(fmt.Sprintf("%s: %s %d/%d ok, %d failed (within the failure limit) — %s", svc, g.name, ev.OK, ev.Total, ev.Failed, failuresText(g.failures)))
	case ev.Outcome == deployer.OutcomeAborted:
		a.flushMerged()
		a.say(fmt.Sprintf("%s: %s stopped by !abort: %d/%d ok, %d failed", svc, g.name, ev.OK, ev.Total, ev.Failed))
	default:
		a.flushMerged()
		a.urgent(fmt.Sprintf("%s: %s FAILED on %d/%d — %s", svc, g.name, ev.Failed, ev.Total, failuresText(g.failures)))
		a.log("fail:"+g.name, fmt.Sprintf("FAILED deploy %s%s (%s failed on %d/%d: %s)", a.tag(a.started.To), a.messageSuffix(), g.name, ev.Failed, ev.Total, failuresText(g.failures)))
	}
}

// flushMerged posts the finished groups waiting to share a line.
func (a *Announcer) flushMerged() {
	if a.mergeT != nil {
		a.mergeT.Stop()
		a.mergeT = nil
	}
	if len(a.merged) == 0 {
		return
	}
	a.say(a.started.Service + ": " + strings.Join(a.merged, ", "))
	a.merged = nil
}

// healthText describes the slowest passing result of each check of g:
// "port 1970 open in 0.4s, health GET /_info 200 in 35ms".
func (a *Announcer) healthText(g *groupTally) string {
	var parts []string
	for _, name := range g.checkOrder {
		cr := g.checks[name]
		parts = append(parts, a.checkText(cr))
	}
	return strings.Join(parts, ", ")
}

func (a *Announcer) checkText(cr remote.CheckResult) string {
	lat := latencyText(cr.Latency)
	switch cr.Kind {
	case remote.CheckKindPort:
		port := 0
		if a.Service != nil {
			port = a.Service.Port
		}
		if cr.OK {
			return fmt.Sprintf("port %d open in %s", port, lat)
		}
		return fmt.Sprintf("port %d not open: %s", port, oneLine(cr.Err))
	case remote.CheckKindHTTP:
		what := cr.Name + " " + a.checkTarget(cr.Name)
		if cr.OK {
			return fmt.Sprintf("%s %d in %s", what, cr.Status, lat)
		}
		if cr.Status != 0 {
			s := fmt.Sprintf("%s %d", what, cr.Status)
			if b := oneLine(cr.Body); b != "" {
				s += fmt.Sprintf(" (body: %q)", truncate(b, 80))
			}
			return s
		}
		return fmt.Sprintf("%s: %s", what, oneLine(cr.Err))
	default:
		if cr.OK {
			return fmt.Sprintf("%s ok in %s", cr.Name, lat)
		}
		why := oneLine(cr.Err)
		if out := lastLine(cr.Output); out != "" {
			why += ": " + truncate(out, 80)
		}
		return fmt.Sprintf("%s failed: %s", cr.Name, why)
	}
}

// checkTarget is "GET /_info" for an HTTP check of the service.
func (a *Announcer) checkTarget(name string) string {
	if a.Service == nil {
		return ""
	}
	for _, c := range a.Service.Checks {
		if c.Name == name && c.HTTP != "" {
			u, err := url.Parse(c.HTTP)
			if err != nil || u.Path == "" {
				return "GET " + c.HTTP
			}
			return "GET " + u.RequestURI()
		}
	}
	return ""
}

func (a *Announcer) failureText(ev deployer.Event) string {
	for _, cr := range ev.Checks {
		if !cr.OK {
			return a.checkText(cr)
		}
	}
	return ev.Reason
}

// failuresText names the first failed hosts and counts the rest.
func failuresText(fs []hostFailure) string {
	var parts []string
	for i, f := range fs {
		if i == maxNamedFailures {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-i))
			break
		}
		parts = append(parts, f.why+" on "+f.host)
	}
	return strings.Join(parts, "; ")
}

func (a *Announcer) onPrompt(ev deployer.Event) {
	a.flushMerged()
	a.stopProgress()
	p := ev.Prompt
	if p == nil {
		return
	}
	a.prompts++
	svc := a.started.Service
	wait := time.Until(p.Deadline).Round(time.Second)
	from := short(a.started.From)
	var q string
	switch p.Kind {
	case deployer.PromptPause:
		q = fmt.Sprintf("%s is paused before %s.", svc, p.Group)
	case deployer.PromptAborted:
		q = fmt.Sprintf("%s deploy aborted during %s.", svc, p.Group)
		a.log(fmt.Sprintf("abort:%d", a.prompts), fmt.Sprintf("Aborted deploy %s during %s", a.tag(a.started.To), p.Group))
	default:
		q = ""
	}
	var ask string
	if from != "" {
		ask = fmt.Sprintf("roll back %s to %s?", svc, from)
	} else {
		ask = fmt.Sprintf("roll back %s?", svc)
	}
	def := "rolling back"
	if p.Default == deployer.Continue {
		def = "continuing"
	}
	how := fmt.Sprintf("!rollback %s / !continue %s", svc, svc)
	if a.AnswerAt != "" {
		how = a.AnswerAt
	}
	when := durationWords(wait)
	if ev.Recovery {
		q = fmt.Sprintf("%s: deploy %s was waiting for an answer when the bot stopped (%s).", svc, p.DeployID, oneLine(p.Text))
		when += " (at " + p.Deadline.UTC().Format("15:04:05 UTC") + ")"
	}
	text := strings.TrimSpace(fmt.Sprintf("%s %s %s — %s in %s without an answer", q, ask, how, def, when))
	a.urgent(a.addressed(text))
}

func (a *Announcer) onAnswer(ev deployer.Event) {
	svc := a.started.Service
	switch ev.Who {
	case deployer.AnsweredByMissed:
		at := ""
		if ev.Prompt != nil {
			at = " before " + ev.Prompt.Deadline.UTC().Format("15:04:05 UTC")
		}
		a.urgent(fmt.Sprintf("%s: no answer%s while the bot was down — %s", svc, at, answerVerb(ev.Answer)))
	case deployer.AnsweredByTimeout, deployer.AnsweredByDefault:
		a.urgent(fmt.Sprintf("%s: no answer in time — %s", svc, answerVerb(ev.Answer)))
	case deployer.AnsweredByCanceled:
	default:
		a.say(fmt.Sprintf("%s: %s", svc, answerVerb(ev.Answer)))
	}
	if ev.Answer == deployer.Continue && a.running == "" {
		a.startProgress()
	}
}

func answerVerb(ans deployer.Answer) string {
	if ans == deployer.Continue {
		return "continuing"
	}
	return "rolling back"
}

func (a *Announcer) onFinished(ev deployer.Event) {
	a.flushMerged()
	a.stopProgress()
	a.closed = true
	dur := durationText(ev.Duration)
	svc, tag := a.started.Service, a.tag(ev.To)
	switch ev.Outcome {
	case deployer.OutcomeSuccess:
		text := fmt.Sprintf("Finished deploy %s%s (%sduration: %s)", tag, a.messageSuffix(), strings.TrimPrefix(a.stoppedText()+"; ", "; "), dur)
		if ev.Failed > 0 {
			text = fmt.Sprintf("Finished deploy %s%s with %d host(s) failed within the limit (duration: %s)", tag, a.messageSuffix(), ev.Failed, dur)
		}
		a.say(a.addressed(text))
		a.log("finish", text)
	case deployer.OutcomeNoop:
		text := fmt.Sprintf("%s is already on %s on every host: nothing to deploy (force it with the CLI's --force)", svc, short(ev.To))
		// Nothing ran: no SAL entry (the engine announced no start).
		a.say(a.addressed(text))
	case deployer.OutcomeRolledBack:
		to := short(ev.From)
		if to == "" {
			to = "the previous revision"
		}
		text := fmt.Sprintf("Rolled back %s to %s (%s; %d host%s restored%s; duration: %s)", svc, to, oneLine(ev.Reason), a.rolled, plural(a.rolled), a.stoppedText(), dur)
		a.say(a.addressed(text))
		a.log("finish", text)
	case deployer.OutcomeFailed:
		text := fmt.Sprintf("FAILED deploy %s%s: %s (duration: %s)", tag, a.messageSuffix(), oneLine(ev.Reason), dur)
		a.urgent(a.addressed(text + " — check the hosts: !status " + svc))
		a.log("finish", text)
	case deployer.OutcomeEnded:
		a.say(a.addressed(fmt.Sprintf("%s: interrupted deploy marked ended; hosts left as they are", svc)))
	}
}

// stoppedText is "; first stopped what the interrupted deploy left
// running on 3 hosts", or "".
func (a *Announcer) stoppedText() string {
	if a.stopped == 0 {
		return ""
	}
	return fmt.Sprintf("; first stopped what the interrupted deploy left running on %d host%s", a.stopped, plural(a.stopped))
}

// Close stops the announcer's timers and posts what waits.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushMerged()
	a.stopProgress()
	a.closed = true
}

func short(sha string) string { return deployer.ShortRev(sha) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func truncate(s string, n int) string { return deployer.Clip(s, n) }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return oneLine(s)
}

// durationText is "01m 42s", or "1h 02m 03s".
func durationText(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		return fmt.Sprintf("%dh %02dm %02ds", h, m, s)
	}
	return fmt.Sprintf("%02dm %02ds", m, s)
}

// durationWords is "10m", "45s", "1h30m".
func durationWords(d time.Duration) string {
	d = max(d.Round(time.Second), time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// latencyText is "35ms" under a tenth of a second, else "0.4s".
func latencyText(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
