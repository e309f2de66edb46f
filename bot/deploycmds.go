package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/sal"
)

// Deployer is the deployment engine as the bot uses it; *deployer.Engine
// implements it. The engine owns every deploy's state (running, prompts
// and their answers, locks, history): the bot only asks it and announces
// what it reports.
type Deployer interface {
	Deploy(ctx context.Context, req deployer.Request, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error)
	Answer(service string, ans deployer.Answer, who string) error
	Abort(service string) error
	Status(service string) (*deployer.Status, error)
	History(service string, n int) ([]deployer.Summary, error)
	Lock(service string, h deployer.Holder) error
	Unlock(service, who string) (deployer.Holder, error)
	Unfinished() ([]*deployer.Deploy, error)
	ClaimAnnouncement(id, by string) (bool, error)
	Interrupted(service string) (*deployer.Deploy, error)
	Recover(ctx context.Context, id string, action deployer.RecoverAction, who string, obs deployer.Observer) (*deployer.Result, error)
	Resume(ctx context.Context, id, who string, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error)
	AwaitPrompt(ctx context.Context, id, who string, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error)
}

// deploys is what the bot keeps of the deploys it started: nothing but
// the goroutines that announce them.
type deploys struct {
	eng Deployer
	ctx context.Context // the bot's; ends when it stops
	wg  sync.WaitGroup
}

// slowStart is how long a deploy may take to start (updating the deploy
// repository, dialling the hosts) before the bot says it is on it.
var slowStart = 5 * time.Second

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
		Urgent:  func(text string) { b.out.notify(channel, PriorityUrgent, "", text) },
		Log: func(e *sal.Entry) {
			if project == "" {
				return // not a SAL channel
			}
			b.logDeploy(e)
		},
	}
}

// deployLogURL is where the full log of deploy id is served ("" when no
// server serves the deploy logs).
func (b *Bot) deployLogURL(id string) string {
	return DeployLogURL(b.cfg.Deploy.LogsPublicURL, id)
}

// DeployLogURL is the address of deploy id's log under publicURL, the
// base of the deploy log pages (deploy.logs_public_url; "" for none).
func DeployLogURL(publicURL, id string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimSuffix(publicURL, "/") + "/deploys/" + id
}

// goAnnounced runs fn in its own goroutine with an announcer for r's
// channel, closed when fn returns.
func (b *Bot) goAnnounced(r *request, s *config.Service, fn func(ctx context.Context, ann *Announcer)) {
	channel := r.channel
	if channel == "" {
		channel = b.announceChannel()
	}
	ann := b.newAnnouncer(s, channel, r.nick)
	b.dep.wg.Go(func() {
		defer ann.Close()
		fn(b.dep.ctx, ann)
	})
}

// hexWord is a word that can only be meant as a revision.
var hexWord = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// looksLikeRev reports whether word is meant as a sha1: hex, and either
// long enough or with a digit (so "add" or "face" stay words of a message).
func looksLikeRev(word string) bool {
	return hexWord.MatchString(word) && (len(word) >= 7 || strings.ContainsAny(word, "0123456789"))
}

// badRev is the reply to a revision that is not 7 to 40 hex digits.
func (b *Bot) badRev(r *request, rev string) bool {
	if err := deployer.ValidateRev(rev); err != nil {
		b.reply(r, fmt.Sprintf("%v. Usage: %s", err, commands[r.name].usage(b.cfg.IRC.Prefix)))
		return true
	}
	return false
}

func cmdDeploy(_ context.Context, b *Bot, r *request) {
	rest := strings.TrimSpace(strings.TrimPrefix(r.rest, r.args[0]))
	var rev string
	if len(r.args) > 1 && looksLikeRev(r.args[1]) {
		rev = r.args[1]
		rest = strings.TrimSpace(strings.TrimPrefix(rest, rev))
	}
	if b.badRev(r, rev) {
		return
	}
	b.startDeploy(r, deployer.Request{Service: r.svc.Name, Rev: rev, Message: rest})
}

func cmdRevert(_ context.Context, b *Bot, r *request) {
	var rev string
	if len(r.args) == 2 {
		rev = r.args[1]
		if b.badRev(r, rev) {
			return
		}
	}
	b.startDeploy(r, deployer.Request{Service: r.svc.Name, Rev: rev, Revert: true})
}

