package journal

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FormatOptions selects and shapes what Format prints.
type FormatOptions struct {
	// HostGlob, if set, keeps only the events about hosts it matches
	// (path.Match syntax), tried on the host as written, without a :port,
	// and on its first label ("scb1002*" and "scb1002" both match
	// scb1002.eqiad.wmnet). Events about no host (start, groups, prompts,
	// the end) are always kept.
	HostGlob string
	// Level is the minimum level printed: "debug", "info", "warn" or
	// "error"; "" means info.
	Level string
	// Output prints the output of successful commands too; at debug level
	// it is always printed. Failed commands always show their output.
	Output bool
	// Location for times; nil means UTC.
	Location *time.Location
}

// Validate checks the level and the host glob.
func (o FormatOptions) Validate() error {
	if _, err := ParseLevel(o.Level); err != nil {
		return err
	}
	if o.HostGlob != "" {
		if _, err := path.Match(o.HostGlob, ""); err != nil {
			return fmt.Errorf("bad host pattern %s: %v", quoteShort(o.HostGlob), err)
		}
	}
	return nil
}

// Match reports whether ev passes the level and host filters. An invalid
// filter matches nothing (see Validate).
func (o FormatOptions) Match(ev Event) bool {
	min, err := ParseLevel(o.Level)
	if err != nil {
		return false
	}
	lvl := ev.Level
	if _, ok := levelRank[lvl]; !ok {
		lvl = DefaultLevel(ev)
	}
	if levelRank[lvl] < levelRank[min] {
		return false
	}
	if o.HostGlob == "" || ev.Host == "" {
		return true
	}
	names := []string{ev.Host}
	if h, _, ok := strings.Cut(ev.Host, ":"); ok {
		names = append(names, h)
	}
	if h, _, ok := strings.Cut(ev.Host, "."); ok {
		names = append(names, h)
	}
	for _, n := range names {
		if ok, _ := path.Match(o.HostGlob, n); ok {
			return true
		}
	}
	return false
}

// Format writes ev for people, on one line (two for a deploy's start),
// followed by the indented output tail of a failed command, if it passes
// the filters of opts:
//
//	01:45:12.345 [eqiad] scb1002 fetch: git fetch … → exit 0 in 1.2s
//
// Times are printed in opts.Location (UTC by default); control characters
// from the journal are escaped, so a journal cannot drive the terminal.
func Format(w io.Writer, ev Event, opts FormatOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if !opts.Match(ev) {
		return nil
	}
	_, err := io.WriteString(w, render(ev, opts))
	return err
}

func render(ev Event, opts FormatOptions) string {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	b.WriteString(ev.Time.In(loc).Format("15:04:05.000"))
	b.WriteByte(' ')
	if ev.Group != "" {
		fmt.Fprintf(&b, "[%s] ", oneLine(ev.Group))
	}
	if ev.Host != "" {
		b.WriteString(oneLine(ev.Host))
		b.WriteByte(' ')
	}
	failed := ev.Failed()
	output := ""
	switch ev.Type {
	case TypeStarted:
		renderStarted(&b, ev, loc)
	case TypeGroupStarted:
		b.WriteString("group started")
		suffix(&b, ": ", ev.Message)
	case TypeStageStarted:
		b.WriteString(oneLine(firstNonEmpty(ev.Stage, "stage")))
		if ev.Command != "" {
			b.WriteString(": ")
			b.WriteString(oneLine(ev.Command))
		}
		b.WriteString(" …")
	case TypeStage:
		b.WriteString(oneLine(firstNonEmpty(ev.Stage, "stage")))
		if ev.Command != "" {
			b.WriteString(": ")
			b.WriteString(oneLine(ev.Command))
		}
		b.WriteString(" → ")
		switch {
		case ev.ExitCode != nil:
			fmt.Fprintf(&b, "exit %d", *ev.ExitCode)
		case ev.Err != "":
			b.WriteString("FAILED")
		default:
			b.WriteString("ok")
		}
		if ev.Duration > 0 {
			b.WriteString(" in ")
			b.WriteString(fmtDuration(ev.Duration))
		}
		if ev.Rev != "" && !failed {
			b.WriteString(", rev ")
			b.WriteString(shortRev(ev.Rev))
		}
		suffix(&b, ": ", ev.Err)
		output = ev.Output
	case TypeCheck:
		if c := ev.Check; c != nil {
			b.WriteString("check ")
			b.WriteString(checkText(c))
			if !c.OK {
				output = c.Output
			}
		} else {
			b.WriteString("check")
		}
		suffix(&b, ": ", ev.Err)
	case TypeHostFailed:
		b.WriteString("FAILED")
		if ev.Stage != "" {
			b.WriteString(" at ")
			b.WriteString(oneLine(ev.Stage))
		}
		suffix(&b, ": ", ev.Err)
		output = ev.Output
	case TypeHostDone:
		b.WriteString("done")
		if ev.Rev != "" {
			b.WriteString(", rev ")
			b.WriteString(shortRev(ev.Rev))
		}
	case TypeGroupFinished:
		b.WriteString("group finished")
		suffix(&b, ": ", string(ev.Outcome))
		suffix(&b, ", ", ev.Message)
		suffix(&b, ": ", ev.Err)
	case TypePrompt:
		b.WriteString("asked: ")
		b.WriteString(oneLine(ev.Prompt))
	case TypeAnswer:
		b.WriteString("answer: ")
		b.WriteString(oneLine(ev.Answer))
		if ev.Who != "" {
			fmt.Fprintf(&b, " (by %s)", oneLine(ev.Who))
		}
	case TypeRolledBackHost:
		b.WriteString("rolled back")
		if ev.Rev != "" {
			b.WriteString(" to ")
			b.WriteString(shortRev(ev.Rev))
		}
		suffix(&b, ": ", ev.Err)
	case TypeNote:
		b.WriteString(oneLine(ev.Message))
		suffix(&b, ": ", ev.Err)
	case TypeResumed:
		b.WriteString("deploy resumed")
		suffix(&b, " by ", ev.Who)
		suffix(&b, ": ", ev.Message)
	case TypeFinished:
		b.WriteString("deploy ")
		switch ev.Outcome {
		case OutcomeSuccess:
			b.WriteString("finished: success")
		case OutcomeNoop:
			b.WriteString("finished: nothing to do, already live")
		case OutcomeFailed:
			b.WriteString("FAILED")
		case OutcomeRolledBack:
			b.WriteString("rolled back")
		case OutcomeEnded:
			b.WriteString("marked ended")
		default:
			b.WriteString(oneLine(firstNonEmpty(string(ev.Outcome), "finished")))
		}
		if ev.Duration > 0 {
			b.WriteString(" after ")
			b.WriteString(fmtDuration(ev.Duration))
		}
		suffix(&b, " by ", ev.Who)
		suffix(&b, ": ", ev.Err)
		suffix(&b, ": ", ev.Message)
	default:
		b.WriteString(oneLine(ev.Type))
		suffix(&b, ": ", ev.Message)
		suffix(&b, ": ", ev.Err)
	}
	b.WriteByte('\n')
	showOutput := failed || opts.Output || strings.EqualFold(opts.Level, LevelDebug)
	if output != "" && showOutput {
		writeIndented(&b, output)
	}
	return b.String()
}

