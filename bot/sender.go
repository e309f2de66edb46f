package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// line is one message waiting to be sent.
type line struct {
	target string
	text   string
	// key names a notice that a newer one with the same key replaces
	// while it waits (progress lines); "" for none.
	key string
	// notice: a deploy notification, which may be merged with the next
	// one when the queue backs up. Replies to commands are never merged.
	notice bool
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
// the connection is down (or the channel not joined) and go out, in order,
// once it is back.
//
// When the server echoes the bot's messages (IRCv3 echo-message), a line
// counts as delivered only when its echo comes back: lines sent just before
// a disconnect and never echoed are sent again after the reconnect, so a
// notification is neither lost nor, once echoed, repeated.
//
// When the queue backs up beyond what the bucket drains in about a
// minute, deploy notices are merged into one line each rather than queued
// for minutes; a keyed notice replaces the older one with its key.
type sender struct {
	w   wire
	lim *rate.Limiter
	log *slog.Logger
	// backlog is the queue length beyond which notices are merged.
	backlog int
	budget  func(target string) int

	mu       sync.Mutex
	queue    []line
	inflight []line // sent, awaiting their echo
	echo     bool   // the server echoes our messages
	wake     chan struct{}
}

// maxQueue bounds the lines waiting; beyond it new lines are dropped (and
// logged).
const maxQueue = 1024

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
func (s *sender) say(target, text string) { s.enqueue(target, "", text, false) }

// sayKeyed queues a notice; with a key, it replaces a waiting notice with
// the same key.
func (s *sender) sayKeyed(target, key, text string) { s.enqueue(target, key, text, true) }

func (s *sender) enqueue(target, key, text string, notice bool) {
	parts := splitText(sanitize(text), s.budget(target))
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" && len(parts) == 1 {
		for i := range s.queue {
			if s.queue[i].key == key {
				s.queue[i].text = parts[0]
				return
			}
		}
	}
	for _, part := range parts {
		if notice && len(s.queue) >= s.backlog && s.mergeLocked(target, part) {
			continue
		}
		if len(s.queue) >= maxQueue {
			s.log.Warn("output queue full; line dropped", "target", target, "text", part)
			continue
		}
		s.queue = append(s.queue, line{target: target, text: part, key: key, notice: notice})
	}
	s.poke()
}

// mergeLocked appends text to the last waiting notice for target when the
// two fit in one line.
func (s *sender) mergeLocked(target, text string) bool {
	for i := len(s.queue) - 1; i >= 0; i-- {
		l := &s.queue[i]
		if !l.notice || l.target != target {
			continue
		}
		merged := l.text + " · " + text
		if len(merged) > s.budget(target) {
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

// reconnected puts the lines sent but never echoed back at the head of the
// queue: the connection they went out on is gone.
func (s *sender) reconnected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) == 0 {
		return
	}
	s.log.Info("resending lines not confirmed before the disconnect", "count", len(s.inflight))
	s.queue = append(append([]line(nil), s.inflight...), s.queue...)
	s.inflight = nil
	s.poke()
}

// pending is the number of lines waiting or awaiting their echo.
func (s *sender) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + len(s.inflight)
}

// run sends queued lines until ctx is done.
func (s *sender) run(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s.expireEchoes()
		l, ok := s.head()
		if !ok || !s.w.CanSend(l.target) {
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
		// Take the head now: it may have been replaced or merged while we
		// waited. It waits for its echo from before it is written, so an
		// echo can never come back before it is expected.
		s.mu.Lock()
		if len(s.queue) == 0 || !s.w.CanSend(s.queue[0].target) {
			s.mu.Unlock()
			continue
		}
		l = s.queue[0]
		s.queue = s.queue[1:]
		if s.echo {
			l.sent = time.Now()
			s.inflight = append(s.inflight, l)
		}
		s.mu.Unlock()
		if err := s.w.Privmsg(l.target, l.text); err != nil {
			s.log.Warn("send failed; will retry", "err", err)
			s.mu.Lock()
			for i := range s.inflight {
				if s.inflight[i].sent.Equal(l.sent) && s.inflight[i].text == l.text {
					s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
					break
				}
			}
			s.queue = append([]line{l}, s.queue...)
			s.mu.Unlock()
		}
	}
}

func (s *sender) head() (line, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return line{}, false
	}
	return s.queue[0], true
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
