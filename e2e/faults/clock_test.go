package faults

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
)

// libfaketime is Debian's libfaketime (package faketime).
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// offClock gives every new SSH session of host i a clock offset by off
// (libfaketime's FAKETIME, e.g. "+2h") and checks, over SSH, that the
// host's date is that far from ours.
func (e *env) offClock(i int, off string, want time.Duration) {
	e.t.Helper()
	h := e.Fleet.Hosts[i]
	e.must(h.SetSessionEnv("LD_PRELOAD="+libfaketime, "FAKETIME="+off, "FAKETIME_DONT_RESET=1"))
	c, err := e.Fleet.Dial(h)
	e.must(err)
	defer c.Close()
	s, err := c.NewSession()
	e.must(err)
	defer s.Close()
	out, err := s.Output("date +%s")
	e.must(err)
	e.wantOff(h.Name+"'s clock", strings.TrimSpace(string(out)), want)
}

// wantOff checks that unix (seconds) is off from our clock by want,
// within a minute.
func (e *env) wantOff(what, unix string, want time.Duration) {
	e.t.Helper()
	secs, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		e.t.Fatalf("%s: %q is no time: %v", what, unix, err)
	}
	if got := time.Unix(secs, 0).Sub(time.Now()); (got - want).Abs() > time.Minute {
		e.t.Fatalf("%s is %v off, want %v", what, got.Round(time.Second), want)
	}
}

// opSince is the start time (unix seconds) host i's operation file
// records.
func (e *env) opSince(i int) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Fleet.Hosts[i].Root, "svc", "deploy-cache", ".deploybot-op"))
	e.must(err)
	f := strings.Fields(string(b))
	if len(f) != 4 {
		e.t.Fatalf("operation file %q", b)
	}
	return f[3]
}

// TestClockOff deploys to a fleet where one host's clock is two hours
// ahead and another's two hours behind: the deploy succeeds. Then the bot
// is killed in the middle of each one's restart: the operation it left
// running there is found and stopped by the recovery — !continue on the
// host ahead, !rollback on the one behind — and the fleet ends on one
// revision. The operation file records the operation's start by
// deploybot's clock, not the host's.
func TestClockOff(t *testing.T) {
	if _, err := os.Stat(libfaketime); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("libfaketime is missing (Debian package faketime)")
		}
		t.Skip("libfaketime is missing (Debian package faketime)")
	}
	e := newEnv(t, "clock", 3, "60s")
	e.offClock(a1, "+2h", 2*time.Hour)
	e.offClock(a2, "-2h", -2*time.Hour)
	e.startBot()
	e.deploy("v1")
	live := "v1"
	for n, c := range []struct {
		host   int
		answer string
	}{{a1, "continue"}, {a2, "rollback"}} {
		host := c.host
		p := killPoint{
			name: "mid-restart on " + e.Fleet.Hosts[host].Name,
			arm:  func(e *env, _, sha string) { e.HostFile(host, "slow", sha) },
			reach: func(e *env, _, _, _ string) {
				e.waitHostFile(host, "restart.pid")
				// The start is deploybot's time, whatever the host's clock.
				e.wantOff("the operation file's start", e.opSince(host), 0)
			},
			disarm: func(e *env) { e.clearHostFiles(host, "slow", "restart.pid") },
		}
		live = e.killAt(p, 10+n, c.answer, live)
		e.wantStopped(e.Fleet.Hosts[host].IP)
	}
}

// wantStopped checks that the newest journal (the recovery's) says the
// deploy left running on host was found and stopped.
func (e *env) wantStopped(host string) {
	e.t.Helper()
	d := e.latest()
	for _, ev := range d.Events {
		if ev.Type == journal.TypeNote && ev.Host == host && strings.HasPrefix(ev.Message, "stopped the ") {
			e.t.Logf("%s: %s", host, ev.Message)
			return
		}
	}
	e.t.Errorf("journal %s does not say what the killed deploy left running on %s was stopped", d.Meta.ID, host)
	e.logJournalOnFailure(d.Meta.ID)
}
