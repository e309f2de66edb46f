package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/remote"
)

// stageClock times a deploy from its command to the canary's first stage:
// the moment the engine opens the canary's deploy session (fetch is its
// first stage).
type stageClock struct {
	canary string
	t0     time.Time
	first  atomic.Int64 // nanoseconds after t0; 0: not yet
}

// start is the command: the clock restarts.
func (s *stageClock) start() {
	s.first.Store(0)
	s.t0 = time.Now()
}

// canaryAt is the time from start to the canary's first stage.
func (s *stageClock) canaryAt() time.Duration { return time.Duration(s.first.Load()) }

// dialer reaches the targets through rd, noting the canary's first stage.
func (s *stageClock) dialer(rd *remote.Dialer) deployer.Dialer {
	return deployer.DialerFunc(func(ctx context.Context, h config.Host) (deployer.Host, error) {
		c, err := rd.Dial(ctx, h)
		if err != nil {
			return nil, err
		}
		return clockedHost{Conn: c, s: s, name: h.String()}, nil
	})
}

type clockedHost struct {
	*remote.Conn
	s    *stageClock
	name string
}

// Deploy and DeployHeld (which the engine calls when the host finalizes
// in its deploy session) both open the deploy session.
func (c clockedHost) Deploy(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, error) {
	c.note()
	return c.Conn.Deploy(ctx, t, sha, force, timeout)
}

func (c clockedHost) DeployHeld(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, remote.Held, error) {
	c.note()
	return c.Conn.DeployHeld(ctx, t, sha, force, timeout)
}

// note records the first deploy session of the canary.
func (c clockedHost) note() {
	if c.name == c.s.canary {
		c.s.first.CompareAndSwap(0, int64(max(time.Since(c.s.t0), 1)))
	}
}

// newClockedEngine is the engine of cfg with its targets reached through
// a stageClock for canary.
func newClockedEngine(cfg *config.Config, canary string) (*deployer.Engine, *stageClock, error) {
	rd, err := remote.NewDialer(cfg.Deploy.SSH)
	if err != nil {
		return nil, nil, err
	}
	clock := &stageClock{canary: canary}
	return deployer.NewWithDialer(cfg, nil, clock.dialer(rd)), clock, nil
}

// procCPU is the user+sys time of process pid so far (its own, not its
// children's), from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// timeline notes when a deploy reached its milestones, from its command:
// each group's start and end, the first and last of its hosts to pass its
// deploy session, its checks (host done), and the deploy's end; between a
// group's last host done and the group's end, the hosts' finalize runs.
type timeline struct {
	mu  sync.Mutex
	t0  time.Time
	at  map[string]time.Duration // "<group> <milestone>" → first time
	end map[string]time.Duration // "<group> <milestone>" → last time
	// took sums the durations the hosts report of each stage (the
	// target's own measure), n counts them: "<group> <stage>".
	took map[string]time.Duration
	n    map[string]int
}

func newTimeline() *timeline {
	return &timeline{t0: time.Now(), at: map[string]time.Duration{}, end: map[string]time.Duration{},
		took: map[string]time.Duration{}, n: map[string]int{}}
}

// Observe implements deployer.Observer.
func (t *timeline) Observe(ev deployer.Event) {
	var m string
	switch ev.Type {
	case deployer.EventGroupStarted, deployer.EventGroupFinished, deployer.EventHostDone, deployer.EventFinished:
		m = string(ev.Type)
	case deployer.EventStage:
		m = "stage " + ev.Stage
	case deployer.EventCheckResult:
		if len(ev.Checks) == 0 {
			return
		}
		m = "check " + ev.Checks[0].Name
	default:
		return
	}
	d := time.Since(t.t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	k := ev.Group + " " + m
	if ev.Type == deployer.EventStage {
		t.took[k] += ev.Duration
		t.n[k]++
	}
	if _, ok := t.at[k]; !ok {
		t.at[k] = d
	}
	t.end[k] = d
}

// String lists the milestones in time order: first (and last, when
// several hosts reached it) in seconds, and for stages the mean time the
// hosts report they took.
func (t *timeline) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.at))
	for k := range t.at {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return t.at[keys[i]] < t.at[keys[j]] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %.2f", strings.TrimSpace(k), t.at[k].Seconds())
		if e := t.end[k]; e-t.at[k] > time.Millisecond {
			fmt.Fprintf(&b, "–%.2f", e.Seconds())
		}
		if n := t.n[k]; n > 0 {
			fmt.Fprintf(&b, " (took %v each)", (t.took[k] / time.Duration(n)).Round(time.Millisecond))
		}
		b.WriteString("; ")
	}
	return b.String()
}
