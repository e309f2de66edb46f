package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Holder says who holds a lock, since when and why.
type Holder struct {
	// Who is the operator (IRC account or Unix user). Required.
	Who string `json:"who"`
	// Nick is the IRC nick of Who, when known (see Person).
	Nick string `json:"nick,omitempty"`
	// Why is the reason: "deploying 1a2b3c4", "reverted by alice", …
	// Required for a manual lock.
	Why string `json:"why,omitempty"`
	// Since is when the lock was taken (UTC). Filled in when zero.
	Since time.Time `json:"since"`
	// PID is the holding process. Filled in for the deploy lock; 0 for a
	// manual lock, which belongs to no process.
	PID int `json:"pid,omitempty"`
	// Host is the host name of the holding process. Filled in when empty.
	Host string `json:"host,omitempty"`
	// DeployID is the id of the deploy that holds the deploy lock. The
	// engine must set it: Unfinished and Follow use it to tell a running
	// deploy from an interrupted one.
	DeployID string `json:"deploy_id,omitempty"`
}

// ErrLocked matches every *LockedError with errors.Is.
var ErrLocked = errors.New("service is locked")

// ErrNotLocked is returned by Unlock when no manual lock is held.
var ErrNotLocked = errors.New("service is not locked")

// LockedError refuses a lock because someone else holds it.
type LockedError struct {
	Service string
	// Holder is who holds the lock. For a deploy lock whose holder could
	// not be read, Holder.Who is empty.
	Holder Holder
	// Manual is true for a manual lock (!lock, !revert), false for a
	// running deploy.
	Manual bool
}

func (e *LockedError) Error() string {
	h := e.Holder
	var b strings.Builder
	b.WriteString(e.Service)
	if e.Manual {
		b.WriteString(" is locked")
	} else {
		b.WriteString(" is being deployed")
	}
	if h.Who == "" {
		b.WriteString(" by another process (holder unknown)")
		return b.String()
	}
	b.WriteString(" by ")
	b.WriteString(oneLine(h.Who))
	if !h.Since.IsZero() {
		b.WriteString(" since ")
		b.WriteString(sinceText(h.Since, time.Now()))
	}
	if h.PID > 0 {
		fmt.Fprintf(&b, " (pid %d", h.PID)
		if h.Host != "" && h.Host != hostname() {
			b.WriteString(" on ")
			b.WriteString(oneLine(h.Host))
		}
		b.WriteString(")")
	}
	if h.Why != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(h.Why))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// sinceText is "01:45:12 UTC" for a time today (UTC), else with the date.
