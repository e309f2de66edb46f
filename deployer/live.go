package deployer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"deploybot/deployer/journal"
)

// Stages of a running deploy (Live.Stage).
const (
	StagePreparing   = "preparing" // updating the repository, dialing the hosts
	StageDeploying   = "deploying" // a group runs (Live.Group)
	StageWaiting     = "waiting"   // a prompt is open (Live.Prompt)
	StageRollingBack = "rolling back"
	StageFinalizing  = "finalizing"
)

// Live is a deploy running in this engine, as Active reports it.
type Live struct {
	ID      string
	Service string
	Who     string
	Nick    string // beside Who, when known
	Source  string
	From    string
	To      string
	Started time.Time
	// Stage is one of the Stage* constants; Group the group it concerns
	// ("" when none).
	Stage string
	Group string
	// Host counts over the whole service.
	Total, Done, Failed, InFlight int
	// Prompt is the open question, if any, with its default and deadline.
	Prompt *Prompt
}

// Errors of Answer and Abort.
var (
	// ErrNotRunning: no deploy of the service runs in this engine.
	ErrNotRunning = errors.New("no deploy of the service is running here")
	// ErrNoPrompt: the deploy runs but asks nothing now.
	ErrNoPrompt = errors.New("no question is open")
	// ErrAnswered: the open question has its answer already.
	ErrAnswered = errors.New("the question is answered already")
	// ErrPromptOpen: Abort while the deploy waits for an answer.
	ErrPromptOpen = errors.New("the deploy is waiting for an answer")
	// ErrBadAnswer: an answer other than Rollback or Continue.
	ErrBadAnswer = errors.New("the answer must be rollback or continue")
)

// openPrompt is a question waiting for its answer. Its channel exists
// before the question is journaled or announced, so an answer given the
// moment it is seen is never lost.
type openPrompt struct {
	p  Prompt
	ch chan answer // buffered 1: the first answer wins
}

type answer struct {
	ans Answer
	who string
}

// offer gives the prompt an answer; it reports false when it has one.
func (op *openPrompt) offer(a answer) bool {
	select {
	case op.ch <- a:
		return true
	default:
		return false
	}
}

// Active returns the deploy of service running in this engine.
func (e *Engine) Active(service string) (*Live, bool) {
	r := e.runningRun(service)
	if r == nil {
		return nil, false
	}
	return r.live(), true
}

func (e *Engine) runningRun(service string) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running[service]
}

func (r *run) live() *Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &Live{ID: r.id, Service: r.svc.Name, Who: r.who, Nick: r.nick, Source: r.source, From: r.from, To: r.sha,
		Started: r.start.UTC(), Stage: r.stage, Group: r.group, Total: len(r.hosts)}
	for _, h := range r.hosts {
		switch {
		case h.inFlight:
			l.InFlight++
		case h.failed:
			l.Failed++
		case h.ok:
			l.Done++
		}
	}
	if r.prompt != nil {
		p := r.prompt.p
		l.Prompt = &p
	}
	return l
}

// Answer answers the open question of the deploy of service running in
// this engine; who is the operator, recorded in the journal. Errors:
// ErrNotRunning, ErrNoPrompt, ErrAnswered, ErrBadAnswer.
func (e *Engine) Answer(service string, ans Answer, who string) error {
	if ans != Rollback && ans != Continue {
		return ErrBadAnswer
	}
	r := e.runningRun(service)
	if r == nil {
		return ErrNotRunning
	}
	r.mu.Lock()
	op := r.prompt
	r.mu.Unlock()
	if op == nil {
		return ErrNoPrompt
	}
	if !op.offer(answer{ans, who}) {
		return ErrAnswered
	}
	return nil
}

// Abort asks the deploy of service running in this engine to start no new
// host and, once the hosts in flight finish, to ask whether to roll back.
// Errors: ErrNotRunning, ErrPromptOpen (answer the question instead).
func (e *Engine) Abort(service string) error {
	r := e.runningRun(service)
	if r == nil {
		return ErrNotRunning
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prompt != nil {
		return ErrPromptOpen
	}
	if !stopped(r.abort) {
		close(r.abort)
	}
	return nil
}

// ask puts a question to the operator and waits for an answer (Answer, or
// the run's Prompter) until the service's prompt_timeout; no answer is
// the default, Rollback.
func (r *run) ask(ctx context.Context, kind, group, text string) Answer {
	p := Prompt{Service: r.svc.Name, DeployID: r.id, Kind: kind, Group: group, Text: text, Default: Rollback,
		Deadline: time.Now().Add(r.svc.PromptTimeout.D())}
	ans, _ := r.askPrompt(ctx, p)
	return ans
}

// askPrompt asks p and waits for an answer until p.Deadline. For a
// recovery run (the question an interrupted deploy was asking) a deadline
// that passed while no process ran the deploy takes the default at once,
// without asking again.
func (r *run) askPrompt(ctx context.Context, p Prompt) (Answer, string) {
	if r.recovery && !time.Now().Before(p.Deadline) {
		return r.answered(p, answer{p.Default, AnsweredByMissed})
	}
	op := &openPrompt{p: p, ch: make(chan answer, 1)}
	r.mu.Lock()
	r.prompt = op
	prevStage := r.stage
	r.stage = StageWaiting
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.prompt = nil
		r.stage = prevStage
		r.mu.Unlock()
	}()
	r.journal(journal.Event{Type: journal.TypePrompt, Group: p.Group, Prompt: p.Text, Message: p.Kind, Deadline: p.Deadline.UTC()})
	r.emit(Event{Type: EventPrompt, Group: p.Group, Prompt: &p, From: r.from, To: r.sha, Recovery: r.recovery})

	actx, cancel := context.WithDeadline(ctx, p.Deadline)
	defer cancel()
	if r.p != nil {
		go func() {
			a, err := r.p.Ask(actx, p)
			switch {
			case actx.Err() != nil:
			case err == nil && (a == Rollback || a == Continue):
				op.offer(answer{a, r.who})
			default: // the prompter gives up (no terminal): the default now
				op.offer(answer{p.Default, AnsweredByDefault})
			}
		}()
	}
	a := answer{p.Default, AnsweredByTimeout}
	select {
	case a = <-op.ch:
	case <-actx.Done():
		if ctx.Err() != nil {
			a.who = AnsweredByCanceled
		}
	}
	return r.answered(p, a)
}

// answered journals and reports the answer a to p.
func (r *run) answered(p Prompt, a answer) (Answer, string) {
	r.journal(journal.Event{Type: journal.TypeAnswer, Group: p.Group, Answer: string(a.ans), Who: a.who})
	r.emit(Event{Type: EventAnswer, Group: p.Group, Prompt: &p, Answer: a.ans, Who: a.who, From: r.from, To: r.sha, Recovery: r.recovery})
	r.e.log.Info("prompt answered", "deploy", r.id, "kind", p.Kind, "answer", a.ans, "who", a.who)
	return a.ans, a.who
}

// String is "canary_failed: canary failed: … (default rollback at 01:45:12 UTC)".
func (p Prompt) String() string {
	return fmt.Sprintf("%s: %s (default %s at %s)", p.Kind, p.Text, p.Default, p.Deadline.UTC().Format("15:04:05 UTC"))
}
