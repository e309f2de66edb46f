package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"deploybot/config"
)

// Priority is the class of an outgoing line. Every line goes through one
// token bucket; when a token is free the line sent is the oldest waiting
// one of the highest class, so a line never waits behind a lower class.
type Priority int

const (
	// PriorityUrgent is for deploy prompts and deploy failures. Such a
	// line is never dropped, never merged with another and never waits
	// behind a line of another class.
	PriorityUrgent Priority = iota
	// PriorityDeploy is for the other deploy notices and for replies to
	// deployers.
	PriorityDeploy
	// PriorityNormal is for everything else: replies to other users. Its
	// queue for each target is bounded; when it is full the oldest lines
	// are dropped.
	PriorityNormal

	numPriorities = 3
)

func (p Priority) String() string {
	switch p {
	case PriorityUrgent:
		return "urgent"
	case PriorityDeploy:
		return "deploy"
	case PriorityNormal:
		return "normal"
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

// line is one message waiting to be sent.
type line struct {
	target string
	prio   Priority
	text   string
	// fn, when set, computes the text when the line is about to be sent
	// (text is then empty until it is).
	fn func() string
	// key names a line that a newer one with the same key (for the same
	// target and class) replaces while it waits; "" for none.
	key string
	// notice: a deploy notification, which may be merged with the next
	// one when the queue backs up. Replies are never merged that way.
	notice bool
	// origin is who a reply answers (an identity, see request.who); ""
	// for lines that answer nobody. A reply identical to one waiting for
	// the same target is dropped: the waiting one says it.
	origin string
	sent   time.Time // when it went out (lines awaiting their echo)
}

// wire is the part of an IRC connection the sender needs.
type wire interface {
	// CanSend reports whether a line to target can go out now: the
	// connection is up and, for a channel, the bot is in it.
	CanSend(target string) bool
	Privmsg(target, text string) error
}

// sender paces every line the bot sends through one token bucket, so a
// server with flood protection never disconnects the bot. Lines wait while
// the connection is down (or the channel not joined) and go out once it is
// back.
//
// Lines have a Priority. Each class holds one queue per target (for
// PriorityNormal, per target and origin, so one user's answers do not
// wait behind another's); the queues of a class take turns, and within a
// queue lines keep their order. Identical replies waiting for the same
// target are sent once; a keyed line replaces the waiting one with its
// key; a line given as a function is computed when it is sent.
//
// When the server echoes the bot's messages (IRCv3 echo-message), a line
// counts as delivered only when its echo comes back: lines sent just before
// a disconnect and never echoed are sent again after the reconnect, so a
// notification is neither lost nor, once echoed, repeated.
//
// When the deploy lines back up beyond what the bucket drains in about a
// minute, deploy notices are merged into one line each rather than queued
// for minutes.
type sender struct {
	w   wire
	lim *rate.Limiter
	log *slog.Logger
	// backlog is the number of waiting lines of PriorityUrgent and
	// PriorityDeploy beyond which deploy notices are merged. It is also
	// the bound of the PriorityNormal lines waiting for one target.
	backlog int
	budget  func(target string) int

	mu       sync.Mutex
	classes  [numPriorities]class
	inflight []line // sent, awaiting their echo
	echo     bool   // the server echoes our messages
	wake     chan struct{}

	sent func() // called for every line written, if set (metrics)
}

// class is the lines of one Priority: queues that take turns.
type class struct {
	queues map[string]*queue // by queue key
	ring   []*queue          // the queues with lines, in turn order
	next   int               // index in ring of the queue whose turn it is
	n      int               // lines waiting
	// perTarget counts the waiting lines of each (folded) target.
	perTarget map[string]int
}

// queue is the waiting lines of one class for one target (and origin).
type queue struct {
	key    string
	target string
	lines  []line
	// dropped is how many of its lines were dropped since one went out;
	// a note says so in the queue's next turn.
	dropped int
}

// maxQueue bounds the PriorityDeploy lines waiting for one target; beyond
// it new ones are dropped (and logged). Notices are merged long before.
const maxQueue = 1024

// minNormalQueue is the least bound of the PriorityNormal lines waiting
// for one target.
const minNormalQueue = 8

// echoWait is how long a sent line waits for its echo before it counts as
// delivered anyway.
const echoWait = 30 * time.Second

func newSender(w wire, perSecond float64, burst int, log *slog.Logger) *sender {
	return &sender{
		w:       w,
		lim:     rate.NewLimiter(rate.Limit(perSecond), burst),
		log:     log,
		backlog: burst + int(perSecond*60),
		budget:  func(target string) int { return textBudget(target, maxPrefixLen) },
		wake:    make(chan struct{}, 1),
	}
}

// say queues text for target, sanitized and split to fit one line each.
func (s *sender) say(target string, p Priority, text string) {
	s.put(line{target: target, prio: p, text: text})
}

// sayKeyed queues text for target; with a key, it replaces the waiting
// line of target with that key, keeping its place.
func (s *sender) sayKeyed(target string, p Priority, key, text string) {
	s.put(line{target: target, prio: p, key: key, text: text})
}

// sayFunc queues a line for target whose text fn computes when the line
// is about to be sent (so it describes the state of that moment); with a
// key it replaces the waiting line of target with that key. fn runs on
// the sending goroutine and must be quick: no I/O, no waiting.
func (s *sender) sayFunc(target string, p Priority, key string, fn func() string) {
	s.put(line{target: target, prio: p, key: key, fn: fn})
}

// notify queues a deploy notice: like sayKeyed, and merged into the
// previous waiting notice for target when the deploy lines back up.
// Urgent notices are never merged.
func (s *sender) notify(target string, p Priority, key, text string) {
	s.put(line{target: target, prio: p, key: key, text: text, notice: true})
}

// queueKey is the queue l waits in within its class.
func queueKey(l *line) string {
	k := config.FoldName(l.target)
	if l.prio == PriorityNormal {
		k += "\x00" + l.origin
	}
	return k
}

// put queues l, split to fit the target's budget (a line with fn is split
// when it is computed).
func (s *sender) put(l line) {
	if l.prio < PriorityUrgent || l.prio >= numPriorities {
		l.prio = PriorityNormal
	}
	var parts []string
	if l.fn == nil {
		parts = splitText(sanitize(l.text), s.budget(l.target))
		if len(parts) == 0 {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.classes[l.prio]
	qk := queueKey(&l)
	if l.key != "" && (l.fn != nil || len(parts) == 1) {
		if q := c.queues[qk]; q != nil {
			for i := range q.lines {
				if q.lines[i].key == l.key {
					if l.fn != nil {
						q.lines[i].text, q.lines[i].fn = "", l.fn
					} else {
						q.lines[i].text, q.lines[i].fn = parts[0], nil
					}
					return
				}
			}
		}
	}
	if l.fn != nil {
		if s.roomLocked(c, l) {
			s.addLocked(c, qk, l)
			s.poke()
		}
		return
	}
	for _, part := range parts {
		l.text = part
		if l.origin != "" && l.prio != PriorityUrgent && c.hasReplyLocked(l.target, part) {
			continue
		}
		if l.notice && l.prio != PriorityUrgent && s.deployWaitingLocked() >= s.backlog && s.mergeLocked(c, qk, part) {
			continue
		}
		if !s.roomLocked(c, l) {
			continue
		}
		s.addLocked(c, qk, l)
	}
	s.poke()
}

// hasReplyLocked reports whether a reply with text waits for target in c.
func (c *class) hasReplyLocked(target, text string) bool {
	for _, q := range c.ring {
		if !sameName(q.target, target) {
			continue
		}
		for _, w := range q.lines {
			if w.origin != "" && w.fn == nil && w.text == text {
				return true
			}
		}
	}
	return false
}

// deployWaitingLocked is the number of lines that go out before a new
// PriorityDeploy line.
func (s *sender) deployWaitingLocked() int {
	return s.classes[PriorityUrgent].n + s.classes[PriorityDeploy].n
}

// roomLocked makes room for l in c if its class is bounded, and reports
// whether l may be queued.
func (s *sender) roomLocked(c *class, l line) bool {
	tk := config.FoldName(l.target)
	switch l.prio {
	case PriorityDeploy:
		if c.perTarget[tk] >= maxQueue {
			s.log.Warn("output queue full; line dropped", "target", l.target, "text", l.text)
			return false
		}
	case PriorityNormal:
		limit := max(s.backlog, minNormalQueue)
		for c.perTarget[tk] >= limit {
			// Drop the oldest line of the target's longest queue: the
			// lines of whoever asks the most go first.
			var longest *queue
			for _, q := range c.ring {
				if config.FoldName(q.target) == tk && (longest == nil || len(q.lines) > len(longest.lines)) {
					longest = q
				}
			}
			if longest == nil {
				break
			}
			s.log.Debug("output queue full; oldest line dropped", "target", l.target, "text", longest.lines[0].text)
			if _, removed := c.popLocked(longest); !removed {
				longest.dropped++
			}
		}
	}
	return true
}

// addLocked appends l to its queue in c.
func (s *sender) addLocked(c *class, qk string, l line) {
	q := c.queueLocked(qk, l.target)
	q.lines = append(q.lines, l)
	c.countLocked(l.target, 1)
}

// pushFrontLocked puts l back at the head of its queue.
func (s *sender) pushFrontLocked(l line) {
	c := &s.classes[l.prio]
	q := c.queueLocked(queueKey(&l), l.target)
	q.lines = append([]line{l}, q.lines...)
	c.countLocked(l.target, 1)
}

// queueLocked returns the queue with key qk, adding it (last in turn)
// when there is none.
func (c *class) queueLocked(qk, target string) *queue {
	if q := c.queues[qk]; q != nil {
		return q
	}
	if c.queues == nil {
		c.queues = map[string]*queue{}
		c.perTarget = map[string]int{}
	}
	q := &queue{key: qk, target: target}
	c.queues[qk] = q
	c.ring = append(c.ring, q)
	return q
}

func (c *class) countLocked(target string, d int) {
	c.n += d
	tk := config.FoldName(target)
	c.perTarget[tk] += d
	if c.perTarget[tk] == 0 {
		delete(c.perTarget, tk)
	}
}

// popLocked removes the head of q, and q itself from the turns once it
// is empty (then removed is true).
func (c *class) popLocked(q *queue) (l line, removed bool) {
	l = q.lines[0]
	q.lines = q.lines[1:]
	c.countLocked(q.target, -1)
	if len(q.lines) > 0 {
		return l, false
	}
	delete(c.queues, q.key)
	for i, r := range c.ring {
		if r == q {
			c.ring = append(c.ring[:i], c.ring[i+1:]...)
			if c.next > i {
				c.next--
			}
			break
		}
	}
	if c.next >= len(c.ring) {
		c.next = 0
	}
	return l, true
}

// mergeLocked appends text to the last waiting notice of queue qk when
// the two fit in one line.
func (s *sender) mergeLocked(c *class, qk, text string) bool {
	q := c.queues[qk]
	if q == nil {
		return false
	}
	for i := len(q.lines) - 1; i >= 0; i-- {
		l := &q.lines[i]
		if !l.notice || l.fn != nil {
			continue
		}
		merged := l.text + " · " + text
		if len(merged) > s.budget(l.target) {
			return false
		}
		l.text, l.key = merged, ""
		return true
	}
	return false
}

func (s *sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// setEcho says whether the server echoes the bot's messages.
func (s *sender) setEcho(on bool) {
	s.mu.Lock()
	s.echo = on
	if !on {
		s.inflight = nil
	}
	s.mu.Unlock()
}

// echoed marks the oldest line in flight to target with text as delivered.
func (s *sender) echoed(target, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.inflight {
		if sameName(l.target, target) && l.text == text {
			s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
			return
		}
	}
}

// reconnected puts the lines sent but never echoed back at the head of
// their queues, in their order: the connection they went out on is gone.
func (s *sender) reconnected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) == 0 {
		return
	}
	s.log.Info("resending lines not confirmed before the disconnect", "count", len(s.inflight))
	for i := len(s.inflight) - 1; i >= 0; i-- {
		l := s.inflight[i]
		l.sent = time.Time{}
		s.pushFrontLocked(l)
	}
	s.inflight = nil
	s.poke()
}

// pending is the number of lines waiting or awaiting their echo.
func (s *sender) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.inflight)
	for i := range s.classes {
		n += s.classes[i].n
	}
	return n
}

// run sends queued lines until ctx is done.
func (s *sender) run(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s.expireEchoes()
		if !s.ready() {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-tick.C:
			}
			continue
		}
		if err := s.lim.Wait(ctx); err != nil {
			return
		}
		// Choose the line now that the token is ours: a more urgent one
		// may have come while we waited.
		l, ok := s.take()
		if !ok {
			continue
		}
		err := s.w.Privmsg(l.target, l.text)
		if err == nil && s.sent != nil {
			s.sent()
		}
		if err != nil {
			s.log.Warn("send failed; will retry", "err", err)
			s.mu.Lock()
			for i := range s.inflight {
				if s.inflight[i].sent.Equal(l.sent) && s.inflight[i].text == l.text {
					s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
					break
				}
			}
			l.sent = time.Time{}
			s.pushFrontLocked(l)
			s.mu.Unlock()
		}
	}
}

