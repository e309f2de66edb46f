package deployer

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "")
	SetGCPercent() // GOGC set, even empty: left as it is
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, GC percent = %d, want 100 (unchanged)", got)
	}
	t.Setenv("GOGC", "x") // restores GOGC after the test
	os.Unsetenv("GOGC")
	SetGCPercent()
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("without GOGC, GC percent = %d, want %d", got, GCPercent)
	}
}
