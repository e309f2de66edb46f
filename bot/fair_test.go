package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"deploybot/e2e/scale"
	"deploybot/sal"
)

// gate is a command runner for scheduler tests: each command blocks until
// released, and the runner records which commands are running.
type gate struct {
	mu      sync.Mutex
	running map[string]bool
	started []string
	release map[string]chan struct{}
	done    atomic.Int32
}

func newGate() *gate {
	return &gate{running: map[string]bool{}, release: map[string]chan struct{}{}}
}

// text is a request's command line, which names it in these tests.
func text(r *request) string { return strings.TrimSpace(r.name + " " + r.rest) }

func (g *gate) ch(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.release[name]
	if c == nil {
		c = make(chan struct{})
		g.release[name] = c
	}
	return c
}

func (g *gate) run(ctx context.Context, r *request) {
	name := text(r)
	c := g.ch(name)
	g.mu.Lock()
	g.running[name] = true
	g.started = append(g.started, name)
	g.mu.Unlock()
	select {
	case <-c:
	case <-ctx.Done():
	}
	g.mu.Lock()
	delete(g.running, name)
	g.mu.Unlock()
	g.done.Add(1)
}

func (g *gate) open(name string) { close(g.ch(name)) }

func (g *gate) isRunning(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running[name]
}

func (g *gate) hasStarted(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.started {
		if s == name {
			return true
		}
	}
	return false
}

// clock is a settable time for the backlog's leak.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startScheduler(t *testing.T, run func(context.Context, *request), slowDown func(*request)) *scheduler {
	t.Helper()
	s := newScheduler(run, slowDown)
	ctx, cancel := context.WithCancel(context.Background())
	s.start(ctx)
	t.Cleanup(func() { cancel(); s.wait() })
	return s
}

func cmd(nick, account, line string, deployer bool) *request {
	r := &request{nick: nick, user: "~" + nick, host: "example.org", account: account, channel: "#ops", replyTo: "#ops", deployer: deployer}
	if !parseCommand("!", line, r) {
		panic("not a command: " + line)
	}
	return r
}

// A sender may have three commands pending; the fourth is dropped with
// one slow-down line, the ones after it silently, until the backlog
// clears; then the bound starts again.
func TestPendingBoundAndSlowDown(t *testing.T) {
	g := newGate()
	var warned atomic.Int32
	s := startScheduler(t, g.run, func(r *request) { warned.Add(1) })
	submit := func(line string) bool {
		return s.submit(cmd("alice", "alice", line, true), "sender:alice", false)
	}
	for _, l := range []string{"!status a", "!status b", "!status c"} {
		if !submit(l) {
			t.Fatalf("%s refused within the bound", l)
		}
	}
	for _, l := range []string{"!status d", "!status e", "!status f"} {
		if submit(l) {
			t.Fatalf("%s accepted beyond the bound", l)
		}
	}
	if n := warned.Load(); n != 1 {
		t.Fatalf("slow-down lines = %d, want 1 for the backlog", n)
	}
	// One done: the backlog has not cleared yet.
	g.open("status a")
	waitFor(t, "the first command", func() bool { return g.done.Load() == 1 })
	if submit("!status g") {
		t.Fatal("accepted before the backlog cleared")
	}
	if n := warned.Load(); n != 1 {
		t.Fatalf("slow-down lines = %d during the same backlog, want 1", n)
	}
	g.open("status b")
	g.open("status c")
	waitFor(t, "the backlog to clear", func() bool { return g.done.Load() == 3 })
	if g.hasStarted("status d") || g.hasStarted("status g") {
		t.Fatalf("dropped commands ran: %q", g.started)
	}
	// A new backlog: three accepted, one more slow-down line.
	for _, l := range []string{"!status i", "!status j", "!status k"} {
		if !submit(l) {
			t.Fatalf("%s refused after the backlog cleared", l)
		}
	}
	if submit("!status l") || warned.Load() != 2 {
		t.Fatalf("new backlog: warned %d times, want 2", warned.Load())
	}
	// A command that controls a deploy is never dropped.
	if !s.submit(cmd("alice", "alice", "!continue citoid", true), "service:citoid", true) {
		t.Fatal("a deploy's control command was dropped")
	}
}

