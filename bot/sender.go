package bot

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// line is one message waiting to be sent.
type line struct {
	target string
	text   string
}

// wire is the part of an IRC connection the sender needs.
type wire interface {
	Connected() bool
	Privmsg(target, text string) error
}

// sender paces every line the bot sends through one token bucket, so a
// server with flood protection never disconnects the bot. Lines wait while
// the connection is down and go out, in order, once it is back.
type sender struct {
	w     wire
	lim   *rate.Limiter
	queue chan line
	log   *slog.Logger
}

func newSender(w wire, perSecond float64, burst int, log *slog.Logger) *sender {
	return &sender{
		w:     w,
		lim:   rate.NewLimiter(rate.Limit(perSecond), burst),
		queue: make(chan line, 1024),
		log:   log,
	}
}

// say queues text for target, sanitized and split to fit one line each.
func (s *sender) say(target, text string) {
	for _, part := range splitText(sanitize(text), textBudget(target, maxPrefixLen)) {
		select {
		case s.queue <- line{target, part}:
		default:
			s.log.Warn("output queue full; line dropped", "target", target, "text", part)
		}
	}
}

// run sends queued lines until ctx is done.
func (s *sender) run(ctx context.Context) {
	for {
		var l line
		select {
		case <-ctx.Done():
			return
		case l = <-s.queue:
		}
		for {
			if err := s.lim.Wait(ctx); err != nil {
				return
			}
			if s.w.Connected() {
				if err := s.w.Privmsg(l.target, l.text); err == nil {
					break
				} else {
					s.log.Warn("send failed; will retry", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}
