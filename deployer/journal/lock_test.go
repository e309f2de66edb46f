package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two processes contend for the deploy lock. The child holds it; the
// parent is refused with the child's who/why/pid; once the child is
// SIGKILLed (no Release runs) the parent gets the lock: the kernel
// released it.
func TestDeployLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "hold", dir, "citoid", "JT_WHO=alice", "JT_WHY=deploying 1a2b3c4", "JT_ID=20261126-014512-citoid-3f9a")

	_, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob", Why: "deploying 5d6e7f8"})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("AcquireDeploy while the child holds the lock: got %v, want *LockedError", err)
	}
	if !errors.Is(err, ErrLocked) || le.Manual {
		t.Errorf("want a deploy (not manual) lock error matching ErrLocked, got %#v", le)
	}
	h := le.Holder
	if h.Who != "alice" || h.Why != "deploying 1a2b3c4" || h.PID != c.cmd.Process.Pid || h.DeployID != "20261126-014512-citoid-3f9a" {
		t.Errorf("holder = %+v, want alice / deploying 1a2b3c4 / pid %d", h, c.cmd.Process.Pid)
	}
	msg := err.Error()
	for _, want := range []string{"citoid is being deployed by alice since ", " UTC (pid " + fmt.Sprint(c.cmd.Process.Pid) + "): deploying 1a2b3c4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if r, err := Running(dir, "citoid"); err != nil || r == nil || r.Who != "alice" {
		t.Errorf("Running = %+v, %v; want alice", r, err)
	}

	c.kill()

	l, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob", Why: "deploying 5d6e7f8"})
	if err != nil {
		t.Fatalf("AcquireDeploy after the holder was killed: %v", err)
	}
	if r, _ := Running(dir, "citoid"); r == nil || r.Who != "bob" || r.PID != os.Getpid() {
		t.Errorf("Running = %+v, want bob with our pid", r)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if r, err := Running(dir, "citoid"); r != nil || err != nil {
		t.Errorf("Running after Release = %+v, %v; want nil", r, err)
	}
}

func TestDeployLockInProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireDeploy(dir, "citoid", Holder{Who: "alice", Why: "deploying 1a2b3c4", DeployID: "20261126-014512-citoid-3f9a"})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Holder(); h.PID != os.Getpid() || h.Since.IsZero() || h.Host == "" || h.Since.Location() != time.UTC {
		t.Errorf("holder not filled in: %+v", h)
	}
	// A second acquisition through another descriptor, even in the same
	// process, is refused.
	_, err = AcquireDeploy(dir, "citoid", Holder{Who: "bob"})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.Who != "alice" {
		t.Fatalf("second AcquireDeploy: %v", err)
	}
	// Another service is independent.
	l2, err := AcquireDeploy(dir, "mathoid", Holder{Who: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "locks", "citoid.holder")); !os.IsNotExist(err) {
		t.Errorf("holder file left after Release: %v", err)
	}
	l, err = AcquireDeploy(dir, "citoid", Holder{Who: "bob"})
	if err != nil {
		t.Fatalf("AcquireDeploy after Release: %v", err)
	}
	l.Release()
	if _, err := AcquireDeploy(dir, "citoid", Holder{}); err == nil {
		t.Error("AcquireDeploy without Who accepted")
	}
}

// A liveness probe (Running, Unfinished, Follow) takes the lock for an
// instant; a deploy starting at that moment must not be refused.
func TestProbeDoesNotRefuseDeploys(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireDeploy(dir, "citoid", Holder{Who: "x"})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				deployBusy(dir, "citoid")
			}
		}
	}()
	for i := 0; i < 50; i++ {
		l, err := AcquireDeploy(dir, "citoid", Holder{Who: "alice"})
		if err != nil {
			close(stop)
			t.Fatalf("acquire %d during probes: %v", i, err)
		}
		l.Release()
	}
	close(stop)
	wg.Wait()
}

