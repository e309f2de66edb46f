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
	s.sayKeyed("#ops", "progress:1", "eqiad 10/100 done")
	s.say("#ops", "reply")
	s.sayKeyed("#ops", "progress:1", "eqiad 50/100 done")
	var got []string
	for _, l := range s.queue {
		got = append(got, l.text)
	}
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
		s.say("#ops", "reply "+string(rune('a'+i%26)))
	}
	for range 100 {
		s.sayKeyed("#ops", "", "citoid: eqiad 10/10 ok")
	}
	if n := len(s.queue); n > 50 {
		t.Fatalf("queue grew to %d lines; notices were not merged", n)
	}
	notices, merged := 0, 0
	for _, l := range s.queue {
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
	for _, l := range s.queue {
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

	s.say("#ops", "one")
	s.say("#ops", "two")
	waitFor(t, "two lines", func() bool { return len(w.lines()) == 2 })
	s.echoed("#OPS", "one") // channel names fold
	w.set(false)
	s.say("#ops", "three")
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
	s.say("#ops", "one")
	waitFor(t, "one line", func() bool { return len(w.lines()) == 1 })
	s.reconnected()
	time.Sleep(50 * time.Millisecond)
	if got := w.lines(); len(got) != 1 {
		t.Fatalf("sent = %q", got)
	}
}