// A user without an account who overruns the bound cannot clear the
// backlog with commands that finish at once: the dropped ones count,
// leaking one per anonLeak, so a steady flood (one line a second, as the
// IRC server passes it on) is ignored until it stops. Anybody, with an
// account or not, who sends commands one after the other is answered.
func TestAnonymousFloodIgnoredUntilItStops(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := newGate()
	var warned atomic.Int32
	s := startScheduler(t, g.run, func(*request) { warned.Add(1) })
	s.now = c.now
	submit := func(nick, account, line string) bool {
		return s.submit(cmd(nick, account, line, false), "sender:"+nick, false)
	}
	// The flood's first lines come at once: three are pending.
	for _, l := range []string{"!status 1", "!status 2", "!status 3"} {
		if !submit("mallory", "", l) {
			t.Fatalf("%s refused", l)
		}
	}
	if submit("mallory", "", "!status 4") || warned.Load() != 1 {
		t.Fatal("the fourth command was not refused with a slow-down line")
	}
	for _, l := range []string{"status 1", "status 2", "status 3"} {
		g.open(l)
	}
	waitFor(t, "three commands", func() bool { return g.done.Load() == 3 })
	// Then a line a second for a minute, each finishing at once.
	for i := range 60 {
		c.advance(time.Second)
		if submit("mallory", "", fmt.Sprintf("!help %d", i)) {
			t.Fatalf("flood command %d accepted", i)
		}
	}
	if warned.Load() != 1 {
		t.Fatalf("slow-down lines = %d during one flood", warned.Load())
	}
	// Quiet for long enough: the backlog clears, the bound starts again.
	c.advance(maxAnonDropped * anonLeak)
	g.open("help again")
	if !submit("mallory", "", "!help again") {
		t.Fatal("refused after the backlog cleared")
	}
	waitFor(t, "the command", func() bool { return g.done.Load() == 4 })
	// One after the other, with or without an account: never refused.
	for _, who := range []struct{ nick, account string }{{"carol", ""}, {"bob", "bob"}} {
		for i := range 10 {
			l := fmt.Sprintf("!log %s %d", who.nick, i)
			g.open(l[1:])
			n := g.done.Load()
			if !submit(who.nick, who.account, l) {
				t.Fatalf("%s refused; nothing of theirs was pending", l)
			}
			waitFor(t, "the command", func() bool { return g.done.Load() == n+1 })
		}
	}
	if warned.Load() != 1 {
		t.Fatalf("slow-down lines = %d", warned.Load())
	}
}

// Commands from different senders run side by side; one sender's
// commands run in order.
func TestSendersDoNotWaitForEachOther(t *testing.T) {
	g := newGate()
	s := startScheduler(t, g.run, func(*request) {})
	s.submit(cmd("alice", "alice", "!log slow", false), "sender:alice", false)
	s.submit(cmd("alice", "alice", "!status", false), "sender:alice", false)
	waitFor(t, "alice's !log", func() bool { return g.isRunning("log slow") })
	s.submit(cmd("bob", "", "!help", false), "sender:bob", false)
	waitFor(t, "bob's !help while alice's !log runs", func() bool { return g.isRunning("help") })
	if g.hasStarted("status") {
		t.Fatal("alice's second command ran before her first was done")
	}
	g.open("help")
	g.open("log slow")
	waitFor(t, "alice's !status after her !log", func() bool { return g.isRunning("status") })
	g.open("status")
}

// Through the bot: a !log stuck on a slow SAL database does not delay
// another user's command.
func TestSlowCommandDoesNotDelayOthers(t *testing.T) {
	b, w, real := newTestBot(t)
	store := &slowStore{Store: real, release: make(chan struct{})}
	b.store = store
	ctx, cancel := context.WithCancel(context.Background())
	b.sched.start(ctx)
	t.Cleanup(func() { cancel(); b.sched.wait() })

	b.submit(cmd("alice", "", "!log restarted citoid", false))
	waitFor(t, "the !log to reach the store", func() bool { return store.waiting.Load() == 1 })
	b.submit(cmd("bob", "", "!help log", false))
	var got []string
	waitFor(t, "bob's answer", func() bool {
		b.out.drainTo(w)
		got = append(got, w.take()...)
		return len(got) > 0
	})
	if len(got) != 1 || !strings.HasPrefix(got[0], "#ops bob: !log <message>") {
		t.Fatalf("sent %q", got)
	}
	close(store.release)
	waitFor(t, "alice's answer", func() bool {
		b.out.drainTo(w)
		got = append(got, w.take()...)
		return len(got) > 1
	})
	if !strings.HasPrefix(got[1], "#ops Logged the message at ") {
		t.Fatalf("sent %q", got)
	}
}

