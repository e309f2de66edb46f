package journal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"
)

var (
	serviceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	idRE      = regexp.MustCompile(`^([0-9]{8}-[0-9]{6})-([a-z0-9][a-z0-9._-]{0,63})-([0-9a-f]{4})$`)
)

// idTimeLayout is the time part of a deploy id, in UTC.
const idTimeLayout = "20060102-150405"

// ErrBadService is wrapped by the error for a service name that is not
// acceptable in a path.
var ErrBadService = errors.New("invalid service name")

// ErrBadID is wrapped by the error for a malformed deploy id.
var ErrBadID = errors.New("invalid deploy id")

// ValidService reports whether name may be used as a service name: 1 to 64
// characters of a-z, 0-9, '.', '_' and '-', starting with a letter or a
// digit (the same rule as the configuration). Every function of this
// package that takes a service checks it before building a path.
func ValidService(name string) error {
	if !serviceRE.MatchString(name) {
		return fmt.Errorf("%w %s: want 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit",
			ErrBadService, quoteShort(name))
	}
	return nil
}

// NewID returns a new deploy id for service, of the form
// 20261126-014512-citoid-3f9a: the UTC time t (to the second), the service
// and 4 random hex digits. Ids of the same service sort by time.
func NewID(service string, t time.Time) (string, error) {
	if err := ValidService(service); err != nil {
		return "", err
	}
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(idTimeLayout) + "-" + service + "-" + randHex(2), nil
}

// ParseID checks a deploy id and returns its service and time.
func ParseID(id string) (service string, t time.Time, err error) {
	m := idRE.FindStringSubmatch(id)
	if m == nil {
		return "", time.Time{}, fmt.Errorf("%w %s: want YYYYMMDD-HHMMSS-<service>-<4 hex digits>", ErrBadID, quoteShort(id))
	}
	t, err = time.ParseInLocation(idTimeLayout, m[1], time.UTC)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w %s: bad time: %v", ErrBadID, quoteShort(id), err)
	}
	return m[2], t, nil
}

// JournalPath returns the path of the journal of deploy id of service
// under dir, after checking both.
func JournalPath(dir, service, id string) (string, error) {
	if err := ValidService(service); err != nil {
		return "", err
	}
	if err := checkID(service, id); err != nil {
		return "", err
	}
	return filepath.Join(dir, service, id+".jsonl"), nil
}

// splitJournalPath recovers the journal directory, service and id from a
// journal path made by JournalPath. ok is false for any other path.
func splitJournalPath(path string) (dir, service, id string, ok bool) {
	base := filepath.Base(path)
	if filepath.Ext(base) != ".jsonl" {
		return "", "", "", false
	}
	id = base[:len(base)-len(".jsonl")]
	service, _, err := ParseID(id)
	if err != nil {
		return "", "", "", false
	}
	sdir := filepath.Dir(path)
	if filepath.Base(sdir) != service {
		return "", "", "", false
	}
	return filepath.Dir(sdir), service, id, true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// checkID checks that id is a deploy id of service.
func checkID(service, id string) error {
	svc, _, err := ParseID(id)
	if err != nil {
		return err
	}
	if svc != service {
		return fmt.Errorf("%w %s: it belongs to service %s, not %s", ErrBadID, id, svc, service)
	}
	return nil
}
