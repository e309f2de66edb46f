package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"deploybot/deployer/journal"
)

// maxDeploylogN is the largest n !deploylog accepts.
const maxDeploylogN = 50

// operator is who r's sender is, for locks: the services account when
// there is one, else the nick.
func operator(r *request) string {
	if r.account != "" && r.account != "*" {
		return r.account
	}
	return r.nick
}

func cmdLock(_ context.Context, b *Bot, r *request) {
	service := r.svc.Name
	reason := strings.TrimSpace(strings.TrimPrefix(r.rest, r.args[0]))
	if reason == "" {
		b.reply(r, "missing reason. Usage: "+commands["lock"].usage(b.cfg.IRC.Prefix))
		return
	}
	err := journal.Lock(b.cfg.Deploy.JournalDir, service, journal.Holder{Who: operator(r), Why: reason})
	var locked *journal.LockedError
	switch {
	case errors.As(err, &locked):
		b.reply(r, locked.Error()+". Nothing changed.")
		return
	case err != nil:
		b.log.Error("lock failed", "service", service, "err", err)
		b.reply(r, fmt.Sprintf("could not lock %s: %v", service, err))
		return
	}
	b.log.Info("locked", "service", service, "nick", r.nick, "account", r.account, "why", reason)
	b.reply(r, fmt.Sprintf("Locked %s: %s", service, oneLine(reason)))
}

func cmdUnlock(_ context.Context, b *Bot, r *request) {
	service := r.svc.Name
	h, err := journal.Unlock(b.cfg.Deploy.JournalDir, service, operator(r))
	switch {
	case errors.Is(err, journal.ErrNotLocked):
		b.reply(r, fmt.Sprintf("%s is not locked. Nothing changed.", service))
		return
	case err != nil:
		b.log.Error("unlock failed", "service", service, "err", err)
		b.reply(r, fmt.Sprintf("could not unlock %s: %v", service, err))
		return
	}
	b.log.Info("unlocked", "service", service, "nick", r.nick, "account", r.account, "was", h.Who)
	b.reply(r, fmt.Sprintf("Unlocked %s (was %s)", service, holderText("locked", h, time.Now())))
}

// holderText is "locked by bob since 01:45 UTC: reason".
func holderText(verb string, h journal.Holder, now time.Time) string {
	var sb strings.Builder
	sb.WriteString(verb)
	if h.Who != "" {
		sb.WriteString(" by " + oneLine(h.Who))
	}
	if !h.Since.IsZero() {
		sb.WriteString(" since " + clockText(h.Since, now))
	}
	if h.Why != "" {
		sb.WriteString(": " + oneLine(h.Why))
	}
	return sb.String()
}

