package bot

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Command scheduling (SPEC §8, load and floods). Commands run in lanes: a
// lane runs its commands one at a time, in the order they came, and lanes
// run side by side. Each sender has a lane of its own, so commands from
// different senders never wait behind each other; the commands that change
// a service (command.mutates), sent by a deployer of that service, run in
// the service's lane instead, so they are serialized per service across
// senders and never wait behind their sender's other commands.
//
// Each sender may have maxPending commands pending: from when one arrives
// to when it is done. Beyond that the sender is told once to slow down and
// its commands are dropped until its backlog clears: until none of its
// commands is pending. For an anonymous sender (no services account, not
// a deployer by hostmask) the commands dropped count too, one each,
// leaking one per anonLeak: the IRC server passes a flood on at about a
// line a second, and commands that finish in a millisecond would
// otherwise clear the backlog between two lines of it, so the flood would
// be answered every time. As it is, a flood that overruns the bound is
// ignored until it stops.
//
// Non-deployers' commands share maxOthersBusy workers, so however many
// identities a flood uses, the bot does only so much work for it at a
// time; deployers never wait for those workers.

const (
	// maxPending is how many commands one sender may have pending.
	maxPending = 3
	// anonLeak is how long a dropped command of an anonymous sender
	// keeps their backlog from clearing.
	anonLeak = 5 * time.Second
	// maxAnonDropped caps what the dropped commands of an anonymous
	// sender count for, so their backlog clears at most
	// maxAnonDropped×anonLeak after they stop.
	maxAnonDropped = 2 * maxPending
	// maxOthersBusy is how many non-deployer commands run at once.
	maxOthersBusy = 16
)

// scheduler runs commands in lanes and keeps each sender's backlog.
type scheduler struct {
	// run runs one command; slowDown tells the sender of a command that
	// it is dropped and why (once per backlog).
	run      func(ctx context.Context, r *request)
	slowDown func(r *request)
	now      func() time.Time

	ctx    context.Context // set by start; nil until then
	wg     sync.WaitGroup
	others chan struct{} // maxOthersBusy tokens

	mu      sync.Mutex
	senders map[string]*backlog // by request.who
	lanes   map[string]*lane
	pruned  time.Time // when senders was last rid of cleared backlogs
}

// backlog is one sender's pending commands.
type backlog struct {
	running int // accepted and not done
	// dropped is what an anonymous sender's dropped commands count for;
	// it leaks one per anonLeak.
	dropped float64
	at      time.Time // when dropped was last brought up to date
	warned  bool      // told to slow down since the backlog last cleared
	// anonymous: the sender has no account and is no deployer (as of
	// their last command): their backlog leaks slowly.
	anonymous bool
}

// lane is commands waiting to run one at a time.
type lane struct{ jobs []job }

type job struct {
	r      *request
	sender string
}

func newScheduler(run func(ctx context.Context, r *request), slowDown func(r *request)) *scheduler {
	return &scheduler{
		run:      run,
		slowDown: slowDown,
		now:      time.Now,
		others:   make(chan struct{}, maxOthersBusy),
		senders:  map[string]*backlog{},
		lanes:    map[string]*lane{},
	}
}

// start lets commands run until ctx is done.
func (s *scheduler) start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
}

// wait waits for the running commands to return (after ctx is done).
func (s *scheduler) wait() { s.wg.Wait() }

// settleLocked brings b up to date: the leak of dropped commands, and
// whether the backlog has cleared.
func (s *scheduler) settleLocked(b *backlog) {
	now := s.now()
	if !b.anonymous {
		b.dropped = 0
	} else if !b.at.IsZero() {
		b.dropped = max(0, b.dropped-float64(now.Sub(b.at))/float64(anonLeak))
	}
	b.at = now
	if b.clear() {
		b.warned = false
	}
}

// clear reports whether nothing of b's is pending.
func (b *backlog) clear() bool { return b.running == 0 && b.dropped == 0 }

// submit queues r in the lane named laneKey. control says r controls a
// deploy (a mutating command from a deployer of its service): it is
// never dropped, though it counts while it is pending. submit reports
// whether r was queued; when it was not, the sender has been told to
// slow down (once per backlog).
func (s *scheduler) submit(r *request, laneKey string, control bool) bool {
	who := r.who()
	s.mu.Lock()
	if s.ctx == nil || s.ctx.Err() != nil {
		s.mu.Unlock()
		return false
	}
	s.pruneLocked()
	b := s.senders[who]
	if b == nil {
		b = &backlog{}
		s.senders[who] = b
	}
	b.anonymous = r.anonymous()
	s.settleLocked(b)
	if !control && (b.warned || b.running >= maxPending) {
		warn := !b.warned
		b.warned = true
		if b.anonymous {
			b.dropped = min(b.dropped+1, maxAnonDropped)
		}
		s.mu.Unlock()
		if warn {
			s.slowDown(r)
		}
		return false
	}
	b.running++
	l := s.lanes[laneKey]
	if l == nil {
		l = &lane{}
		s.lanes[laneKey] = l
		ctx := s.ctx
		s.wg.Go(func() { s.drain(ctx, laneKey, l) })
	}
	l.jobs = append(l.jobs, job{r: r, sender: who})
	s.mu.Unlock()
	return true
}

// drain runs the jobs of lane l until it is empty, then forgets it.
func (s *scheduler) drain(ctx context.Context, key string, l *lane) {
	for {
		s.mu.Lock()
		if len(l.jobs) == 0 {
			delete(s.lanes, key)
			s.mu.Unlock()
			return
		}
		j := l.jobs[0]
		l.jobs = l.jobs[1:]
		s.mu.Unlock()
		s.runJob(ctx, j)
		s.done(j)
	}
}

func (s *scheduler) runJob(ctx context.Context, j job) {
	if ctx.Err() != nil {
		return
	}
	if !j.r.deployer {
		select {
		case s.others <- struct{}{}:
			defer func() { <-s.others }()
		case <-ctx.Done():
			return
		}
	}
	s.run(ctx, j.r)
}

// done takes j off its sender's backlog.
func (s *scheduler) done(j job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.senders[j.sender]
	if b == nil {
		return
	}
	b.running--
	s.settleLocked(b)
	if b.clear() {
		delete(s.senders, j.sender)
	}
}

// pruneLocked forgets, at most once per anonLeak, the backlogs that
// have cleared since their sender's last command, so the table does not
// grow with every identity that ever spoke.
func (s *scheduler) pruneLocked() {
	now := s.now()
	if now.Sub(s.pruned) < anonLeak {
		return
	}
	s.pruned = now
	for who, b := range s.senders {
		s.settleLocked(b)
		if b.clear() {
			delete(s.senders, who)
		}
	}
}

// anonymous reports whether r's sender is neither logged in to a services
// account nor a deployer.
func (r *request) anonymous() bool {
	return !r.deployer && (r.account == "" || r.account == "*")
}

// who identifies the sender of r for the pending-command bound: the
// services account when there is one (as the server spells it: the tag
// always carries its canonical form), else nick!user@host.
func (r *request) who() string {
	if r.account != "" && r.account != "*" {
		return "account:" + r.account
	}
	return "mask:" + strings.ToLower(r.nick+"!"+r.user+"@"+r.host)
}
