package deployer

import (
	"os"
	"runtime/debug"
	"sync"
)

// The garbage collector's target (GOGC) of a process that deploys, unless
// its environment sets GOGC: it follows the number of hosts the running
// deploys hold connections to. A deploy holds one SSH connection per host
// at once, and the SSH library's buffers and goroutines, about 50 KB of
// heap and 60 KB of stacks per connection, are most of the process's
// memory in a large one; at Go's default target the heap may grow to
// twice what is live before it is collected, and at a low one a small
// deploy collects often for nothing (its heap is small anyway). So: Go's
// default (100) up to GCHostsLow hosts in flight, GCPercentMin from
// GCHostsHigh, in a straight line between. Measured on 1,000 simulated
// hosts (make bench, docs/PERFORMANCE.md): peak RSS 152 to 157 MB at a
// fixed 50, 140 to 146 MB at 30, for 5 to 15% more of the process's CPU;
// on 50 real hosts the process's CPU was about 30% higher at 50 than at
// 100.
const (
	GCPercentMax = 100
	GCPercentMin = 30
	GCHostsLow   = 200
	GCHostsHigh  = 800
)

// governor sets the collector's target from the hosts in flight (see
// GCPercentMax), once TuneGC turned it on.
type governor struct {
	mu      sync.Mutex
	on      bool
	hosts   int
	percent int // set last; 0: none yet
}

var gcGovernor governor

// TuneGC makes the process's garbage collector follow the hosts of the
// running deploys (GCPercentMax), unless the environment sets GOGC (which
// then stays as it says). cmd/deploybot calls it at start.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	g := &gcGovernor
	g.mu.Lock()
	defer g.mu.Unlock()
	g.on = true
	g.applyLocked()
}

// gcPercent is the target for hosts in flight.
func gcPercent(hosts int) int {
	switch {
	case hosts <= GCHostsLow:
		return GCPercentMax
	case hosts >= GCHostsHigh:
		return GCPercentMin
	}
	return GCPercentMax - (GCPercentMax-GCPercentMin)*(hosts-GCHostsLow)/(GCHostsHigh-GCHostsLow)
}

// gcHosts counts n more hosts in flight (n < 0: fewer).
func gcHosts(n int) {
	g := &gcGovernor
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hosts += n
	g.applyLocked()
}

// applyLocked sets the target for g.hosts, when on and changed.
func (g *governor) applyLocked() {
	if !g.on {
		return
	}
	if p := gcPercent(g.hosts); p != g.percent {
		debug.SetGCPercent(p)
		g.percent = p
	}
}