// ready reports whether a line could go out now.
func (s *sender) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.classes {
		for _, q := range s.classes[p].ring {
			if s.w.CanSend(q.target) {
				return true
			}
		}
	}
	return false
}

// take removes the line to send now and returns it with its text: the
// head of the queue whose turn it is in the highest class with a line
// that can go out. A line sent while the server echoes waits for its echo
// from before it is written, so an echo can never come back before it is
// expected.
func (s *sender) take() (line, bool) {
	for {
		s.mu.Lock()
		l, ok := s.takeLocked()
		if !ok || l.fn == nil {
			s.inflightLocked(&l, ok)
			s.mu.Unlock()
			return l, ok
		}
		s.mu.Unlock()
		// Compute the text outside the lock: fn may take locks of its
		// own that are held while lines are queued.
		parts := splitText(sanitize(l.fn()), s.budget(l.target))
		s.mu.Lock()
		if len(parts) == 0 {
			s.mu.Unlock()
			continue
		}
		l.fn, l.text = nil, parts[0]
		for i := len(parts) - 1; i > 0; i-- {
			rest := l
			rest.text, rest.key = parts[i], ""
			s.pushFrontLocked(rest)
		}
		s.inflightLocked(&l, true)
		s.mu.Unlock()
		return l, true
	}
}

