package journal

import (
	"fmt"
	"io"
	"path"
	"strings"
	"time"
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
	// Output prints the commands that passed too (at info level they are
	// left out), with their output; at debug level they and their output
	// are always printed, with the remote scripts. Failed commands always
	// show their output.
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
	if _, ok := levelRank[lvl]; !ok || ev.Type == TypeStage || ev.Type == TypeCheck {
		// Stages and checks are shown by today's rule whatever level an
		// older journal recorded for them.
		lvl = DefaultLevel(ev)
		if o.Output && lvl == LevelDebug && ev.Type == TypeStage {
			lvl = LevelInfo // asked for: the commands that passed, with their output
		}
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
	debug := strings.EqualFold(opts.Level, LevelDebug)
	output := ""
	switch ev.Type {
	case TypeStarted:
		renderStarted(&b, ev, loc)
	case TypeGroupStarted:
		b.WriteString("group started")
		suffix(&b, ": ", ev.Message)
	case TypeStageStarted:
		writeStage(&b, ev, debug)
		b.WriteString(" …")
	case TypeStage:
		writeStage(&b, ev, debug)
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
	showOutput := failed || opts.Output || debug
	if output != "" && showOutput {
		writeIndented(&b, output)
	}
	return b.String()
}

// writeStage writes the stage's name and, at debug level only, the
// command it ran (a remote script can be kilobytes long).
func writeStage(b *strings.Builder, ev Event, debug bool) {
	b.WriteString(oneLine(firstNonEmpty(ev.Stage, "stage")))
	if debug && ev.Command != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(ev.Command))
	}
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
