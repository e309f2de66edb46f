package deployer

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"deploybot/deployer/journal"
)

// Types of the engine's records that front ends read. They are the
// journal's: the engine is their one owner, front ends only ask it.
type (
	// Holder says who holds a lock, since when and why.
	Holder = journal.Holder
	// LockedError refuses a deploy or a lock, naming the holder.
	LockedError = journal.LockedError
	// Summary is one past or running deploy in a listing.
	Summary = journal.Summary
	// Deploy is a deploy's journal read back: its meta, events and the
	// last known state of every host.
	Deploy = journal.Deploy
	// ServiceLock is the lock state of one service.
	ServiceLock = journal.ServiceLock
)

// Errors of the engine's records.
var (
	ErrNotLocked = journal.ErrNotLocked
	ErrLocked    = journal.ErrLocked
	ErrFinished  = journal.ErrFinished
)

// Shared text helpers: every front end shortens revisions and squeezes
// reasons the same way.
var (
	ShortRev = journal.ShortRev
	OneLine  = journal.OneLine
	// Person is how an operator is shown: "alice_ (alice)".
	Person = journal.Person
	Clip   = journal.Clip
)

// Lock takes the manual lock of service for h (Who and Why required,
// Nick when known): deploys from every front end are refused until
// Unlock. It is refused with a *LockedError when the service is locked
// already.
func (e *Engine) Lock(service string, h Holder) error {
	s, err := e.service(service)
	if err != nil {
		return err
	}
	return e.store.Lock(s.Name, Holder{Who: h.Who, Nick: h.Nick, Why: h.Why})
}

// Unlock releases the manual lock of service and returns what it was
// (ErrNotLocked when there was none).
func (e *Engine) Unlock(service, who string) (Holder, error) {
	s, err := e.service(service)
	if err != nil {
		return Holder{}, err
	}
	return e.store.Unlock(s.Name, who)
}

// Locks lists the services with a deploy running or a manual lock.
func (e *Engine) Locks() ([]ServiceLock, error) { return e.store.Locks() }

// History returns up to n deploys of service, newest first (n <= 0: all).
// Up to journal.IndexRecent come from the service's index, without
// reading the journals.
func (e *Engine) History(service string, n int) ([]Summary, error) {
	s, err := e.service(service)
	if err != nil {
		return nil, err
	}
	if n > 0 && n <= journal.IndexRecent {
		ix, _, err := e.store.ReadIndex(s.Name)
		if err != nil {
			return nil, err
		}
		return slices.Clone(ix.Recent[:min(n, len(ix.Recent))]), nil
	}
	return e.store.List(s.Name, n)
}

// FormatSummary writes a deploy's summary line.
func FormatSummary(w io.Writer, s Summary) error { return journal.FormatSummary(w, s) }

// lastGood returns the revision of the last deploy of service that left
// every host on it ("" if none).
func (e *Engine) lastGood(service string) string {
	ix, _, err := e.store.ReadIndex(service)
	if err != nil || ix.LastGood == nil {
		return ""
	}
	return ix.LastGood.Rev
}

// previousGood returns the revision live now (the last one deployed
// successfully) and the last one deployed successfully before it.
func (e *Engine) previousGood(service string) (cur, prev string, err error) {
	ix, _, err := e.store.ReadIndex(service)
	switch {
	case err != nil:
		return "", "", err
	case ix.LastGood == nil:
		return "", "", errors.New("no successful deploy recorded")
	case ix.PrevGoodRev == "":
		return ix.LastGood.Rev, "", fmt.Errorf("no successful deploy of another revision before %s recorded", short(ix.LastGood.Rev))
	}
	return ix.LastGood.Rev, ix.PrevGoodRev, nil
}

// Unfinished lists the deploys whose process died before they finished,
// newest first, with the last known state of every host.
func (e *Engine) Unfinished() ([]*Deploy, error) {
	return e.store.Unfinished()
}

// ClaimAnnouncement records that the interruption of deploy id is being
// announced by by, once for every process sharing the deploy state, and
// reports whether this call made the claim (only then announce it). While
// the deploy lock is held (the deploy or its recovery running, another
// claim) it is refused with a *LockedError; a finished deploy with
// ErrFinished.
func (e *Engine) ClaimAnnouncement(id, by string) (bool, error) {
	return journal.ClaimAnnouncementIn(e.store, id, by)
}

// Interrupted returns the newest deploy of service if its process died
// before it finished, or nil.
func (e *Engine) Interrupted(service string) (*Deploy, error) {
	s, err := e.service(service)
	if err != nil {
		return nil, err
	}
	_, d, err := e.store.ReadIndex(s.Name)
	if err != nil || d == nil {
		return nil, err
	}
	if h, err := e.store.Running(s.Name); err != nil {
		return nil, err
	} else if h != nil && (h.DeployID == "" || h.DeployID == d.Meta.ID) {
		return nil, nil // running
	}
	return d, nil
}

