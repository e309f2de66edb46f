package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Lock takes the manual lock of service: a file that stays until Unlock,
// across restarts, and makes AcquireDeploy refuse. It is refused with a
// *LockedError if the service is already manually locked. h.Who and h.Why
// are required; Since and Host are filled in when zero.
func Lock(dir, service string, h Holder) error {
	if err := ValidService(service); err != nil {
		return err
	}
	if h.Who == "" || strings.TrimSpace(h.Why) == "" {
		return errors.New("lock: who and a reason are required")
	}
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	h.Since = h.Since.UTC()
	if h.Host == "" {
		h.Host = hostname()
	}
	if err := ensureDir(locksDir(dir)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, _, heldPath := lockPaths(dir, service)
	for attempt := 0; ; attempt++ {
		err = createFile(heldPath, append(data, '\n'))
		if !errors.Is(err, fs.ErrExist) {
			break
		}
		cur, herr := Held(dir, service)
		if herr != nil {
			return herr
		}
		if cur != nil {
			return &LockedError{Service: service, Holder: *cur, Manual: true}
		}
		if attempt == 3 { // unlocked and relocked under our feet, repeatedly
			return fmt.Errorf("lock %s: lock file keeps changing; try again", service)
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", service, err)
	}
	return nil
}

// Unlock removes the manual lock of service and returns the holder it
// removed; if none is held it returns an error wrapping ErrNotLocked. who
// is the operator releasing it and must not be empty; any deployer may
// release any manual lock (the caller records who did, e.g. in the SAL).
func Unlock(dir, service, who string) (Holder, error) {
	if err := ValidService(service); err != nil {
		return Holder{}, err
	}
	if strings.TrimSpace(who) == "" {
		return Holder{}, errors.New("unlock: who is required")
	}
	_, _, heldPath := lockPaths(dir, service)
	// Rename first: of racing unlocks exactly one gets the file, and the
	// holder it returns is the one it removed.
	gone := filepath.Join(locksDir(dir), "."+service+".held."+randHex(6)+".unlocked")
	if err := os.Rename(heldPath, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Holder{}, fmt.Errorf("%w: %s has no manual lock", ErrNotLocked, service)
		}
		return Holder{}, fmt.Errorf("unlock %s: %w", service, err)
	}
	data, rerr := os.ReadFile(gone)
	os.Remove(gone)
	if err := syncDir(locksDir(dir)); err != nil {
		return Holder{}, err
	}
	var h Holder
	if rerr != nil || json.Unmarshal(data, &h) != nil {
		h = Holder{Who: "unknown", Why: "unreadable lock file"}
	}
	return h, nil
}

// Held returns the manual lock of service, or nil if there is none. A lock
// file that cannot be parsed still counts as held (by "unknown"): a lock
// fails closed.
func Held(dir, service string) (*Holder, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	_, _, heldPath := lockPaths(dir, service)
	data, err := os.ReadFile(heldPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock of %s: %w", service, err)
	}
	var h Holder
	if err := json.Unmarshal(data, &h); err != nil || h.Who == "" {
		return &Holder{Who: "unknown", Why: "unreadable lock file " + heldPath}, nil
	}
	return &h, nil
}

// ServiceLock is the lock state of one service.
type ServiceLock struct {
	Service string
	// Deploy is the holder of the deploy lock (a deploy is running), or
	// nil.
	Deploy *Holder
	// Manual is the manual lock, or nil.
	Manual *Holder
}

// Locks returns every service that has a deploy running or a manual lock,
// sorted by service.
func Locks(dir string) ([]ServiceLock, error) {
	ents, err := os.ReadDir(locksDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var services []string
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if ext != ".lock" && ext != ".held" {
			continue
		}
		svc := strings.TrimSuffix(name, ext)
		if ValidService(svc) != nil || seen[svc] {
			continue
		}
		seen[svc] = true
		services = append(services, svc)
	}
	sort.Strings(services)
	var out []ServiceLock
	for _, svc := range services {
		d, err := Running(dir, svc)
		if err != nil {
			return nil, err
		}
		m, err := Held(dir, svc)
		if err != nil {
			return nil, err
		}
		if d != nil || m != nil {
			out = append(out, ServiceLock{Service: svc, Deploy: d, Manual: m})
		}
	}
	return out, nil
}
