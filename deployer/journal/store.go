package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Store is where the deployment state lives: the deploy locks, the manual
// locks, the journals and the per-service index. Files (the journal
// directory of one deploy host) is the default; a PostgreSQL store
// (package deploybot/deployer/pgstate) shares the state between deploy
// hosts. Every method is safe for concurrent use, and every Store on the
// same backing (two processes, two hosts) sees the others' state: that is
// what the conformance suite (deploybot/deployer/statetest) checks.
type Store interface {
	// AcquireDeploy takes the deploy lock of service without waiting. A
	// running deploy or a manual lock refuses it with a *LockedError
	// naming the holder. h.Who is required and h.DeployID should name the
	// deploy; Since, PID and Host are filled in when zero.
	AcquireDeploy(service string, h Holder) (Lease, error)
	// Running returns the holder of the deploy lock of service while a
	// deploy runs, or nil.
	Running(service string) (*Holder, error)

	// Lock, Unlock and Held are the manual lock (see Lock, Unlock, Held).
	Lock(service string, h Holder) error
	Unlock(service, who string) (Holder, error)
	Held(service string) (*Holder, error)
	// Locks lists the services with a deploy running or a manual lock.
	Locks() ([]ServiceLock, error)

	// Create starts the journal of a new deploy under the held lease l,
	// whose Holder.DeployID must be meta.ID (see Create).
	Create(l Lease, meta Meta) (EventWriter, error)
	// Reopen opens the unfinished journal of the deploy l.Holder().DeployID
	// for appending, under the held lease l, and returns it read (see
	// Reopen). A finished journal is refused with ErrFinished.
	Reopen(l Lease) (EventWriter, *Deploy, error)
	// Read reads the journal of deploy id; an unknown id is an error
	// wrapping fs.ErrNotExist.
	Read(id string) (*Deploy, error)
	// Follow passes every event of deploy id to fn, then the new ones as
	// they are written, until a finished event (nil), fn's error, ctx's,
	// or the deploy stopped without finishing (ErrInterrupted).
	Follow(ctx context.Context, id string, fn func(Event) error) error
	// List returns up to n deploys of service (""= every service), newest
	// first (n <= 0: all).
	List(service string, n int) ([]Summary, error)
	// Unfinished lists the deploys that have no finished event and that
	// no process runs, newest first.
	Unfinished() ([]*Deploy, error)
	// ReadIndex returns the index of service, and its newest deploy read
	// whole when that one did not finish (see ReadIndex).
	ReadIndex(service string) (*Index, *Deploy, error)
	// Close releases what the store holds open (not the leases).
	Close() error
}

// Lease is a held deploy lock.
type Lease interface {
	Service() string
	Holder() Holder
	// Lost is closed when the store can no longer guarantee the lock (its
	// database session ended): the deploy must start nothing new. It is
	// nil, never closed, for a lock that cannot be lost while its process
	// lives (a flock).
	Lost() <-chan struct{}
	// Release lets the lock go. It may be called more than once.
	Release() error
}

// EventWriter appends the events of one deploy; every Append is durable
// (written and flushed, or committed) before it returns, and the writer
// is safe for concurrent use.
type EventWriter interface {
	Append(ev Event) error
	Meta() Meta
	Close() error
}

// LazyAppender is an EventWriter that can also write an event without
// waiting for it to be durable (see Writer.AppendLazy).
type LazyAppender interface {
	AppendLazy(ev Event) error
}

// ErrLeaseLost is returned by an EventWriter whose lease was lost.
var ErrLeaseLost = errors.New("the deploy lock was lost (state store session ended)")

// LatestIn returns the id of the newest deploy of service in st (service
// "" = of any service), or an error wrapping ErrNoDeploys.
func LatestIn(st Store, service string) (string, error) {
	l, err := st.List(service, 1)
	if err != nil {
		return "", err
	}
	if len(l) == 0 {
		if service == "" {
			return "", ErrNoDeploys
		}
		return "", fmt.Errorf("%w for %s", ErrNoDeploys, service)
	}
	return l[0].ID, nil
}