// Status is what a service is doing and running, as !status shows it.
type Status struct {
	Service string
	// Running is the deploy in progress: in this engine (Here), or in
	// another process (read from its journal). DeployLock is the holder
	// of the deploy lock: who runs it, since when, why.
	Running    *Live
	Here       bool
	DeployLock *Holder
	// RunningErr: the deploy lock or its journal could not be read.
	RunningErr error
	// Interrupted: the newest deploy did not finish and no process runs
	// it; it waits for Recover.
	Interrupted bool
	// LastGood is the last deploy that left every host on its revision.
	LastGood *Summary
	// Groups is the revision of each group's hosts according to the
	// newest deploy, whatever its end.
	Groups []GroupRevs
	// HistoryErr: the deploys could not be read.
	HistoryErr error
	// Lock is the manual lock; LockErr says why it could not be read.
	Lock    *Holder
	LockErr error
}

// GroupRevs counts the hosts of one group by revision, most hosts first;
// a host whose state is unknown counts under RevUnknown.
type GroupRevs = journal.GroupRevs

// RevCount is a number of hosts on one revision.
type RevCount = journal.RevCount

// RevUnknown stands for the revision of a host whose state is unknown.
const RevUnknown = journal.RevUnknown

// Status reads the state of service: the running deploy, the live
// revision, the revision per group and the manual lock.
func (e *Engine) Status(service string) (*Status, error) {
	s, err := e.service(service)
	if err != nil {
		return nil, err
	}
	st := &Status{Service: s.Name}
	// The index, and the newest deploy read whole only when it did not
	// finish (running, or interrupted).
	ix, newest, err := e.store.ReadIndex(s.Name)
	st.HistoryErr = err
	if ix != nil {
		st.LastGood, st.Groups = ix.LastGood, ix.Groups
	}
	if newest != nil {
		st.Groups = newest.GroupRevs()
	}
	st.DeployLock, st.RunningErr = e.store.Running(s.Name)
	switch l, ok := e.Active(s.Name); {
	case ok:
		st.Running, st.Here = l, true
	case st.DeployLock != nil:
		st.Running, st.RunningErr = e.liveElsewhere(s.Name, st.DeployLock, newest)
	case st.RunningErr == nil && newest != nil:
		st.Interrupted = true
	}
	st.Lock, st.LockErr = e.store.Held(s.Name)
	return st, nil
}

// liveElsewhere describes, from its journal, the deploy another process
// runs; newest is the newest journal read (usually that deploy's).
func (e *Engine) liveElsewhere(service string, h *Holder, newest *Deploy) (*Live, error) {
	if h.DeployID == "" {
		return nil, nil
	}
	d := newest
	if d == nil || d.Meta.ID != h.DeployID {
		if _, _, err := journal.ParseID(h.DeployID); err != nil {
			return nil, nil // the holder names no deploy this engine can read
		}
		var err error
		if d, err = e.store.Read(h.DeployID); err != nil {
			return nil, fmt.Errorf("journal unreadable: %w", err)
		}
	}
	l := &Live{ID: d.Meta.ID, Service: service, Who: d.Meta.Who, Nick: d.Meta.Nick, Source: d.Meta.Source, From: d.Meta.FromRev,
		To: d.Meta.Rev, Started: d.Meta.Started, Stage: StagePreparing}
	for _, hosts := range d.Meta.Hosts {
		l.Total += len(hosts)
	}
	for _, hs := range d.HostState {
		switch {
		case hs.InFlight:
			l.InFlight++
		case hs.Failed:
			l.Failed++
		case hs.OK:
			l.Done++
		}
	}
	for i := len(d.Events) - 1; i >= 0; i-- {
		ev := d.Events[i]
		if ev.Type == journal.TypeGroupStarted {
			l.Stage, l.Group = StageDeploying, ev.Group
			break
		}
		if ev.Type == journal.TypeResumed {
			l.Stage = StageRollingBack
			break
		}
	}
	if op := d.OpenPrompt; op != nil {
		l.Stage = StageWaiting
		l.Prompt = &Prompt{Service: service, DeployID: d.Meta.ID, Kind: op.Message, Group: op.Group, Text: op.Prompt,
			Default: Rollback, Deadline: op.Deadline}
	}
	return l, nil
}

// HostsByState summarizes the hosts of d by group and state: "canary: 1
// on 5d6e7f8; eqiad: 2 on 5d6e7f8, 1 in flight (state unknown), 3 not
// reached".
func HostsByState(d *Deploy) string {
	var parts []string
	for _, g := range d.Meta.Groups() {
		counts := map[string]int{}
		var order []string
		for _, h := range d.Meta.Hosts[g] {
			k := hostStateWord(d, h)
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		cs := make([]string, 0, len(order))
		for _, k := range order {
			cs = append(cs, fmt.Sprintf("%d %s", counts[k], k))
		}
		parts = append(parts, g+": "+strings.Join(cs, ", "))
	}
	return strings.Join(parts, "; ")
}

func hostStateWord(d *Deploy, host string) string {
	hs, ok := d.HostState[host]
	switch {
	case !ok || hs.Stage == "":
		return "not reached"
	case hs.InFlight:
		return "in flight (state unknown)"
	case hs.Rev != "" && hs.Failed:
		return "on " + short(hs.Rev) + " (failed)"
	case hs.Rev != "":
		return "on " + short(hs.Rev)
	case hs.Failed:
		return "failed before the switch"
	}
	return "state unknown"
}
