package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"deploybot/deployer"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// terminalWidth is the width of the terminal f, or 80.
func terminalWidth(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	return 80
}

// progress prints a deploy's events for the operator at a shell. Always:
// plain lines — the start, each group's start and result, each failed
// host, prompts and answers, rollbacks, the outcome. On a terminal (tty)
// also one live line, rewritten in place, with the hosts done, failed
// and in flight per group, and a table of the groups at the end.
type progress struct {
	w   io.Writer
	tty bool
	// width of the terminal: the live line is cut to fit it, so that it
	// never wraps (a wrapped line cannot be rewritten in place).
	width int
	// prompts: print questions (nobody is asked at a terminal).
	prompts bool

	mu     sync.Mutex
	live   bool // the live line is on screen
	groups []*groupCount
	byName map[string]*groupCount
}

// groupCount is what progress knows of one group.
type groupCount struct {
	name                        string
	total, ok, failed, inFlight int
	rolledOK, rolledBad         int
	outcome                     deployer.Outcome
	finished                    bool
}

// newProgress returns a progress printing to w, live when w is a
// terminal.
func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		p.tty, p.width = true, terminalWidth(f)
	}
	return p
}

func (p *progress) endLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// clear erases the live line, if any.
func (p *progress) clear() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

func (p *progress) group(name string) *groupCount {
	if p.byName == nil {
		p.byName = map[string]*groupCount{}
	}
	g := p.byName[name]
	if g == nil {
		g = &groupCount{name: name}
		p.byName[name] = g
		p.groups = append(p.groups, g)
	}
	return g
}

// Observe implements deployer.Observer.
func (p *progress) Observe(ev deployer.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.line(ev)
	if p.tty && ev.Type != deployer.EventFinished {
		p.drawLive()
	}
}

// line prints the plain line of ev, if it has one, and counts it.
func (p *progress) line(ev deployer.Event) {
	switch ev.Type {
	case deployer.EventStarted:
		msg := ""
		if ev.Message != "" {
			msg = ": " + ev.Message
		}
		fmt.Fprintf(p.w, "deploy %s: %s %s..%s (%d commits) to %d hosts by %s%s\n", ev.DeployID, ev.Service, shortRev(ev.From), shortRev(ev.To), len(ev.Commits), ev.Total, ev.Who, msg)
	case deployer.EventGroupStarted:
		p.group(ev.Group).total = ev.Total
		fmt.Fprintf(p.w, "[%s] started: %d hosts\n", ev.Group, ev.Total)
	case deployer.EventHostStarted:
		p.group(ev.Group).inFlight++
	case deployer.EventHostDone:
		g := p.group(ev.Group)
		g.ok++
		g.inFlight = max(g.inFlight-1, 0)
	case deployer.EventHostFailed:
		g := p.group(ev.Group)
		g.failed++
		g.inFlight = max(g.inFlight-1, 0)
		fmt.Fprintf(p.w, "[%s] %s FAILED: %s\n", ev.Group, ev.Host, ev.Reason)
	case deployer.EventGroupFinished:
		g := p.group(ev.Group)
		g.finished, g.outcome, g.inFlight = true, ev.Outcome, 0
		fmt.Fprintf(p.w, "[%s] %s: %d/%d ok, %d failed in %s\n", ev.Group, ev.Outcome, ev.OK, ev.Total, ev.Failed, ev.Duration.Round(10*time.Millisecond))
	case deployer.EventPrompt:
		if p.prompts { // no terminal asks it
			fmt.Fprintf(p.w, "question: %s\n", ev.Prompt)
		}
	case deployer.EventAnswer:
		fmt.Fprintf(p.w, "answer: %s (%s)\n", ev.Answer, ev.Who)
	case deployer.EventStopped:
		fmt.Fprintf(p.w, "[%s] %s: %s\n", ev.Group, ev.Host, ev.Message)
	case deployer.EventRollback:
		g := p.group(ev.Group)
		g.rolledOK, g.rolledBad = ev.OK, ev.Failed
		fmt.Fprintf(p.w, "[%s] rolled back: %d/%d restored, %d failed\n", ev.Group, ev.OK, ev.Total, ev.Failed)
	case deployer.EventFinished:
		p.finished(ev)
	}
}

func (p *progress) finished(ev deployer.Event) {
	if ev.Outcome == deployer.OutcomeNoop {
		fmt.Fprintf(p.w, "nothing to deploy: %s is already on %s on every host (%d hosts)\n", ev.Service, shortRev(ev.To), ev.Total)
		return
	}
	if p.tty && len(p.groups) > 0 {
		p.table()
	}
	reason := ""
	if ev.Reason != "" {
		reason = ": " + ev.Reason
	}
	fmt.Fprintf(p.w, "deploy %s %s in %s: %d/%d hosts on %s%s\n", ev.DeployID, ev.Outcome, ev.Duration.Round(10*time.Millisecond), ev.OK, ev.Total, shortRev(ev.To), reason)
}

// liveText is the live line: "[canary] 1/1 done · [a] 2/3 done, 1 failed, 1 in flight".
func (p *progress) liveText() string {
	var parts []string
	for _, g := range p.groups {
		s := fmt.Sprintf("[%s] %d/%d done", g.name, g.ok+g.failed, g.total)
		if g.failed > 0 {
			s += fmt.Sprintf(", %d failed", g.failed)
		}
		if g.inFlight > 0 {
			s += fmt.Sprintf(", %d in flight", g.inFlight)
		}
		if g.finished {
			s += " " + string(g.outcome)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " · ")
}

// drawLive puts the live line on screen, cut to the terminal's width.
func (p *progress) drawLive() {
	text := p.liveText()
	if text == "" {
		return
	}
	if w := p.width - 1; w > 1 && utf8.RuneCountInString(text) > w {
		r := []rune(text)
		text = string(r[:w-1]) + "…"
	}
	fmt.Fprint(p.w, text)
	p.live = true
}

// table prints the groups' figures, one row each.
func (p *progress) table() {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "group\thosts\tok\tfailed\trolled back\t")
	var sum groupCount
	for _, g := range p.groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", g.name, g.total, g.ok, g.failed, g.rolledOK)
		sum.total, sum.ok, sum.failed, sum.rolledOK = sum.total+g.total, sum.ok+g.ok, sum.failed+g.failed, sum.rolledOK+g.rolledOK
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\n", sum.total, sum.ok, sum.failed, sum.rolledOK)
	tw.Flush()
}
