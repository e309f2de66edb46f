package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"deploybot/e2e/scale"
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
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(scale.D(10 * time.Millisecond))
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
	time.Sleep(scale.D(50 * time.Millisecond))
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
	time.Sleep(scale.D(50 * time.Millisecond))
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
		cp := class{next: c.next, n: c.n, queues: map[string]*queue{}, perTarget: map[string]int{}}
		for _, q := range c.ring {
			q2 := &queue{key: q.key, target: q.target, lines: append([]line(nil), q.lines...), dropped: q.dropped}
			cp.ring = append(cp.ring, q2)
			cp.queues[q.key] = q2
		}
		for k, v := range c.perTarget {
			cp.perTarget[k] = v
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

// timedWire records what is sent and when.
type timedWire struct {
	mu    sync.Mutex
	sent  []string
	times []time.Time
}

func (w *timedWire) CanSend(string) bool { return true }

func (w *timedWire) Privmsg(target, text string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, target+" "+text)
	w.times = append(w.times, time.Now())
	return nil
}

func (w *timedWire) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sent...)
}

func runSender(t *testing.T, s *sender) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A prompt queued after a hundred other lines goes out next, before a
// deploy notice queued before it, and both before the rest.
func TestSenderUrgentFirst(t *testing.T) {
	w := &timedWire{}
	s := newSender(w, 20, 1, quiet())
	runSender(t, s)
	for i := range 100 {
		s.put(line{target: "#ops", prio: PriorityNormal, origin: "mallory", text: fmt.Sprintf("mallory: status %d", i)})
	}
	s.notify("#ops", PriorityDeploy, "", "citoid: eqiad 10/10 ok")
	s.notify("#ops", PriorityUrgent, "", "alice: roll back citoid? !rollback citoid / !continue citoid")
	waitFor(t, "four lines", func() bool { return len(w.lines()) >= 4 })
	got := w.lines()
	// The first normal line may have gone out before the others were
	// queued; then come the prompt and the notice.
	i := 0
	if strings.HasPrefix(got[0], "#ops mallory:") {
		i = 1
	}
	if !strings.Contains(got[i], "roll back citoid?") || !strings.Contains(got[i+1], "eqiad 10/10 ok") {
		t.Fatalf("sent %q; want the prompt, then the notice, first", got)
	}
}

// Identical replies waiting for the same target are sent once, whoever
// they answer; other targets get their own; deploy notices are not
// replies and are all kept.
func TestSenderMergesIdenticalReplies(t *testing.T) {
	s := newSender(&switchWire{}, 1, 1, quiet())
	for _, origin := range []string{"a", "a", "a", "b"} {
		s.put(line{target: "#ops", prio: PriorityNormal, origin: origin, text: "citoid: idle"})
		s.put(line{target: "#dev", prio: PriorityNormal, origin: origin, text: "citoid: idle"})
		s.put(line{target: "#ops", prio: PriorityDeploy, origin: origin, text: "alice: citoid: idle"})
	}
	s.notify("#ops", PriorityDeploy, "", "citoid: eqiad 1/1 ok")
	s.notify("#ops", PriorityDeploy, "", "citoid: eqiad 1/1 ok")
	got := strings.Join(s.waiting(), "|")
	want := "alice: citoid: idle|citoid: eqiad 1/1 ok|citoid: eqiad 1/1 ok|citoid: idle|citoid: idle"
	if got != want {
		t.Fatalf("waiting %q, want %q", got, want)
	}
	// Once sent, the same answer may be given again.
	w := &timedWire{}
	s.w = w
	s.drainTo(w)
	s.put(line{target: "#ops", prio: PriorityNormal, origin: "a", text: "citoid: idle"})
	if n := s.pending(); n != 1 {
		t.Fatalf("pending = %d after a sent reply was asked again", n)
	}
}

// A keyed line replaces the waiting one with its key; a line given as a
// function says what holds when it is sent, split if it is long.
func TestSenderKeyedAndComputedLines(t *testing.T) {
	s := newSender(&switchWire{}, 1, 1, quiet())
	var state atomic.Value
	state.Store("idle")
	status := func() string { return "citoid: " + state.Load().(string) }
	s.sayFunc("#ops", PriorityNormal, "status", status)
	s.sayKeyed("#ops", PriorityNormal, "k", "old")
	s.sayFunc("#ops", PriorityNormal, "status", status)
	s.sayKeyed("#ops", PriorityNormal, "k", "new")
	s.sayFunc("#ops", PriorityNormal, "", func() string { return strings.Repeat("word ", 200) })
	state.Store("deploying")
	w := &timedWire{}
	s.w = w
	s.drainTo(w)
	got := w.lines()
	if len(got) < 4 || got[0] != "#ops citoid: deploying" || got[1] != "#ops new" {
		t.Fatalf("sent %q", got)
	}
	long := 0
	for _, l := range got[2:] {
		if len(l)-len("#ops ") > s.budget("#ops") {
			t.Fatalf("line over budget: %d bytes", len(l))
		}
		long += strings.Count(l, "word")
	}
	if long != 200 || len(got) < 4 {
		t.Fatalf("the long computed line lost words: %d of 200 in %d lines", long, len(got)-2)
	}
}