// startDeploy runs req for r's sender; the engine refuses it (locked,
// running, bad revision) or announces it.
func (b *Bot) startDeploy(r *request, req deployer.Request) {
	req.Who, req.Nick, req.Source = operator(r), r.nick, deployer.SourceIRC
	s := r.svc
	b.log.Info("deploy requested", "service", s.Name, "rev", req.Rev, "revert", req.Revert, "nick", r.nick, "account", r.account)
	b.goAnnounced(r, s, func(ctx context.Context, ann *Announcer) {
		var started atomic.Bool
		obs := deployer.ObserverFunc(func(ev deployer.Event) {
			if ev.Type == deployer.EventStarted {
				started.Store(true)
			}
			ann.Observe(ev)
		})
		ack := time.AfterFunc(slowStart, func() {
			if !started.Load() {
				b.reply(r, fmt.Sprintf("updating the %s deploy repository…", s.Name))
			}
		})
		res, err := b.dep.eng.Deploy(ctx, req, obs, nil)
		ack.Stop()
		switch {
		case res == nil && err != nil:
			b.reply(r, fmt.Sprintf("%s not deployed: %s", s.Name, oneLine(err.Error())))
			b.log.Info("deploy refused", "service", s.Name, "err", err)
		case err != nil:
			// The bot is stopping: the journal stays unfinished and the
			// next start offers it for recovery.
			b.log.Warn("deploy interrupted", "service", s.Name, "deploy", res.ID, "err", err)
		case res.LockErr != nil:
			b.reply(r, fmt.Sprintf("could not lock %s after the revert: %v", s.Name, res.LockErr))
		case res.Locked != nil:
			b.reply(r, fmt.Sprintf("%s is locked (%s) until !unlock %s", s.Name, res.Locked.Why, s.Name))
		}
	})
}

func cmdRollback(_ context.Context, b *Bot, r *request) { b.answerPrompt(r, deployer.Rollback) }
func cmdContinue(_ context.Context, b *Bot, r *request) { b.answerPrompt(r, deployer.Continue) }

// answerPrompt answers the open question of the service's deploy; or,
// when the service has a deploy whose process died, rolls it back or
// finishes it.
func (b *Bot) answerPrompt(r *request, ans deployer.Answer) {
	s := r.svc
	who := operator(r)
	err := b.dep.eng.Answer(s.Name, ans, who)
	switch {
	case err == nil:
		b.log.Info("prompt answered", "service", s.Name, "answer", ans, "nick", r.nick, "account", r.account)
		return // the announcer says what happens
	case errors.Is(err, deployer.ErrNoPrompt), errors.Is(err, deployer.ErrAnswered):
		b.reply(r, fmt.Sprintf("no question is open for %s: its deploy is running (!abort %s stops it).", s.Name, s.Name))
		return
	case !errors.Is(err, deployer.ErrNotRunning):
		b.reply(r, fmt.Sprintf("could not answer: %v", err))
		return
	}
	if st, err := b.dep.eng.Status(s.Name); err == nil && st.DeployLock != nil && !st.Here {
		b.reply(r, fmt.Sprintf("no question is open here for %s: it is being deployed elsewhere (%s); answer there.", s.Name, holderText("deploying", *st.DeployLock, time.Now())))
		return
	}
	d, err := b.dep.eng.Interrupted(s.Name)
	if err != nil {
		b.reply(r, fmt.Sprintf("could not read the deploy journals: %v", err))
		return
	}
	if d == nil {
		b.reply(r, fmt.Sprintf("nothing to answer for %s: no deploy is waiting for a question or interrupted.", s.Name))
		return
	}
	id := d.Meta.ID
	b.goAnnounced(r, s, func(ctx context.Context, ann *Announcer) {
		var res *deployer.Result
		var err error
		if ans == deployer.Rollback {
			res, err = b.dep.eng.Recover(ctx, id, deployer.RecoverRollback, who, ann)
		} else {
			res, err = b.dep.eng.Resume(ctx, id, who, ann, nil)
		}
		if res == nil && err != nil {
			b.reply(r, fmt.Sprintf("could not %s %s: %s", ans, id, oneLine(err.Error())))
		}
	})
}

