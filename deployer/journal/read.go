package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// HostState is the last known state of one host of a deploy.
type HostState struct {
	Host  string
	Group string
	// Rev is the revision the host was last switched to by this deploy
	// (promote, or rollback); "" if the deploy never switched it, so it
	// still runs Meta.FromRev (or whatever it ran before).
	Rev string
	// Stage is the last stage started or finished on the host; "" if the
	// deploy never reached it.
	Stage string
	// InFlight is true when Stage was started and no result was recorded:
	// the deploy was interrupted in the middle of it.
	InFlight bool
	// OK: the host finished its group (host_done). Failed: it was counted
	// as failed (host_failed). Neither: pending or interrupted.
	OK     bool
	Failed bool
	// RolledBack: the host was rolled back (rolled_back_host, or a
	// successful rollback stage).
	RolledBack bool
	// Err is the last error recorded for the host (failed stage or check,
	// host_failed).
	Err string
	// Updated is the time of the last event about the host.
	Updated time.Time
}

// Deploy is a journal read back.
type Deploy struct {
	Path   string
	Meta   Meta
	Events []Event // including the started event
	// Finished: the journal has a finished event, with Outcome, Ended and
	// Err (the finished event's Err, or its Message for "ended").
	Finished bool
	Outcome  Outcome
	Ended    time.Time
	Err      string
	// HostState has an entry for every host of Meta.Hosts and every host
	// named by an event.
	HostState map[string]HostState
	// OpenPrompt is the last prompt that got no answer, if any.
	OpenPrompt *Event
	// Size is the length in bytes of the complete lines: the offset to
	// Follow from for new events.
	Size int64
	// Torn is the length of a last line cut short by a crash mid-write;
	// it is ignored. 0 when the journal ends cleanly.
	Torn int64
	// BadLines are the numbers (from 1) of complete lines that could not
	// be decoded; they are skipped.
	BadLines []int
}

// Summary is one deploy in a listing.
type Summary struct {
	ID       string
	Service  string
	Path     string
	Who      string
	Nick     string
	Rev      string
	FromRev  string
	Message  string
	Started  time.Time
	Ended    time.Time // zero if not finished
	Finished bool
	Outcome  Outcome
	Err      string
	// Host counts: all, done, failed, rolled back.
	Hosts, Done, Failed, RolledBack int
	// Torn: the journal ends with a torn line (see Deploy.Torn).
	Torn bool
	// ReadErr is set when the journal could not be read; only ID,
	// Service and Path are known then.
	ReadErr string
}

// ErrNoDeploys is returned by Latest when there is no journal.
var ErrNoDeploys = errors.New("no deploys recorded")

// Read reads a whole journal. A torn last line is reported in Deploy.Torn
// and ignored; undecodable complete lines are reported in Deploy.BadLines
// and skipped. The first line must be a started event carrying Meta.
func Read(path string) (*Deploy, error) { return read(path, true) }

// read is Read; without keep, the events are applied (to HostState, the
// outcome, ...) and dropped, Events staying empty: for the index, which
// needs only the state, at the end of a deploy of a thousand hosts.
func read(path string, keep bool) (*Deploy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &Deploy{Path: path}
	r := bufio.NewReaderSize(f, 64<<10)
	lineNo := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] != '\n' {
			d.Torn = int64(len(line)) // no newline: never completed
		} else if len(line) > 0 {
			lineNo++
			if lineNo == 1 {
				if err := d.start(line); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
			} else if ev, derr := decodeLine(line); derr != nil {
				d.BadLines = append(d.BadLines, lineNo)
			} else {
				d.apply(ev)
				if !keep {
					d.Events = d.Events[:0]
				}
			}
			d.Size += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	if lineNo == 0 {
		return nil, fmt.Errorf("%s: not a deploy journal: no complete first line", path)
	}
	return d, nil
}

func decodeLine(line []byte) (Event, error) {
	var ev Event
	err := json.Unmarshal(bytes.TrimSpace(line), &ev)
	if err == nil && ev.Type == "" {
		err = errors.New("event without a type")
	}
	return ev, err
}

// start takes the first line: the started event and its Meta.
func (d *Deploy) start(line []byte) error {
	ev, err := decodeLine(line)
	if err != nil || ev.Type != TypeStarted || ev.Meta == nil {
		return errors.New("not a deploy journal: the first line is not a started event")
	}
	d.Meta = *ev.Meta
	d.Events = append(d.Events, ev)
	d.HostState = map[string]HostState{}
	for _, g := range d.Meta.Groups() {
		for _, h := range d.Meta.Hosts[g] {
			if _, ok := d.HostState[h]; !ok {
				d.HostState[h] = HostState{Host: h, Group: g}
			}
		}
	}
	return nil
}

