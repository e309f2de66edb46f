package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
	"deploybot/sal"
)

// Deployer is the part of the deployment engine the bot drives;
// *deployer.Engine implements it.
type Deployer interface {
	Deploy(ctx context.Context, req deployer.Request, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error)
	Abort(service string) bool
	Running(service string) (id string, ok bool)
	Unfinished() ([]*journal.Deploy, error)
	Recover(ctx context.Context, id string, action deployer.RecoverAction, who string, obs deployer.Observer) (*deployer.Result, error)
	Resume(ctx context.Context, id, who string, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error)
}

// deploys is the bot's side of the deploys it runs: one per service at a
// time, each with its announcer and, while the engine waits for an
// answer, its open prompt.
type deploys struct {
	eng Deployer
	ctx context.Context // the bot's; ends when it stops
	wg  sync.WaitGroup

	mu   sync.Mutex
	runs map[string]*deployRun // service → deploy started from IRC
}

// deployRun is a deploy the bot started, or a recovery it runs.
type deployRun struct {
	service string
	ann     *Announcer

	done chan struct{} // closed when the run's goroutine is over

	mu       sync.Mutex
	started  bool // the engine said the deploy started
	finished bool // the engine said the deploy ended
	prompt   *deployer.Prompt
	answers  chan answer // buffered 1; created with each prompt
}

// slowStart is how long a deploy may take to start (updating the deploy
// repository, dialling the hosts) before the bot says it is on it.
var slowStart = 5 * time.Second

// answer is an operator's answer to a prompt.
type answer struct {
	ans deployer.Answer
	who string
}

// Observe records prompts (so !rollback and !continue find them the moment
// they are announced) and passes every event to the announcer.
func (d *deployRun) Observe(ev deployer.Event) {
	switch ev.Type {
	case deployer.EventStarted:
		d.mu.Lock()
		d.started = true
		d.mu.Unlock()
	case deployer.EventFinished:
		d.mu.Lock()
		d.finished = true
		d.mu.Unlock()
	}
	if ev.Type == deployer.EventPrompt && ev.Prompt != nil {
		d.mu.Lock()
		p := *ev.Prompt
		d.prompt, d.answers = &p, make(chan answer, 1)
		d.mu.Unlock()
	}
	if ev.Type == deployer.EventAnswer {
		d.mu.Lock()
		d.prompt = nil
		d.mu.Unlock()
	}
	d.ann.Observe(ev)
}

func (d *deployRun) isFinished() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.finished
}

// Ask implements deployer.Prompter: it waits for !rollback or !continue in
// the channel until the prompt's deadline.
func (d *deployRun) Ask(ctx context.Context, p deployer.Prompt) (deployer.Answer, error) {
	d.mu.Lock()
	ch := d.answers
	d.mu.Unlock()
	if ch == nil {
		return p.Default, errors.New("no prompt open")
	}
	select {
	case a := <-ch:
		return a.ans, nil
	case <-ctx.Done():
		return p.Default, ctx.Err()
	}
}

// answer gives the open prompt its answer; it reports false when there is
// none (or it was answered already).
func (d *deployRun) answer(a answer) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prompt == nil || d.answers == nil {
		return false
	}
	select {
	case d.answers <- a:
	default:
		return false
	}
	d.prompt = nil
	return true
}

// SetDeployer lets the bot run deploys with eng. Without one, the deploy
// commands answer that deploys are not enabled.
func (b *Bot) SetDeployer(eng Deployer) { b.dep.eng = eng }

// announceChannel is where deploys not started from a channel (the CLI,
// recoveries at start) are announced: the first configured channel.
func (b *Bot) announceChannel() string { return b.cfg.IRC.Channels[0] }

// newAnnouncer returns an announcer posting to channel, addressing nick.
func (b *Bot) newAnnouncer(s *config.Service, channel, nick string) *Announcer {
	project, _ := b.cfg.Project(channel)
	return &Announcer{
		Service: s,
		Nick:    nick,
		Channel: channel,
		Project: project,
		LogURL:  b.deployLogURL,
		Say:     func(text, key string) { b.out.notify(channel, PriorityDeploy, key, text) },
		Log: func(e *sal.Entry) {
			if project == "" {
				return // not a SAL channel
			}
			b.appendSAL(context.Background(), e)
		},
	}
}

// deployLogURL is where the full log of deploy id is served.
func (b *Bot) deployLogURL(id string) string {
	return DeployLogURL(b.cfg.SAL.PublicURL, id)
}

// DeployLogURL is the address of deploy id's log under the SAL web's
// public URL ("" without one).
func DeployLogURL(publicURL, id string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimSuffix(publicURL, "/") + "/deploys/" + id
}