func TestManualLock(t *testing.T) {
	dir := t.TempDir()
	if h, err := Held(dir, "citoid"); h != nil || err != nil {
		t.Fatalf("Held on a fresh dir = %v, %v", h, err)
	}
	if _, err := Unlock(dir, "citoid", "bob"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock when not locked: %v, want ErrNotLocked", err)
	}
	if err := Lock(dir, "citoid", Holder{Who: "alice"}); err == nil {
		t.Error("Lock without a reason accepted")
	}
	since := time.Date(2026, 11, 25, 1, 45, 12, 0, time.UTC)
	if err := Lock(dir, "citoid", Holder{Who: "alice", Why: "reverted by alice", Since: since}); err != nil {
		t.Fatal(err)
	}
	err := Lock(dir, "citoid", Holder{Who: "bob", Why: "db migration"})
	var le *LockedError
	if !errors.As(err, &le) || !le.Manual || le.Holder.Who != "alice" {
		t.Fatalf("second Lock: %v", err)
	}
	if want := "citoid is locked by alice since 2026-11-25 01:45:12 UTC: reverted by alice"; err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err, want)
	}
	h, err := Held(dir, "citoid")
	if err != nil || h == nil || h.Who != "alice" || h.Why != "reverted by alice" || !h.Since.Equal(since) {
		t.Fatalf("Held = %+v, %v", h, err)
	}
	// A deploy is refused while the manual lock is held.
	_, err = AcquireDeploy(dir, "citoid", Holder{Who: "bob", Why: "deploying 5d6e7f8"})
	if !errors.As(err, &le) || !le.Manual || le.Holder.Why != "reverted by alice" {
		t.Fatalf("AcquireDeploy under a manual lock: %v", err)
	}
	// ...and it did not keep the deploy lock.
	if r, _ := Running(dir, "citoid"); r != nil {
		t.Errorf("refused AcquireDeploy left the deploy lock held: %+v", r)
	}
	ls, err := Locks(dir)
	if err != nil || len(ls) != 1 || ls[0].Service != "citoid" || ls[0].Manual == nil || ls[0].Deploy != nil {
		t.Errorf("Locks = %+v, %v", ls, err)
	}
	if _, err := Unlock(dir, "citoid", ""); err == nil {
		t.Error("Unlock without who accepted")
	}
	got, err := Unlock(dir, "citoid", "bob")
	if err != nil || got.Who != "alice" || got.Why != "reverted by alice" {
		t.Fatalf("Unlock = %+v, %v", got, err)
	}
	if _, err := Unlock(dir, "citoid", "bob"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("second Unlock: %v, want ErrNotLocked", err)
	}
	if h, _ := Held(dir, "citoid"); h != nil {
		t.Errorf("Held after Unlock = %+v", h)
	}
	// A running deploy can take the manual lock before it releases its
	// deploy lock (!revert), leaving no gap.
	l, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob", Why: "deploying 1a2b3c4"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Lock(dir, "citoid", Holder{Who: "bob", Why: "reverted by bob"}); err != nil {
		t.Fatalf("Lock during a deploy: %v", err)
	}
	ls, _ = Locks(dir)
	if len(ls) != 1 || ls[0].Deploy == nil || ls[0].Manual == nil {
		t.Errorf("Locks with both = %+v", ls)
	}
	l.Release()
	if _, err := AcquireDeploy(dir, "citoid", Holder{Who: "carol"}); !errors.As(err, &le) || !le.Manual {
		t.Errorf("deploy after revert lock: %v", err)
	}
}