// apply folds one event into the deploy's state.
func (d *Deploy) apply(ev Event) {
	d.Events = append(d.Events, ev)
	if ev.Host != "" {
		hs, ok := d.HostState[ev.Host]
		if !ok {
			hs = HostState{Host: ev.Host}
		}
		if ev.Group != "" {
			hs.Group = ev.Group
		}
		hs.Updated = ev.Time
		switch ev.Type {
		case TypeStageStarted:
			hs.Stage, hs.InFlight = ev.Stage, true
		case TypeStage:
			hs.Stage, hs.InFlight = ev.Stage, false
			if ev.Failed() {
				hs.Err = eventErr(ev)
				break
			}
			switch ev.Stage {
			case StagePromote:
				hs.Rev = firstNonEmpty(ev.Rev, d.Meta.Rev)
				hs.RolledBack = false
			case StageRollback:
				hs.Rev = firstNonEmpty(ev.Rev, d.Meta.FromRev)
				hs.RolledBack = true
			}
		case TypeCheck:
			if ev.Failed() {
				hs.Err = eventErr(ev)
			}
		case TypeHostFailed:
			hs.Failed, hs.OK, hs.InFlight = true, false, false
			if ev.Err != "" {
				hs.Err = ev.Err
			}
		case TypeHostDone:
			hs.OK, hs.Failed, hs.InFlight = true, false, false
			if ev.Rev != "" {
				hs.Rev = ev.Rev
			}
		case TypeRolledBackHost:
			hs.RolledBack, hs.InFlight = true, false
			hs.Rev = firstNonEmpty(ev.Rev, d.Meta.FromRev)
			if ev.Err != "" {
				hs.Err = ev.Err
			}
		}
		d.HostState[ev.Host] = hs
	}
	switch ev.Type {
	case TypePrompt:
		p := ev
		d.OpenPrompt = &p
	case TypeAnswer:
		d.OpenPrompt = nil
	case TypeFinished:
		d.Finished, d.Outcome, d.Ended = true, ev.Outcome, ev.Time
		d.Err = firstNonEmpty(ev.Err, ev.Message)
		d.OpenPrompt = nil
	}
}

// eventErr is a one-line description of a failed stage or check.
func eventErr(ev Event) string {
	if c := ev.Check; c != nil && !c.OK {
		return "check " + checkText(c)
	}
	if ev.Err != "" {
		return ev.Err
	}
	if ev.ExitCode != nil {
		return fmt.Sprintf("%s: exit %d", firstNonEmpty(ev.Stage, "command"), *ev.ExitCode)
	}
	return "failed"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// Summary summarizes the deploy.
func (d *Deploy) Summary() Summary {
	s := Summary{
		ID: d.Meta.ID, Service: d.Meta.Service, Path: d.Path, Who: d.Meta.Who, Nick: d.Meta.Nick,
		Rev: d.Meta.Rev, FromRev: d.Meta.FromRev, Message: d.Meta.Message,
		Started: d.Meta.Started, Ended: d.Ended, Finished: d.Finished,
		Outcome: d.Outcome, Err: d.Err, Torn: d.Torn > 0,
		Hosts: len(d.HostState),
	}
	for _, h := range d.HostState {
		if h.OK {
			s.Done++
		}
		if h.Failed {
			s.Failed++
		}
		if h.RolledBack {
			s.RolledBack++
		}
	}
	return s
}

// Hosts returns the host states in running order: by group (Meta.Groups,
// then groups only events named), then as listed in Meta.Hosts, then by
// name.
func (d *Deploy) Hosts() []HostState {
	gi := map[string]int{}
	for i, g := range d.Meta.Groups() {
		gi[g] = i
	}
	hi := map[string]int{}
	for _, g := range d.Meta.Groups() {
		for i, h := range d.Meta.Hosts[g] {
			if _, ok := hi[h]; !ok {
				hi[h] = i
			}
		}
	}
	out := make([]HostState, 0, len(d.HostState))
	for _, h := range d.HostState {
		out = append(out, h)
	}
	rank := func(m map[string]int, k string) int {
		if i, ok := m[k]; ok {
			return i
		}
		return len(m)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := rank(gi, a.Group), rank(gi, b.Group); ra != rb {
			return ra < rb
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if ra, rb := rank(hi, a.Host), rank(hi, b.Host); ra != rb {
			return ra < rb
		}
		return a.Host < b.Host
	})
	return out
}
