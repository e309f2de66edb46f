package journal

import (
	"fmt"
	"io"
	"strings"
)

// Person is how one operator is shown everywhere: the nick, with the
// account after it when the two differ — "alice", "alice_ (alice)". Who
// is the identity (the IRC account, or the Unix user of the shell); nick
// is "" when there is none besides it.
func Person(nick, who string) string {
	switch {
	case nick == "":
		return who
	case who == "" || strings.EqualFold(nick, who):
		return nick
	}
	return nick + " (" + who + ")"
}

// String describes the host's state in a few words: "5d6e7f8, done",
// "FAILED at fetch: …", "interrupted during promote", "not reached".
func (h HostState) String() string {
	var parts []string
	switch {
	case h.Failed:
		s := "FAILED"
		if h.Stage != "" {
			s += " at " + oneLine(h.Stage)
		}
		if h.Err != "" {
			s += ": " + oneLine(h.Err)
		}
		parts = append(parts, s)
	case h.InFlight:
		parts = append(parts, "interrupted during "+oneLine(h.Stage))
	case h.OK:
		parts = append(parts, "done")
	case h.Stage == "":
		parts = append(parts, "not reached")
	default:
		parts = append(parts, "after "+oneLine(h.Stage))
	}
	if h.RolledBack {
		parts = append(parts, "rolled back to "+shortRev(h.Rev))
	} else if h.Rev != "" {
		parts = append(parts, "switched to "+shortRev(h.Rev))
	}
	if !h.Failed && h.Err != "" {
		parts = append(parts, "last error: "+oneLine(h.Err))
	}
	return strings.Join(parts, ", ")
}

// FormatSummary writes one line about a deploy, for listings:
//
//	20261126-014512-citoid-3f9a alice 1a2b3c4..5d6e7f8 success 10/10 hosts 1m42s: Fix T12345
func FormatSummary(w io.Writer, s Summary) error {
	var b strings.Builder
	b.WriteString(oneLine(s.ID))
	if s.ReadErr != "" {
		fmt.Fprintf(&b, " unreadable: %s\n", oneLine(s.ReadErr))
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteByte(' ')
	b.WriteString(oneLine(s.Who))
	b.WriteByte(' ')
	if s.FromRev != "" {
		b.WriteString(shortRev(s.FromRev))
		b.WriteString("..")
	}
	b.WriteString(shortRev(s.Rev))
	b.WriteByte(' ')
	if s.Finished {
		b.WriteString(oneLine(string(s.Outcome)))
	} else {
		b.WriteString("unfinished")
	}
	fmt.Fprintf(&b, " %d/%d hosts", s.Done, s.Hosts)
	if s.Failed > 0 {
		fmt.Fprintf(&b, " (%d failed)", s.Failed)
	}
	if s.RolledBack > 0 {
		fmt.Fprintf(&b, " (%d rolled back)", s.RolledBack)
	}
	if s.Finished && !s.Ended.IsZero() && !s.Started.IsZero() {
		b.WriteByte(' ')
		b.WriteString(fmtDuration(s.Ended.Sub(s.Started)))
	}
	suffix(&b, ": ", s.Message)
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatState writes where a deploy stands: a header, then one line per
// host in running order, then the open prompt if any. It is meant for an
// interrupted deploy (see Unfinished), but works for any.
func FormatState(w io.Writer, d *Deploy) error {
	var b strings.Builder
	m := d.Meta
	fmt.Fprintf(&b, "%s %s by %s: ", oneLine(m.Service), oneLine(m.ID), oneLine(m.Who))
	if m.FromRev != "" {
		b.WriteString(shortRev(m.FromRev))
		b.WriteString("..")
	}
	b.WriteString(shortRev(m.Rev))
	if d.Finished {
		fmt.Fprintf(&b, ", %s", oneLine(string(d.Outcome)))
	} else {
		last := d.Events[len(d.Events)-1].Time
		fmt.Fprintf(&b, ", unfinished (last event %s)", last.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if d.Torn > 0 {
		fmt.Fprintf(&b, " [torn last line: %d bytes ignored]", d.Torn)
	}
	if len(d.BadLines) > 0 {
		fmt.Fprintf(&b, " [%d unreadable lines skipped]", len(d.BadLines))
	}
	b.WriteByte('\n')
	for _, h := range d.Hosts() {
		fmt.Fprintf(&b, "    [%s] %s: %s\n", oneLine(firstNonEmpty(h.Group, "?")), oneLine(h.Host), h.String())
	}
	if p := d.OpenPrompt; p != nil {
		fmt.Fprintf(&b, "    waiting for an answer: %s\n", oneLine(p.Prompt))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteLog writes a deploy's log as people read it: first the per-host
// summary (FormatState), then a blank line, then every event that passes
// the filters of opts (Format). The web page of a deploy and
// 'deploybot deploy-log' both print it.
func WriteLog(w io.Writer, d *Deploy, opts FormatOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if err := FormatState(w, d); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	for _, ev := range d.Events {
		if err := Format(w, ev, opts); err != nil {
			return err
		}
	}
	return nil
}