// startRun registers a run for service and runs fn in its own goroutine;
// it reports false (and replies) when one is running already.
func (b *Bot) startRun(r *request, s *config.Service, nick string, fn func(ctx context.Context, run *deployRun)) bool {
	channel := r.channel
	if channel == "" {
		channel = b.announceChannel()
	}
	run := &deployRun{service: s.Name, ann: b.newAnnouncer(s, channel, nick), done: make(chan struct{})}
	b.dep.mu.Lock()
	if b.dep.runs == nil {
		b.dep.runs = map[string]*deployRun{}
	}
	prev := b.dep.runs[s.Name]
	if prev != nil && !prev.isFinished() {
		b.dep.mu.Unlock()
		b.reply(r, fmt.Sprintf("a deploy of %s is already running here; see !status %s.", s.Name, s.Name))
		return false
	}
	b.dep.runs[s.Name] = run
	b.dep.mu.Unlock()
	b.dep.wg.Go(func() {
		defer func() {
			run.ann.Close()
			b.dep.mu.Lock()
			if b.dep.runs[s.Name] == run {
				delete(b.dep.runs, s.Name)
			}
			b.dep.mu.Unlock()
			close(run.done)
		}()
		if prev != nil {
			// The previous deploy has announced its end and is letting go
			// of its lock (and a revert is taking its manual lock): wait
			// for it, so a command typed right after the finish line is
			// not refused.
			select {
			case <-prev.done:
			case <-b.dep.ctx.Done():
				return
			}
		}
		fn(b.dep.ctx, run)
	})
	return true
}

func (b *Bot) run(service string) *deployRun {
	b.dep.mu.Lock()
	defer b.dep.mu.Unlock()
	return b.dep.runs[service]
}

// hexWord is a word that can only be meant as a revision.
var hexWord = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// looksLikeRev reports whether word is meant as a sha1: hex, and either
// long enough or with a digit (so "add" or "face" stay words of a message).
func looksLikeRev(word string) bool {
	return hexWord.MatchString(word) && (len(word) >= 7 || strings.ContainsAny(word, "0123456789"))
}

func cmdDeploy(_ context.Context, b *Bot, r *request) {
	s := r.svc
	rest := strings.TrimSpace(strings.TrimPrefix(r.rest, r.args[0]))
	var rev string
	if len(r.args) > 1 && looksLikeRev(r.args[1]) {
		rev = r.args[1]
		rest = strings.TrimSpace(strings.TrimPrefix(rest, rev))
	}
	if rev != "" && (len(rev) < 7 || len(rev) > 40) {
		b.reply(r, fmt.Sprintf("bad sha1 %q: want 7 to 40 hex digits. Usage: %s", rev, commands["deploy"].usage(b.cfg.IRC.Prefix)))
		return
	}
	b.startDeploy(r, s, rev, rest, "")
}

// startDeploy runs a deploy of s at rev for r's sender; afterLock, when
// set, is the reason the service is locked with once the deploy ran.
func (b *Bot) startDeploy(r *request, s *config.Service, rev, message, afterLock string) {
	who := operator(r)
	b.startRun(r, s, r.nick, func(ctx context.Context, run *deployRun) {
		req := deployer.Request{Service: s.Name, Rev: rev, Message: message, Who: who, Source: "irc"}
		b.log.Info("deploy requested", "service", s.Name, "rev", rev, "nick", r.nick, "account", r.account)
		ack := time.AfterFunc(slowStart, func() {
			run.mu.Lock()
			started := run.started
			run.mu.Unlock()
			if !started {
				b.reply(r, fmt.Sprintf("updating the %s deploy repository…", s.Name))
			}
		})
		res, err := b.dep.eng.Deploy(ctx, req, run, run)
		ack.Stop()
		if res == nil && err != nil {
			b.reply(r, fmt.Sprintf("%s not deployed: %s", s.Name, oneLine(err.Error())))
			b.log.Info("deploy refused", "service", s.Name, "err", err)
			return
		}
		if err != nil {
			// The bot is stopping: the journal stays unfinished and the
			// next start offers it for recovery.
			b.log.Warn("deploy interrupted", "service", s.Name, "deploy", res.ID, "err", err)
			return
		}
		if afterLock != "" {
			if lerr := journal.Lock(b.cfg.Deploy.JournalDir, s.Name, journal.Holder{Who: who, Why: afterLock}); lerr != nil {
				b.reply(r, fmt.Sprintf("could not lock %s after the revert: %v", s.Name, lerr))
			} else {
				b.reply(r, fmt.Sprintf("%s is locked (%s) until !unlock %s", s.Name, afterLock, s.Name))
			}
		}
	})
}

