package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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

func (c clockedHost) Deploy(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, error) {
	if c.name == c.s.canary {
		c.s.first.CompareAndSwap(0, int64(max(time.Since(c.s.t0), 1)))
	}
	return c.Conn.Deploy(ctx, t, sha, force, timeout)
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

// peakRSS is this process's peak resident set so far, in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