func (s *sender) inflightLocked(l *line, ok bool) {
	if ok && s.echo {
		l.sent = time.Now()
		s.inflight = append(s.inflight, *l)
	}
}

// takeLocked removes the next line to send (see take); a line given as a
// function is returned uncomputed.
func (s *sender) takeLocked() (line, bool) {
	for p := range s.classes {
		c := &s.classes[p]
		for i := range c.ring {
			idx := (c.next + i) % len(c.ring)
			q := c.ring[idx]
			if !s.w.CanSend(q.target) {
				continue
			}
			if n := q.dropped; n > 0 {
				q.dropped = 0
				c.next = (idx + 1) % len(c.ring)
				return line{target: q.target, prio: Priority(p), text: fmt.Sprintf("(%d line%s dropped)", n, plural(n))}, true
			}
			l, removed := c.popLocked(q)
			switch {
			case len(c.ring) == 0:
				c.next = 0
			case removed:
				c.next = idx % len(c.ring) // the queue after q
			default:
				c.next = (idx + 1) % len(c.ring)
			}
			return l, true
		}
	}
	return line{}, false
}

// expireEchoes forgets lines whose echo is overdue while the connection is
// up: they count as delivered. While it is down they wait for
// reconnected.
func (s *sender) expireEchoes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.inflight) > 0 && time.Since(s.inflight[0].sent) > echoWait && s.w.CanSend(s.inflight[0].target) {
		s.inflight = s.inflight[1:]
	}
}