// clockText is "01:45 UTC" for a time today (UTC), else with the date.
func clockText(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// agoText is a rough "2h ago".
func agoText(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// oneLine keeps text on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func cmdStatus(_ context.Context, b *Bot, r *request) {
	names := b.cfg.ServiceNames()
	if len(r.args) == 1 {
		s, ok := b.service(r, r.args[0])
		if !ok {
			return
		}
		b.replyKeyed(r, "status:"+s.Name, b.statusLine(s.Name, time.Now()))
		return
	}
	if len(names) == 0 {
		b.reply(r, "no services are configured.")
		return
	}
	for _, name := range names {
		b.post(r, "status:"+name, b.statusLine(name, time.Now()))
	}
}

// statusLine is one service's state: the running deploy (stage, hosts
// done and failed, open question), the revision each group runs, and the
// manual lock.
func (b *Bot) statusLine(service string, now time.Time) string {
	dir := b.cfg.Deploy.JournalDir
	// The deploys of the service, newest first, and the newest one read
	// whole: listed and read once for the whole line.
	list, listErr := journal.List(dir, service)
	var newest *journal.Deploy
	for _, s := range list {
		if s.ReadErr == "" {
			newest, _ = journal.Read(s.Path)
			break
		}
	}
	var parts []string
	running, err := journal.Running(dir, service)
	switch {
	case err != nil:
		parts = append(parts, "deploy state unknown ("+err.Error()+")")
	case running != nil:
		parts = append(parts, b.runningText(service, *running, newest, now))
	case len(list) > 0 && !list[0].Finished && list[0].ReadErr == "":
		// Unfinished, and no process holds it: interrupted.
		parts = append(parts, "an interrupted deploy waits: !rollback "+service+" or !continue "+service)
	default:
		parts = append(parts, "idle")
	}
	parts = append(parts, liveText(list, listErr, newest, now))
	line := service + ": " + strings.Join(parts, "; ")
	held, err := journal.Held(dir, service)
	switch {
	case err != nil:
		line += "; lock state unknown (" + err.Error() + ")"
	case held != nil:
		line += "; " + holderText("locked", *held, now)
	}
	return line
}

// runningText describes the deploy holding the deploy lock of service;
// newest is the newest deploy read from the journal (nil if none), which
// is usually that one.
func (b *Bot) runningText(service string, h journal.Holder, newest *journal.Deploy, now time.Time) string {
	text := holderText("deploying", h, now)
	if h.DeployID == "" {
		return text
	}
	d := newest
	if d == nil || d.Meta.ID != h.DeployID {
		path, err := journal.JournalPath(b.cfg.Deploy.JournalDir, service, h.DeployID)
		if err != nil {
			return text
		}
		if d, err = journal.Read(path); err != nil {
			return text + " (journal unreadable: " + err.Error() + ")"
		}
	}
	total, ok, failed, inFlight := 0, 0, 0, 0
	for _, hosts := range d.Meta.Hosts {
		total += len(hosts)
	}
	for _, hs := range d.HostState {
		switch {
		case hs.InFlight:
			inFlight++
		case hs.Failed:
			failed++
		case hs.OK:
			ok++
		}
	}
	stage := "preparing"
	for i := len(d.Events) - 1; i >= 0; i-- {
		ev := d.Events[i]
		if ev.Type == journal.TypeGroupStarted {
			stage = "group " + ev.Group
			break
		}
		if ev.Type == journal.TypeResumed {
			stage = "rollback"
			break
		}
	}
	var sb strings.Builder
	sb.WriteString(text)
	fmt.Fprintf(&sb, " — %s, %d/%d hosts done", stage, ok, total)
	if failed > 0 {
		fmt.Fprintf(&sb, ", %d failed", failed)
	}
	if inFlight > 0 {
		fmt.Fprintf(&sb, ", %d in flight", inFlight)
	}
	if d.OpenPrompt != nil {
		fmt.Fprintf(&sb, ", waiting for !rollback %s or !continue %s", service, service)
	}
	return sb.String()
}

// liveText is the revision the service runs: the last successful deploy
// in list (newest first), and the revision per group according to the
// newest deploy, whatever its end.
func liveText(list []journal.Summary, listErr error, newest *journal.Deploy, now time.Time) string {
	if listErr != nil {
		return "live revision unknown (" + listErr.Error() + ")"
	}
	live := "live revision unknown (no successful deploy recorded)"
	for _, s := range list {
		if s.ReadErr == "" && s.Finished && s.Outcome == journal.OutcomeSuccess {
			live = fmt.Sprintf("live %s (deployed by %s %s)", short(s.Rev), oneLine(s.Who), agoText(s.Ended, now))
			break
		}
	}
	if newest != nil {
		if g := groupRevs(newest); g != "" {
			live += ", per group: " + g
		}
	}
	return live
}

func cmdDeploylog(_ context.Context, b *Bot, r *request) {
	usage := commands["deploylog"].usage(b.cfg.IRC.Prefix)
	s, ok := b.service(r, r.args[0])
	if !ok {
		return
	}
	n := 1
	if len(r.args) == 2 {
		v, err := strconv.Atoi(r.args[1])
		if err != nil || v < 1 || v > maxDeploylogN {
			b.reply(r, fmt.Sprintf("bad <n> %q: want a number from 1 (the last deploy) to %d. Usage: %s", r.args[1], maxDeploylogN, usage))
			return
		}
		n = v
	}
	list, err := journal.ListN(b.cfg.Deploy.JournalDir, s.Name, n)
	if err != nil {
		b.log.Error("deploylog failed", "service", s.Name, "err", err)
		b.reply(r, fmt.Sprintf("could not read the deploys of %s: %v", s.Name, err))
		return
	}
	switch {
	case len(list) == 0:
		b.reply(r, fmt.Sprintf("no deploys of %s recorded yet.", s.Name))
		return
	case len(list) < n:
		b.reply(r, fmt.Sprintf("%s has only %d deploy(s) recorded.", s.Name, len(list)))
		return
	}
	sum := list[n-1]
	var sb strings.Builder
	journal.FormatSummary(&sb, sum)
	where := fmt.Sprintf("deploybot deploy-log %s --id %s", s.Name, sum.ID)
	if u := b.deployLogURL(sum.ID); u != "" {
		where = u
	}
	b.reply(r, fmt.Sprintf("%s — full log: %s", strings.TrimSpace(sb.String()), where))
}