// slowStore holds every Append until release is closed.
type slowStore struct {
	sal.Store
	waiting atomic.Int32
	release chan struct{}
}

func (s *slowStore) Append(ctx context.Context, e *sal.Entry) error {
	s.waiting.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Append(ctx, e)
}

// Mutating commands of one service run one at a time, whoever sends
// them, and do not wait for their sender's other commands or for another
// service's; a user without the right never enters a service's lane.
func TestMutatingCommandsSerializedPerService(t *testing.T) {
	b, _ := newDeployBot(t) // alice (account) deploys everything, dave citoid
	g := newGate()
	b.sched.run = g.run
	ctx, cancel := context.WithCancel(context.Background())
	b.sched.start(ctx)
	t.Cleanup(func() { cancel(); b.sched.wait() })

	b.submit(cmd("alice", "alice", "!lock citoid upgrading", false))
	waitFor(t, "alice's !lock", func() bool { return g.isRunning("lock citoid upgrading") })
	b.submit(cmd("dave", "dave", "!unlock citoid", false))
	b.submit(cmd("alice", "alice", "!lock mathoid too", false))
	b.submit(cmd("alice", "alice", "!status citoid", false))
	b.submit(cmd("dave", "dave", "!deploylog citoid", false))
	b.submit(cmd("eve", "eve", "!lock citoid mine", false))
	for _, name := range []string{"lock mathoid too", "status citoid", "deploylog citoid", "lock citoid mine"} {
		waitFor(t, name+" beside alice's !lock citoid", func() bool { return g.isRunning(name) })
	}
	time.Sleep(scale.D(50 * time.Millisecond))
	if g.hasStarted("unlock citoid") {
		t.Fatal("dave's !unlock citoid ran while alice's !lock citoid ran")
	}
	g.open("lock citoid upgrading")
	waitFor(t, "dave's !unlock after alice's !lock", func() bool { return g.isRunning("unlock citoid") })
	for _, name := range []string{"unlock citoid", "lock mathoid too", "status citoid", "deploylog citoid", "lock citoid mine"} {
		g.open(name)
	}
	waitFor(t, "every command", func() bool { return g.done.Load() == 6 })
}

// Through the bot: a flood of !status from a user without an account is
// answered a few times, then with one slow-down line, and then ignored;
// a deployer is answered meanwhile, first.
func TestFloodIsAnsweredBriefly(t *testing.T) {
	b, w := newDeployBot(t)
	c := &clock{t: time.Unix(1e9, 0)}
	b.sched.now = c.now
	ctx, cancel := context.WithCancel(context.Background())
	b.sched.start(ctx)
	t.Cleanup(func() { cancel(); b.sched.wait() })

	// The flood arrives faster than the commands run: hold the workers
	// of non-deployers' commands while it does.
	for range maxOthersBusy {
		b.sched.others <- struct{}{}
	}
	for range 30 {
		b.submit(cmd("mallory", "", "!status citoid", false))
		r := cmd("mallory", "", "!status citoid", false)
		r.channel, r.replyTo = "", "mallory"
		b.submit(r)
	}
	b.submit(cmd("alice", "alice", "!deploylog citoid", false))
	for range maxOthersBusy {
		<-b.sched.others
	}
	// Wait for the commands to be done, then look at what waits to go out.
	waitFor(t, "the commands", func() bool {
		b.sched.mu.Lock()
		defer b.sched.mu.Unlock()
		return len(b.sched.lanes) == 0
	})
	var got []string
	b.out.drainTo(w)
	got = w.take()
	if len(got) == 0 || !strings.HasPrefix(got[0], "#ops alice: no deploys of citoid") {
		t.Fatalf("the deployer's answer is not first: %q", got)
	}
	var status, slow int
	for _, l := range got[1:] {
		switch {
		case strings.HasPrefix(l, "#ops mallory: citoid: idle"), strings.HasPrefix(l, "mallory citoid: idle"):
			status++
		case strings.Contains(l, "slow down"):
			slow++
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	// Three commands ran, answered once in the channel and once in
	// private (identical answers are sent once); one slow-down line.
	if status != 2 || slow != 1 {
		t.Fatalf("mallory got %d answers and %d slow-down lines; want 2 and 1:\n%s", status, slow, strings.Join(got, "\n"))
	}
}