// Racing Lock calls: exactly one wins; the others are told who won.
func TestManualLockRace(t *testing.T) {
	dir := t.TempDir()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Lock(dir, "citoid", Holder{Who: fmt.Sprintf("op%d", i), Why: "maintenance"})
		}()
	}
	wg.Wait()
	winners := 0
	for _, err := range errs {
		var le *LockedError
		switch {
		case err == nil:
			winners++
		case errors.As(err, &le):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners, want 1", winners)
	}
	h, _ := Held(dir, "citoid")
	for i, err := range errs {
		var le *LockedError
		if errors.As(err, &le) && le.Holder.Who != h.Who {
			t.Errorf("loser %d told the holder is %s, it is %s", i, le.Holder.Who, h.Who)
		}
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Join(dir, "locks"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// An unreadable manual lock still refuses deploys.
func TestCorruptManualLockFailsClosed(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "locks"), 0o755)
	os.WriteFile(filepath.Join(dir, "locks", "citoid.held"), []byte("{garbage"), 0o644)
	_, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob"})
	var le *LockedError
	if !errors.As(err, &le) || !le.Manual || le.Holder.Who != "unknown" {
		t.Fatalf("AcquireDeploy under a corrupt manual lock: %v", err)
	}
	if _, err := Unlock(dir, "citoid", "bob"); err != nil {
		t.Fatalf("Unlock of a corrupt lock: %v", err)
	}
	l, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestLockedErrorMessage(t *testing.T) {
	now := time.Now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day(), 1, 45, 12, 0, time.UTC)
	e := &LockedError{Service: "citoid", Holder: Holder{Who: "alice", Why: "deploying 1a2b3c4", Since: since, PID: 1234, Host: hostname()}}
	if got, want := e.Error(), "citoid is being deployed by alice since 01:45:12 UTC (pid 1234): deploying 1a2b3c4"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	e.Holder.Host = "deploy2002"
	if got := e.Error(); !strings.Contains(got, "(pid 1234 on deploy2002)") {
		t.Errorf("other host not named: %q", got)
	}
	e.Holder.Why = "evil\r\nPRIVMSG #ops :hi\x1b[2J"
	if got := e.Error(); strings.ContainsAny(got, "\r\n\x1b") {
		t.Errorf("control characters reach the message: %q", got)
	}
	e = &LockedError{Service: "citoid"}
	if got := e.Error(); got != "citoid is being deployed by another process (holder unknown)" {
		t.Errorf("unknown holder: %q", got)
	}
}

var hostileServices = []string{
	"", "..", ".", "../etc", "a/b", "/abs", "citoid/../../x", ".hidden", "-rf", "_x",
	"Citoid", "cit oid", "citoid\n", "cit\x00oid", "citoid\\x", strings.Repeat("a", 65), "ciτoid", "*", "locks/../x",
}

// Hostile service names are refused before they reach a path.
func TestHostileServiceNames(t *testing.T) {
	dir := t.TempDir()
	for _, s := range hostileServices {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, ErrBadService) {
				t.Errorf("%s(%q): err = %v, want ErrBadService", what, s, err)
			}
		}
		_, err := AcquireDeploy(dir, s, Holder{Who: "a", Why: "b"})
		check("AcquireDeploy", err)
		check("Lock", Lock(dir, s, Holder{Who: "a", Why: "b"}))
		_, err = Unlock(dir, s, "a")
		check("Unlock", err)
		_, err = Held(dir, s)
		check("Held", err)
		_, err = Running(dir, s)
		check("Running", err)
		_, err = Create(dir, s, Meta{Who: "a"})
		check("Create", err)
		if s != "" { // List(dir, "") means every service
			_, err = List(dir, s)
			check("List", err)
		}
		_, err = NewID(s, time.Now())
		check("NewID", err)
		_, err = JournalPath(dir, s, "20261126-014512-citoid-3f9a")
		check("JournalPath", err)
	}
	// Nothing was created outside dir, nor anything at all in it.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "locks" {
			t.Errorf("created %s", e.Name())
		}
	}
	for _, ok := range []string{"citoid", "a", "0", "mw-api.int_2", strings.Repeat("a", 64)} {
		if err := ValidService(ok); err != nil {
			t.Errorf("ValidService(%q) = %v", ok, err)
		}
	}
	// Ids are checked too.
	for _, id := range []string{"", "../../x", "20261126-014512-citoid-3f9a/..", "20261126-014512-Citoid-3f9a", "20261126-014512-citoid-3f9", "2026112-014512-citoid-3f9a"} {
		if _, err := Create(dir, "citoid", Meta{ID: id, Who: "a"}); id != "" && !errors.Is(err, ErrBadID) {
			t.Errorf("Create with id %q: %v, want ErrBadID", id, err)
		}
	}
	if _, err := Create(dir, "citoid", Meta{ID: "20261126-014512-mathoid-3f9a", Who: "a"}); !errors.Is(err, ErrBadID) {
		t.Errorf("Create with another service's id: %v", err)
	}
}