func cmdRevert(_ context.Context, b *Bot, r *request) {
	usage := commands["revert"].usage(b.cfg.IRC.Prefix)
	s := r.svc
	var rev, msg string
	if len(r.args) == 2 {
		rev = r.args[1]
		if !hexWord.MatchString(rev) || len(rev) < 7 || len(rev) > 40 {
			b.reply(r, fmt.Sprintf("bad sha1 %q: want 7 to 40 hex digits. Usage: %s", rev, usage))
			return
		}
		msg = "revert to " + short(rev)
	} else {
		cur, prev, err := previousGood(b.cfg.Deploy.JournalDir, s.Name)
		if err != nil {
			b.reply(r, fmt.Sprintf("%s: %v. Name the revision: %s", s.Name, err, usage))
			return
		}
		rev = prev
		msg = fmt.Sprintf("revert %s to %s", short(cur), short(prev))
	}
	b.startDeploy(r, s, rev, msg, "reverted by "+r.nick)
}

// previousGood returns the revision live now (the last one deployed
// successfully) and the last one deployed successfully before it.
func previousGood(dir, service string) (cur, prev string, err error) {
	list, err := journal.List(dir, service)
	if err != nil {
		return "", "", err
	}
	for _, s := range list {
		if s.ReadErr != "" || !s.Finished || s.Outcome != journal.OutcomeSuccess || s.Rev == "" {
			continue
		}
		switch {
		case cur == "":
			cur = s.Rev
		case s.Rev != cur:
			return cur, s.Rev, nil
		}
	}
	if cur == "" {
		return "", "", errors.New("no successful deploy recorded")
	}
	return cur, "", fmt.Errorf("no successful deploy of another revision before %s recorded", short(cur))
}

func cmdRollback(_ context.Context, b *Bot, r *request) { b.answerPrompt(r, deployer.Rollback) }
func cmdContinue(_ context.Context, b *Bot, r *request) { b.answerPrompt(r, deployer.Continue) }

// answerPrompt answers the open prompt of the service: or, when the
// journal holds an interrupted deploy of it, rolls it back or finishes it.
func (b *Bot) answerPrompt(r *request, ans deployer.Answer) {
	s := r.svc
	if run := b.run(s.Name); run != nil {
		if run.answer(answer{ans, operator(r)}) {
			b.log.Info("prompt answered", "service", s.Name, "answer", ans, "nick", r.nick, "account", r.account)
			return // the announcer says what happens
		}
		b.reply(r, fmt.Sprintf("no question is open for %s: its deploy is running (!abort %s stops it).", s.Name, s.Name))
		return
	}
	if id, ok := b.dep.eng.Running(s.Name); ok {
		b.reply(r, fmt.Sprintf("no question is open here for %s: deploy %s runs from the command line and asks there.", s.Name, id))
		return
	}
	if h, err := journal.Running(b.cfg.Deploy.JournalDir, s.Name); err == nil && h != nil {
		b.reply(r, fmt.Sprintf("no question is open here for %s: it is being deployed elsewhere (%s); answer there.", s.Name, holderText("deploying", *h, time.Now())))
		return
	}
	list, err := b.dep.eng.Unfinished()
	if err != nil {
		b.reply(r, fmt.Sprintf("could not read the deploy journals: %v", err))
		return
	}
	var d *journal.Deploy
	for _, u := range list {
		if u.Meta.Service == s.Name {
			d = u
			break
		}
	}
	if d == nil {
		b.reply(r, fmt.Sprintf("nothing to answer for %s: no deploy is waiting for a question or interrupted.", s.Name))
		return
	}
	who := operator(r)
	id := d.Meta.ID
	b.startRun(r, s, r.nick, func(ctx context.Context, run *deployRun) {
		var res *deployer.Result
		var err error
		if ans == deployer.Rollback {
			run.ann.Recovery = true
			run.ann.Observe(deployer.Event{Type: deployer.EventStarted, Service: s.Name, DeployID: id, Who: who,
				From: d.Meta.Rev, To: d.Meta.FromRev, Backwards: true, Total: len(s.AllHosts())})
			res, err = b.dep.eng.Recover(ctx, id, deployer.RecoverRollback, who, run)
		} else {
			res, err = b.dep.eng.Resume(ctx, id, who, run, run)
		}
		if res == nil && err != nil {
			b.reply(r, fmt.Sprintf("could not %s %s: %s", ans, id, oneLine(err.Error())))
		}
	})
}