func renderStarted(b *strings.Builder, ev Event, loc *time.Location) {
	m := ev.Meta
	if m == nil {
		b.WriteString("deploy started\n")
		return
	}
	fmt.Fprintf(b, "%s: deploying %s ", oneLine(m.Who), oneLine(m.Service))
	if m.FromRev != "" {
		b.WriteString(shortRev(m.FromRev))
		b.WriteString("..")
	}
	b.WriteString(shortRev(m.Rev))
	fmt.Fprintf(b, " (%s, id %s", ev.Time.In(loc).Format("2006-01-02 MST"), oneLine(m.ID))
	if m.Source != "" {
		fmt.Fprintf(b, ", from %s", oneLine(m.Source))
	}
	if m.Force {
		b.WriteString(", forced")
	}
	b.WriteString(")")
	suffix(b, ": ", m.Message)
	b.WriteString("\n    groups:")
	groups := m.Groups()
	if len(groups) == 0 {
		b.WriteString(" none")
	}
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		n := len(m.Hosts[g])
		fmt.Fprintf(b, " %s (%d host%s)", oneLine(g), n, plural(n))
	}
}

func suffix(b *strings.Builder, sep, s string) {
	if s != "" {
		b.WriteString(sep)
		b.WriteString(oneLine(s))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkText describes a check result: `info (http GET /_info): 200 in
// 35ms` or `info (http GET /_info): FAILED 500 in 35ms (body: "db down")`.
func checkText(c *CheckRecord) string {
	var b strings.Builder
	b.WriteString(oneLine(firstNonEmpty(c.Name, c.Kind, "check")))
	if c.Kind != "" || c.Target != "" {
		b.WriteString(" (")
		b.WriteString(oneLine(strings.TrimSpace(c.Kind + " " + c.Target)))
		b.WriteString(")")
	}
	b.WriteString(": ")
	var parts []string
	if !c.OK {
		parts = append(parts, "FAILED")
	}
	if c.Status != 0 {
		parts = append(parts, strconv.Itoa(c.Status))
	}
	if c.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit %d", *c.ExitCode))
	}
	if c.OK && len(parts) == 0 {
		parts = append(parts, "ok")
	}
	if c.Latency > 0 {
		parts = append(parts, "in "+fmtDuration(c.Latency))
	}
	b.WriteString(strings.Join(parts, " "))
	if c.Err != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(c.Err))
	}
	if !c.OK && c.Body != "" {
		b.WriteString(" (body: ")
		b.WriteString(strconv.Quote(head(c.Body, 200)))
		b.WriteString(")")
	}
	return b.String()
}

// writeIndented writes a multi-line output, each line indented, trailing
// blank lines dropped.
func writeIndented(b *strings.Builder, out string) {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = strings.ReplaceAll(out, "\r", "\n")
	lines := strings.Split(strings.TrimRight(out, "\n \t"), "\n")
	for _, l := range lines {
		b.WriteString("    ")
		b.WriteString(clean(l))
		b.WriteByte('\n')
	}
}

// oneLine escapes control characters (newlines included), so s stays on
// one line and cannot drive a terminal.
func oneLine(s string) string { return clean(strings.ReplaceAll(s, "\t", " ")) }

// clean escapes every character that is not printable (except tab), and
// invalid UTF-8, the way Go quotes strings: \n, \x1b, \u202e.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || (!unicode.IsPrint(r) && r != '\t') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || r == '\t':
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// fmtDuration: 35ms, 1.2s, 1m42s, 1h2m3s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// shortRev shortens a full hex sha1 to 7 characters.
func shortRev(rev string) string {
	if len(rev) >= 12 && strings.Trim(rev, "0123456789abcdef") == "" {
		return rev[:7]
	}
	return oneLine(rev)
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