// MarkEndedIn gives up the interrupted deploy id in st: it takes the deploy
// lock (so it is refused with a *LockedError if the deploy is in fact
// running), appends a finished event with Outcome "ended", who and
// reason, and lets the lock go.
func MarkEndedIn(st Store, id, who, reason string) error {
	service, _, err := ParseID(id)
	if err != nil {
		return err
	}
	if who == "" {
		return errors.New("mark ended: who is required")
	}
	l, err := st.AcquireDeploy(service, Holder{Who: who, Why: "marking deploy " + id + " ended", DeployID: id})
	if err != nil {
		return err
	}
	defer l.Release()
	w, d, err := st.Reopen(l)
	if err != nil {
		return err
	}
	ev := Event{Type: TypeFinished, Outcome: OutcomeEnded, Who: who, Message: reason,
		Duration: time.Since(d.Meta.Started).Round(time.Second)}
	if err := w.Append(ev); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// PrepareEvent checks ev and fills it in as Writer.Append does before it
// writes (time, level, texts cut), for stores that write elsewhere.
func PrepareEvent(ev *Event) error { return normalize(ev) }

// EncodeEvent is ev as one JSON line without its newline.
func EncodeEvent(ev Event) ([]byte, error) {
	b, err := encodeLine(ev)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// StartedEvent is the first event of the journal of a new deploy: meta
// checked and filled in as Create does (Service, Started, ID, Version,
// PID, Host) for service.
func StartedEvent(service string, meta Meta) (Event, error) {
	if err := ValidService(service); err != nil {
		return Event{}, err
	}
	if meta.Service != "" && meta.Service != service {
		return Event{}, fmt.Errorf("create journal: meta is for service %s, not %s", quoteShort(meta.Service), service)
	}
	meta.Service = service
	if meta.Who == "" {
		return Event{}, errors.New("create journal: meta.Who is required")
	}
	if meta.Started.IsZero() {
		meta.Started = time.Now()
	}
	meta.Started = meta.Started.UTC()
	if meta.ID == "" {
		id, err := NewID(service, meta.Started)
		if err != nil {
			return Event{}, err
		}
		meta.ID = id
	}
	if err := checkID(service, meta.ID); err != nil {
		return Event{}, err
	}
	meta.Version = Version
	if meta.PID == 0 {
		meta.PID = os.Getpid()
	}
	if meta.Host == "" {
		meta.Host = hostname()
	}
	return Event{Time: meta.Started, Type: TypeStarted, Level: LevelInfo, Meta: &meta}, nil
}

// Build reads a journal from its lines (the started event first), as
// Read does from a file; name is what errors call it.
func Build(name string, lines [][]byte) (*Deploy, error) {
	d := &Deploy{Path: name}
	for i, line := range lines {
		if i == 0 {
			if err := d.start(line); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		} else if ev, err := decodeLine(line); err != nil {
			d.BadLines = append(d.BadLines, i+1)
		} else {
			d.apply(ev)
		}
		d.Size += int64(len(line)) + 1
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: not a deploy journal: no events", name)
	}
	return d, nil
}

// announcedNote starts the note ClaimAnnouncementIn leaves in a journal.
const announcedNote = "interruption announced by "

// ClaimAnnouncementIn records, once for every process sharing st, that the
// interruption of deploy id is being announced by by (a bot and its
// host): it takes the deploy lock (refused with a *LockedError while the
// deploy, its recovery or another claim runs), and appends a note to the
// journal unless one is there already. It reports whether this call made
// the claim: only then should the caller announce. A finished deploy is
// refused with ErrFinished.
func ClaimAnnouncementIn(st Store, id, by string) (bool, error) {
	service, _, err := ParseID(id)
	if err != nil {
		return false, err
	}
	l, err := st.AcquireDeploy(service, Holder{Who: by, Why: "announcing the interrupted deploy " + id, DeployID: id})
	if err != nil {
		return false, err
	}
	defer l.Release()
	w, d, err := st.Reopen(l)
	if err != nil {
		return false, err
	}
	if Announced(d) {
		return false, w.Close()
	}
	if err := w.Append(Event{Type: TypeNote, Who: by, Message: announcedNote + by}); err != nil {
		w.Close()
		return false, err
	}
	return true, w.Close()
}

// Announced reports whether the interruption of d was announced
// (ClaimAnnouncementIn).
func Announced(d *Deploy) bool {
	for _, ev := range d.Events {
		if ev.Type == TypeNote && strings.HasPrefix(ev.Message, announcedNote) {
			return true
		}
	}
	return false
}
