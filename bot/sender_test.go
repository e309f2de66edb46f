package bot

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// switchWire is a wire that can be taken down, recording what it sends.
type switchWire struct {
	mu   sync.Mutex
	up   bool
	sent []string
}

func (w *switchWire) CanSend(string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up
}

func (w *switchWire) Privmsg(target, text string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, text)
	return nil
}

func (w *switchWire) set(up bool) {
	w.mu.Lock()
	w.up = up
	w.mu.Unlock()
}

func (w *switchWire) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sent...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSenderKeyedNoticeReplaces(t *testing.T) {
	s := newSender(&switchWire{}, 1, 1, slog.New(slog.DiscardHandler))
	s.notify("#ops", PriorityDeploy, "progress:1", "eqiad 10/100 done")
	s.say("#ops", PriorityDeploy, "reply")
	s.notify("#ops", PriorityDeploy, "progress:1", "eqiad 50/100 done")
	got := s.waiting()
	if strings.Join(got, "|") != "eqiad 50/100 done|reply" {
		t.Fatalf("queue = %q", got)
	}
}

// Once the queue holds more than the bucket drains in a minute, notices
// are merged into waiting lines instead of queued; replies never are.
func TestSenderMergesNoticesWhenBackedUp(t *testing.T) {
	s := newSender(&switchWire{}, 0.5, 5, slog.New(slog.DiscardHandler))
	if s.backlog != 35 {
		t.Fatalf("backlog = %d, want 35 (burst 5 + 30 lines a minute)", s.backlog)
	}
	for i := range 35 {
		s.say("#ops", PriorityDeploy, "reply "+string(rune('a'+i%26)))
	}
	for range 100 {
		s.notify("#ops", PriorityDeploy, "", "citoid: eqiad 10/10 ok")
	}
	q := s.waitingLines()
	if n := len(q); n > 50 {
		t.Fatalf("queue grew to %d lines; notices were not merged", n)
	}
	notices, merged := 0, 0
	for _, l := range q {
		if l.notice {
			notices += strings.Count(l.text, "eqiad 10/10 ok")
			if strings.Contains(l.text, " · ") {
				merged++
			}
		} else if !strings.HasPrefix(l.text, "reply ") {
			t.Fatalf("a reply was changed: %q", l.text)
		}
	}
	if notices != 100 || merged == 0 {
		t.Fatalf("notices kept = %d (want all 100, merged into %d lines)", notices, merged)
	}
	for _, l := range q {
		if len(l.text) > s.budget("#ops") {
			t.Fatalf("merged line over budget: %d bytes", len(l.text))
		}
	}
}

// A line sent just before the connection dropped and never echoed is sent
// again after the reconnect; an echoed line is not.
func TestSenderResendsUnechoedAfterReconnect(t *testing.T) {
	w := &switchWire{up: true}
	s := newSender(w, 1000, 100, slog.New(slog.DiscardHandler))
	s.setEcho(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)

	s.say("#ops", PriorityNormal, "one")
	s.say("#ops", PriorityNormal, "two")
	waitFor(t, "two lines", func() bool { return len(w.lines()) == 2 })
	s.echoed("#OPS", "one") // channel names fold
	w.set(false)
	s.say("#ops", PriorityNormal, "three")
	time.Sleep(50 * time.Millisecond)
	if got := w.lines(); len(got) != 2 {
		t.Fatalf("sent while down: %q", got)
	}
	s.reconnected()
	w.set(true)
	waitFor(t, "resend", func() bool { return len(w.lines()) == 4 })
	if got := strings.Join(w.lines(), "|"); got != "one|two|two|three" {
		t.Fatalf("sent = %q, want one|two|two|three", got)
	}
	s.echoed("#ops", "two")
	s.echoed("#ops", "three")
	if n := s.pending(); n != 0 {
		t.Fatalf("pending = %d after every echo", n)
	}
}

// Without echo-message a sent line is done with at once.
func TestSenderWithoutEcho(t *testing.T) {
	w := &switchWire{up: true}
	s := newSender(w, 1000, 100, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	s.say("#ops", PriorityNormal, "one")
	waitFor(t, "one line", func() bool { return len(w.lines()) == 1 })
	s.reconnected()
	time.Sleep(50 * time.Millisecond)
	if got := w.lines(); len(got) != 1 {
		t.Fatalf("sent = %q", got)
	}
}

// waitingLines returns the waiting lines in the order take would send
// them if every target could be sent to, leaving them queued.
func (s *sender) waitingLines() []line {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := s.classes
	for p := range s.classes {
		c := &s.classes[p]
		cp := class{next: c.next, n: c.n, queues: map[string]*queue{}, perTarget: map[string]int{}, dropped: map[string]int{}}
		for _, q := range c.ring {
			q2 := &queue{key: q.key, target: q.target, lines: append([]line(nil), q.lines...)}
			cp.ring = append(cp.ring, q2)
			cp.queues[q.key] = q2
		}
		for k, v := range c.perTarget {
			cp.perTarget[k] = v
		}
		for k, v := range c.dropped {
			cp.dropped[k] = v
		}
		s.classes[p] = cp
	}
	w := s.w
	s.w = &switchWire{up: true}
	var out []line
	for {
		l, ok := s.takeLocked()
		if !ok {
			break
		}
		out = append(out, l)
	}
	s.classes, s.w = saved, w
	return out
}

// waiting is the text of waitingLines.
func (s *sender) waiting() []string {
	var out []string
	for _, l := range s.waitingLines() {
		out = append(out, l.text)
	}
	return out
}
