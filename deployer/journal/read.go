package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
func Read(path string) (*Deploy, error) {
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
		ID: d.Meta.ID, Service: d.Meta.Service, Path: d.Path, Who: d.Meta.Who,
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

// journalFile is a journal found on disk, known by its name only.
type journalFile struct {
	id, service, path string
}

// journals lists the journals of service under dir (service "" = every
// service), newest id first. Files whose name is not a valid id of the
// directory's service are ignored.
func journals(dir, service string) ([]journalFile, error) {
	var services []string
	if service != "" {
		if err := ValidService(service); err != nil {
			return nil, err
		}
		services = []string{service}
	} else {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && ValidService(e.Name()) == nil {
				services = append(services, e.Name())
			}
		}
	}
	var out []journalFile
	for _, svc := range services {
		ents, err := os.ReadDir(filepath.Join(dir, svc))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := e.Name()
			id, ok := strings.CutSuffix(name, ".jsonl")
			if !ok || !e.Type().IsRegular() {
				continue
			}
			if s, _, err := ParseID(id); err != nil || s != svc {
				continue
			}
			out = append(out, journalFile{id: id, service: svc, path: filepath.Join(dir, svc, name)})
		}
	}
	// The id starts with the time, so this is newest first to the second.
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	return out, nil
}

// List returns a summary of every deploy of service under dir (service ""
// = every service), newest first. A journal that cannot be read is listed
// with ReadErr set.
func List(dir, service string) ([]Summary, error) { return ListN(dir, service, 0) }

// ListN is List limited to the n newest deploys (n <= 0: all). Only the
// journals needed are read.
func ListN(dir, service string, n int) ([]Summary, error) {
	files, err := journals(dir, service)
	if err != nil {
		return nil, err
	}
	if n > 0 && n < len(files) {
		// Ids are to the second: keep every journal of the same second
		// as the n-th, the start times decide below.
		cut := n
		for cut < len(files) && sameSecond(files[cut].id, files[n-1].id) {
			cut++
		}
		files = files[:cut]
	}
	out := make([]Summary, 0, len(files))
	for _, jf := range files {
		d, err := Read(jf.path)
		if err != nil {
			_, t, _ := ParseID(jf.id)
			out = append(out, Summary{ID: jf.id, Service: jf.service, Path: jf.path, Started: t, ReadErr: err.Error()})
			continue
		}
		out = append(out, d.Summary())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

func sameSecond(a, b string) bool {
	const n = len("20060102-150405")
	return len(a) >= n && len(b) >= n && a[:n] == b[:n]
}

// Latest returns the path of the newest journal of service (service "" =
// of any service), or an error wrapping ErrNoDeploys.
func Latest(dir, service string) (string, error) {
	l, err := ListN(dir, service, 1)
	if err != nil {
		return "", err
	}
	if len(l) == 0 {
		if service == "" {
			return "", fmt.Errorf("%w in %s", ErrNoDeploys, dir)
		}
		return "", fmt.Errorf("%w for %s", ErrNoDeploys, service)
	}
	return l[0].Path, nil
}

// Unfinished returns the deploys under dir that have no finished event and
// are not running, newest first: their process died (crash, kill, power
// loss). A deploy is running when the deploy lock of its service is held
// and its holder names that deploy (or names no deploy, to be safe). Only
// the end of a finished journal is read.
func Unfinished(dir string) ([]*Deploy, error) {
	files, err := journals(dir, "")
	if err != nil {
		return nil, err
	}
	type lockState struct {
		busy   bool
		holder *Holder
	}
	locks := map[string]*lockState{}
	var out []*Deploy
	for _, jf := range files {
		done, err := endsFinished(jf.path)
		if err != nil {
			return nil, err
		}
		if done {
			continue
		}
		ls := locks[jf.service]
		if ls == nil {
			ls = &lockState{}
			if ls.busy, err = deployBusy(dir, jf.service); err != nil {
				return nil, err
			}
			if ls.busy {
				ls.holder = readDeployHolder(dir, jf.service)
			}
			locks[jf.service] = ls
		}
		if ls.busy && (ls.holder == nil || ls.holder.DeployID == "" || ls.holder.DeployID == jf.id) {
			continue // running
		}
		d, err := Read(jf.path)
		if err != nil {
			return nil, err
		}
		if !d.Finished {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Meta.Started.After(out[j].Meta.Started) })
	return out, nil
}

// endsFinished reports whether the last complete line of a journal is a
// finished event, reading only the end of the file. A journal that ends
// with a torn line is not finished: nothing is written after a finished
// event.
func endsFinished(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := st.Size()
	const chunk = 64 << 10
	off := max(size-chunk, 0)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return false, err
	}
	if len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return false, nil
	}
	body := buf[:len(buf)-1]
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && off > 0 {
		// A last line longer than the chunk: read it all.
		d, err := Read(path)
		if err != nil {
			return false, err
		}
		return d.Finished, nil
	}
	ev, err := decodeLine(body[i+1:])
	return err == nil && ev.Type == TypeFinished, nil
}