// Normal lines are bounded per target: when full, the oldest line of the
// user with the most waiting goes, and a note says how many went.
// Another user's answer and other targets are untouched.
func TestSenderNormalBoundDropsOldest(t *testing.T) {
	s := newSender(&switchWire{}, 0.1, 1, quiet()) // backlog 7: the bound is minNormalQueue
	s.put(line{target: "#ops", prio: PriorityNormal, origin: "bob", text: "bob: answer"})
	for i := range 20 {
		s.put(line{target: "#ops", prio: PriorityNormal, origin: "mallory", text: fmt.Sprintf("mallory: %d", i)})
	}
	s.put(line{target: "#dev", prio: PriorityNormal, origin: "mallory", text: "elsewhere"})
	got := s.waiting()
	want := []string{"bob: answer", "(13 lines dropped)", "elsewhere"}
	for i := 13; i < 20; i++ {
		want = append(want, fmt.Sprintf("mallory: %d", i))
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("waiting %q\nwant %q", got, want)
	}
	// The two users' lines to #ops take turns.
	s.put(line{target: "#ops", prio: PriorityNormal, origin: "bob", text: "bob: second"})
	order := strings.Join(s.waiting(), "|")
	if !strings.HasPrefix(order, "bob: answer|") || !strings.Contains(order, "|bob: second|") || strings.Index(order, "bob: second") > strings.Index(order, "mallory: 15") {
		t.Fatalf("bob's second answer waits behind mallory's lines: %q", order)
	}
}

// Prompts and failures are never dropped, however full the other queues
// are, and go out first in their order.
func TestSenderUrgentNeverDropped(t *testing.T) {
	s := newSender(&switchWire{}, 0.1, 1, quiet())
	for i := range maxQueue + 50 {
		s.notify("#ops", PriorityDeploy, "", fmt.Sprintf("notice %d %s", i, strings.Repeat("x", 300)))
		s.put(line{target: "#ops", prio: PriorityDeploy, origin: "alice", text: fmt.Sprintf("alice: reply %d %s", i, strings.Repeat("y", 300))})
	}
	for i := range 50 {
		for _, target := range []string{"#ops", "#dev", "mallory"} {
			s.put(line{target: target, prio: PriorityNormal, origin: "mallory", text: fmt.Sprintf("normal %d", i)})
		}
	}
	for i := range 300 {
		s.notify("#ops", PriorityUrgent, "", fmt.Sprintf("FAILED %d", i))
		s.put(line{target: "#ops", prio: PriorityUrgent, origin: "x", text: "same prompt"})
	}
	got := s.waiting()
	for i := range 600 {
		want := fmt.Sprintf("FAILED %d", i/2)
		if i%2 == 1 {
			want = "same prompt"
		}
		if got[i] != want {
			t.Fatalf("line %d = %q, want %q", i, got[i], want)
		}
	}
	if strings.HasPrefix(got[600], "FAILED") || got[600] == "same prompt" {
		t.Fatal("more urgent lines than were queued")
	}
	if n := s.classes[PriorityDeploy].perTarget["#ops"]; n != maxQueue {
		t.Fatalf("%d deploy lines wait for #ops; want the bound %d", n, maxQueue)
	}
}

// However lines of every class are queued, and from how many goroutines,
// the lines go out within the token bucket.
func TestSenderPacingWithinBucket(t *testing.T) {
	const perSecond, burst, n = 40.0, 4, 60
	w := &timedWire{}
	s := newSender(w, perSecond, burst, quiet())
	start := time.Now()
	runSender(t, s)
	var wg sync.WaitGroup
	for p := range numPriorities {
		wg.Go(func() {
			for i := range n / numPriorities {
				s.put(line{target: fmt.Sprintf("#c%d", i%3), prio: Priority(p), origin: "o", text: fmt.Sprintf("%d-%d", p, i)})
				time.Sleep(scale.D(time.Millisecond))
			}
		})
	}
	wg.Wait()
	waitFor(t, "every line", func() bool { return len(w.lines()) == n })
	w.mu.Lock()
	times := append([]time.Time(nil), w.times...)
	w.mu.Unlock()
	// Replay the bucket over the send times: it must never go below
	// zero. The slack covers the time between the limiter's grant and
	// the wire's clock reading, which a busy machine stretches (a
	// descheduled sender reads the clock late for one line, on time for
	// the next): 50 ms (scaled) worth of tokens. A sender that ignored the
	// bucket would be dozens of tokens under.
	tokens, last := float64(burst), start
	slack := scale.D(50*time.Millisecond).Seconds() * perSecond
	for i, at := range times {
		tokens = min(float64(burst), tokens+at.Sub(last).Seconds()*perSecond)
		last = at
		tokens--
		if tokens < -slack {
			t.Fatalf("line %d went out %v after the start with the bucket at %.2f: over the rate", i, at.Sub(start), tokens)
		}
	}
	if d, least := times[n-1].Sub(start), time.Duration(float64(n-burst)/perSecond*float64(time.Second)); d < least*95/100 {
		t.Fatalf("%d lines went out in %v; the bucket allows no less than %v", n, d, least)
	}
}