func cmdAbort(_ context.Context, b *Bot, r *request) {
	s := r.svc
	if run := b.run(s.Name); run != nil {
		run.mu.Lock()
		open := run.prompt != nil
		run.mu.Unlock()
		if open {
			b.reply(r, fmt.Sprintf("%s is waiting for an answer: !rollback %s or !continue %s.", s.Name, s.Name, s.Name))
			return
		}
	}
	if b.dep.eng.Abort(s.Name) {
		b.log.Info("abort requested", "service", s.Name, "nick", r.nick, "account", r.account)
		b.reply(r, fmt.Sprintf("aborting %s: no new host starts; once the hosts in flight finish I will ask whether to roll back.", s.Name))
		return
	}
	if h, err := journal.Running(b.cfg.Deploy.JournalDir, s.Name); err == nil && h != nil {
		b.reply(r, fmt.Sprintf("%s is being deployed by another process (%s): abort it there (Ctrl-C).", s.Name, holderText("deploying", *h, time.Now())))
		return
	}
	b.reply(r, fmt.Sprintf("no deploy of %s is running.", s.Name))
}

// postUnfinished announces the deploys the journal holds unfinished (the
// process running them died) with the state of their hosts, and offers
// !rollback and !continue. It runs once, when the bot starts.
func (b *Bot) postUnfinished() {
	if b.dep.eng == nil {
		return
	}
	list, err := b.dep.eng.Unfinished()
	if err != nil {
		b.log.Error("reading unfinished deploys", "err", err)
		b.say(b.announceChannel(), PriorityUrgent, "could not read the deploy journals at start: "+err.Error())
		return
	}
	for _, d := range list {
		svc := d.Meta.Service
		if _, ok := b.cfg.Service(svc); !ok {
			continue
		}
		b.log.Warn("interrupted deploy found", "deploy", d.Meta.ID, "service", svc)
		b.say(b.announceChannel(), PriorityUrgent, interruptedText(d, time.Now()))
	}
}

// interruptedText describes an interrupted deploy and what to do with it.
func interruptedText(d *journal.Deploy, now time.Time) string {
	m := d.Meta
	svc := m.Service
	from := short(m.FromRev)
	if from == "" {
		from = "(none)"
	}
	return fmt.Sprintf("%s: deploy %s by %s of %s (from %s), started %s, was interrupted. Hosts: %s. !rollback %s puts them back on %s; !continue %s finishes the deploy of %s.",
		svc, m.ID, oneLine(m.Who), short(m.Rev), from, clockText(m.Started, now), hostsByRev(d), svc, from, svc, short(m.Rev))
}

// hostsByRev summarizes the hosts of d by group and revision: "canary:
// 1 on 5d6e7f8; eqiad: 2 on 5d6e7f8, 1 in flight, 3 not reached".
func hostsByRev(d *journal.Deploy) string {
	var parts []string
	for _, g := range d.Meta.Groups() {
		hosts := d.Meta.Hosts[g]
		counts := map[string]int{}
		var order []string
		for _, h := range hosts {
			hs, ok := d.HostState[h]
			var k string
			switch {
			case !ok || hs.Stage == "":
				k = "not reached"
			case hs.InFlight:
				k = "in flight (state unknown)"
			case hs.Rev != "":
				k = "on " + short(hs.Rev)
				if hs.Failed {
					k += " (failed)"
				}
			case hs.Failed:
				k = "failed before the switch"
			default:
				k = "state unknown"
			}
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		var cs []string
		for _, k := range order {
			cs = append(cs, fmt.Sprintf("%d %s", counts[k], k))
		}
		parts = append(parts, g+": "+strings.Join(cs, ", "))
	}
	return strings.Join(parts, "; ")
}

// groupRevs summarizes which revision the hosts of each group run
// according to the deploy d: "canary 5d6e7f8, eqiad 5d6e7f8 (9) 1a2b3c4 (1)".
func groupRevs(d *journal.Deploy) string {
	var parts []string
	for _, g := range d.Meta.Groups() {
		counts := map[string]int{}
		for _, h := range d.Meta.Hosts[g] {
			rev := "?"
			if hs, ok := d.HostState[h]; ok && hs.Rev != "" {
				rev = short(hs.Rev)
			} else if d.Finished && d.Outcome == journal.OutcomeSuccess {
				rev = short(d.Meta.Rev)
			} else if d.Meta.FromRev != "" {
				rev = short(d.Meta.FromRev)
			}
			counts[rev]++
		}
		revs := make([]string, 0, len(counts))
		for rev := range counts {
			revs = append(revs, rev)
		}
		sort.Slice(revs, func(i, j int) bool { return counts[revs[i]] > counts[revs[j]] })
		if len(revs) == 1 {
			parts = append(parts, g+" "+revs[0])
			continue
		}
		var rs []string
		for _, rev := range revs {
			rs = append(rs, fmt.Sprintf("%s (%d)", rev, counts[rev]))
		}
		parts = append(parts, g+" "+strings.Join(rs, " "))
	}
	return strings.Join(parts, ", ")
}