func cmdAbort(_ context.Context, b *Bot, r *request) {
	s := r.svc
	err := b.dep.eng.Abort(s.Name)
	switch {
	case err == nil:
		b.log.Info("abort requested", "service", s.Name, "nick", r.nick, "account", r.account)
		b.reply(r, fmt.Sprintf("aborting %s: no new host starts; once the hosts in flight finish I will ask whether to roll back.", s.Name))
		return
	case errors.Is(err, deployer.ErrPromptOpen):
		b.reply(r, fmt.Sprintf("%s is waiting for an answer: !rollback %s or !continue %s.", s.Name, s.Name, s.Name))
		return
	}
	if st, err := b.dep.eng.Status(s.Name); err == nil && st.DeployLock != nil && !st.Here {
		b.reply(r, fmt.Sprintf("%s is being deployed by another process (%s): abort it there (Ctrl-C).", s.Name, holderText("deploying", *st.DeployLock, time.Now())))
		return
	}
	b.reply(r, fmt.Sprintf("no deploy of %s is running.", s.Name))
}

// postUnfinished announces the deploys the journal holds unfinished (the
// process running them died) with the state of their hosts, and offers
// !rollback and !continue. It runs once, when the bot starts, and
// returns the ids of the deploys it found.
func (b *Bot) postUnfinished() map[string]bool {
	seen := map[string]bool{}
	if b.dep.eng == nil {
		return seen
	}
	list, err := b.dep.eng.Unfinished()
	if err != nil {
		b.log.Error("reading unfinished deploys", "err", err)
		b.say(b.announceChannel(), PriorityUrgent, "could not read the deploy journals at start: "+err.Error())
		return seen
	}
	for _, d := range list {
		svc := d.Meta.Service
		if _, ok := b.cfg.Service(svc); !ok {
			seen[d.Meta.ID] = true
			continue
		}
		b.log.Warn("interrupted deploy found", "deploy", d.Meta.ID, "service", svc)
		if deployer.PendingPrompt(d) != nil {
			seen[d.Meta.ID] = true
			b.awaitPrompt(d)
			continue
		}
		announce, retry := b.claimAnnouncement(d)
		seen[d.Meta.ID] = !retry
		if announce {
			b.say(b.announceChannel(), PriorityUrgent, interruptedText(d, time.Now()))
		}
	}
	return seen
}

// awaitPrompt takes up the question the interrupted deploy d was asking:
// its announced deadline holds (the engine asks again until then, or
// takes the default at once when it passed while the bot was down).
func (b *Bot) awaitPrompt(d *deployer.Deploy) {
	s, _ := b.cfg.Service(d.Meta.Service)
	ann := b.newAnnouncer(s, b.announceChannel(), d.Meta.Who)
	id := d.Meta.ID
	b.dep.wg.Go(func() {
		defer ann.Close()
		// Only the copy of the bot that holds the primary nick acts: a
		// second copy never takes the question up.
		for !b.holdsNick() {
			select {
			case <-b.dep.ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		_, err := b.dep.eng.AwaitPrompt(b.dep.ctx, id, b.cfg.IRC.Nick, ann, nil)
		var locked *deployer.LockedError
		switch {
		case errors.As(err, &locked):
			b.log.Info("interrupted deploy taken up elsewhere", "deploy", id, "err", err)
		case err != nil && b.dep.ctx.Err() == nil:
			b.log.Error("taking up an interrupted deploy's question", "deploy", id, "err", err)
			b.say(b.announceChannel(), PriorityUrgent, fmt.Sprintf("%s: could not take up the question of the interrupted deploy %s: %s", s.Name, id, oneLine(err.Error())))
		}
	})
}

// interruptedText describes an interrupted deploy and what to do with it.
func interruptedText(d *deployer.Deploy, now time.Time) string {
	m := d.Meta
	svc := m.Service
	from := short(m.FromRev)
	if from == "" {
		from = "(none)"
	}
	return fmt.Sprintf("%s: deploy %s by %s of %s (from %s), started %s, was interrupted. Hosts: %s. !rollback %s puts them back on %s; !continue %s finishes the deploy of %s.",
		svc, m.ID, oneLine(m.Who), short(m.Rev), from, clockText(m.Started, now), deployer.HostsByState(d), svc, from, svc, short(m.Rev))
}
