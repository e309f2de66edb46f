package deployer

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct{ hosts, want int }{
		{0, 100}, {50, 100}, {200, 100}, {500, 65}, {800, 30}, {1000, 30}, {5000, 30},
	} {
		if got := gcPercent(c.hosts); got != c.want {
			t.Errorf("gcPercent(%d) = %d, want %d", c.hosts, got, c.want)
		}
	}
}

// TuneGC leaves a GOGC the environment sets; without one, the target
// follows the hosts in flight.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	defer func() {
		gcGovernor.mu.Lock()
		gcGovernor.on, gcGovernor.percent = false, 0
		gcGovernor.mu.Unlock()
	}()

	t.Setenv("GOGC", "")
	TuneGC() // GOGC set, even empty: left as it is
	gcHosts(1000)
	gcHosts(-1000)
	if got := debug.SetGCPercent(77); got != 100 {
		t.Errorf("with GOGC set, GC percent = %d, want 100 (unchanged)", got)
	}
	t.Setenv("GOGC", "x") // restores GOGC after the test
	os.Unsetenv("GOGC")
	debug.SetGCPercent(77)
	TuneGC()
	if got := debug.SetGCPercent(GCPercentMax); got != GCPercentMax {
		t.Errorf("without GOGC, no hosts: GC percent = %d, want %d", got, GCPercentMax)
	}
	gcHosts(1000)
	if got := debug.SetGCPercent(GCPercentMin); got != GCPercentMin {
		t.Errorf("1,000 hosts in flight: GC percent = %d, want %d", got, GCPercentMin)
	}
	gcHosts(-1000)
	if got := debug.SetGCPercent(GCPercentMax); got != GCPercentMax {
		t.Errorf("no hosts in flight: GC percent = %d, want %d", got, GCPercentMax)
	}
}