func sinceText(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Format("2006-01-02") == now.Format("2006-01-02") {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

// How long AcquireDeploy keeps trying a busy lock before it refuses: long
// enough to ride over the brief shared lock of a liveness probe (Running,
// Unfinished, Follow), short enough to refuse at once in practice.
const acquireGrace = 250 * time.Millisecond

// How long a refused caller waits for the holder file to name a live
// process (a new holder writes it just after taking the lock).
const holderGrace = 500 * time.Millisecond

func locksDir(dir string) string { return filepath.Join(dir, "locks") }

func lockPaths(dir, service string) (lock, holder, held string) {
	l := locksDir(dir)
	return filepath.Join(l, service+".lock"), filepath.Join(l, service+".holder"), filepath.Join(l, service+".held")
}

// DeployLock is a held deploy lock. Release it when the deploy is over.
type DeployLock struct {
	mu       sync.Mutex
	f        *os.File
	dir      string
	service  string
	holder   Holder
	released bool
}

// AcquireDeploy takes the deploy lock of service, shared by every process
// using dir. It does not wait: if a deploy is running it returns a
// *LockedError naming its holder, and if a manual lock is held it returns a
// *LockedError with Manual set. There is no way to override a manual lock
// other than Unlock.
//
// h.Who is required; Since, PID and Host are filled in when zero. The lock
// is released by Release, or by the kernel when the process dies.
func AcquireDeploy(dir, service string, h Holder) (*DeployLock, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	if h.Who == "" {
		return nil, errors.New("deploy lock: the holder needs a Who")
	}
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	h.Since = h.Since.UTC()
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.Host == "" {
		h.Host = hostname()
	}
	if err := ensureDir(locksDir(dir)); err != nil {
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	lockPath, holderPath, _ := lockPaths(dir, service)
	f, err := openLockFile(lockPath)
	if err != nil {
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	deadline := time.Now().Add(acquireGrace)
	for {
		busy, err := tryLock(f, true)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("deploy lock %s: %w", lockPath, err)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			e := &LockedError{Service: service}
			if cur := readDeployHolder(dir, service); cur != nil {
				e.Holder = *cur
			}
			return nil, e
		}
		time.Sleep(5 * time.Millisecond)
	}
	fail := func(err error) (*DeployLock, error) {
		unlock(f)
		f.Close()
		return nil, err
	}
	// The manual lock is checked while holding the deploy lock, so a
	// deploy that gets this far was not locked when it started.
	m, err := Held(dir, service)
	if err != nil {
		return fail(err)
	}
	if m != nil {
		return fail(&LockedError{Service: service, Holder: *m, Manual: true})
	}
	data, err := json.Marshal(h)
	if err != nil {
		return fail(err)
	}
	if err := replaceFile(holderPath, append(data, '\n')); err != nil {
		return fail(fmt.Errorf("deploy lock: record holder: %w", err))
	}
	return &DeployLock{f: f, dir: dir, service: service, holder: h}, nil
}

// openLockFile opens (creating) the flock target. flock(2) needs no write
// access, so a lock file created by another user is opened read-only.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(path)
	}
	return f, err
}

// Holder returns the holder recorded for this lock.
func (l *DeployLock) Holder() Holder { return l.holder }

// Service returns the locked service.
func (l *DeployLock) Service() string { return l.service }

// Release removes the holder record and releases the lock. It may be
// called more than once.
func (l *DeployLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	_, holderPath, _ := lockPaths(l.dir, l.service)
	err := os.Remove(holderPath)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if uerr := unlock(l.f); err == nil {
		err = uerr
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release deploy lock of %s: %w", l.service, err)
	}
	return nil
}

func (l *DeployLock) held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.released
}

// deployBusy probes the deploy lock of service without keeping it: it
// takes a shared flock and drops it at once. A concurrent AcquireDeploy
// retries over such a probe (acquireGrace).
func deployBusy(dir, service string) (bool, error) {
	lockPath, _, _ := lockPaths(dir, service)
	f, err := os.Open(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	busy, err := tryLock(f, false)
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", lockPath, err)
	}
	if !busy {
		unlock(f)
	}
	return busy, nil
}

// readDeployHolder reads the holder file of a busy deploy lock. A new
// holder writes it just after taking the lock, so a missing file, or one
// naming a dead process of this host, is read again for a short while. It
// returns nil if no holder could be read.
func readDeployHolder(dir, service string) *Holder {
	_, holderPath, _ := lockPaths(dir, service)
	deadline := time.Now().Add(holderGrace)
	var last *Holder
	for {
		if data, err := os.ReadFile(holderPath); err == nil {
			var h Holder
			if json.Unmarshal(data, &h) == nil {
				last = &h
				if !(h.Host == hostname() && h.PID > 0 && !pidAlive(h.PID)) {
					return last
				}
			}
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running returns the holder of the deploy lock of service if a deploy is
// running (a Holder with an empty Who if it could not be read), or nil.
func Running(dir, service string) (*Holder, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	busy, err := deployBusy(dir, service)
	if err != nil || !busy {
		return nil, err
	}
	if h := readDeployHolder(dir, service); h != nil {
		return h, nil
	}
	return &Holder{}, nil
}

// deployRunning reports whether deploy id of service is running: the
// deploy lock is held and its holder is that deploy (or a holder that does
// not say which deploy it is, which is taken as running to be safe).
func deployRunning(dir, service, id string) (bool, error) {
	busy, err := deployBusy(dir, service)
	if err != nil || !busy {
		return false, err
	}
	h := readDeployHolder(dir, service)
	return h == nil || h.DeployID == "" || h.DeployID == id, nil
}
