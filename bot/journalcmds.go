package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"deploybot/deployer"
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
	err := b.dep.eng.Lock(service, deployer.Holder{Who: operator(r), Nick: r.nick, Why: reason})
	var locked *deployer.LockedError
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
	h, err := b.dep.eng.Unlock(service, operator(r))
	switch {
	case errors.Is(err, deployer.ErrNotLocked):
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
func holderText(verb string, h deployer.Holder, now time.Time) string {
	var sb strings.Builder
	sb.WriteString(verb)
	if h.Who != "" {
		sb.WriteString(" by " + oneLine(deployer.Person(h.Nick, h.Who)))
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
func oneLine(s string) string { return deployer.OneLine(s) }

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
	st, err := b.dep.eng.Status(service)
	if err != nil {
		return service + ": state unknown (" + err.Error() + ")"
	}
	var parts []string
	switch {
	case st.RunningErr != nil && st.DeployLock == nil && st.Running == nil:
		parts = append(parts, "deploy state unknown ("+st.RunningErr.Error()+")")
	case st.Running != nil || st.DeployLock != nil:
		parts = append(parts, runningText(service, st, now))
	case st.Interrupted:
		parts = append(parts, "an interrupted deploy waits: !rollback "+service+" or !continue "+service)
	default:
		parts = append(parts, "idle")
	}
	parts = append(parts, liveText(st, now))
	line := service + ": " + strings.Join(parts, "; ")
	switch {
	case st.LockErr != nil:
		line += "; lock state unknown (" + st.LockErr.Error() + ")"
	case st.Lock != nil:
		line += "; " + holderText("locked", *st.Lock, now)
	}
	return line
}

// runningText describes the deploy in progress: who, since when, why, the
// stage and the host counts.
func runningText(service string, st *deployer.Status, now time.Time) string {
	l := st.Running
	var text string
	if st.DeployLock != nil {
		text = holderText("deploying", *st.DeployLock, now)
	} else {
		text = holderText("deploying", deployer.Holder{Who: l.Who, Nick: l.Nick, Since: l.Started}, now)
	}
	if st.RunningErr != nil {
		return text + " (" + st.RunningErr.Error() + ")"
	}
	if l == nil {
		return text
	}
	stage := l.Stage
	if l.Stage == deployer.StageDeploying || (l.Stage == deployer.StageWaiting && l.Group != "") {
		stage = "group " + l.Group
	}
	var sb strings.Builder
	sb.WriteString(text)
	fmt.Fprintf(&sb, " — %s, %d/%d hosts done", stage, l.Done, l.Total)
	if l.Failed > 0 {
		fmt.Fprintf(&sb, ", %d failed", l.Failed)
	}
	if l.InFlight > 0 {
		fmt.Fprintf(&sb, ", %d in flight", l.InFlight)
	}
	if l.Prompt != nil {
		fmt.Fprintf(&sb, ", waiting for !rollback %s or !continue %s", service, service)
	}
	return sb.String()
}

// liveText is the revision the service runs: the last successful deploy,
// and the revision per group according to the newest deploy, whatever its
// end ("?" for hosts whose state is unknown).
func liveText(st *deployer.Status, now time.Time) string {
	if st.HistoryErr != nil {
		return "live revision unknown (" + st.HistoryErr.Error() + ")"
	}
	live := "live revision unknown (no successful deploy recorded)"
	if g := st.LastGood; g != nil {
		live = fmt.Sprintf("live %s (deployed by %s %s)", short(g.Rev), oneLine(deployer.Person(g.Nick, g.Who)), agoText(g.Ended, now))
	}
	var parts []string
	for _, g := range st.Groups {
		if len(g.Revs) == 1 && g.Revs[0].Rev != deployer.RevUnknown {
			parts = append(parts, g.Group+" "+short(g.Revs[0].Rev))
			continue
		}
		var rs []string
		for _, rc := range g.Revs {
			if rc.Rev == deployer.RevUnknown {
				rs = append(rs, fmt.Sprintf("? (%d in flight)", rc.Hosts))
				continue
			}
			rs = append(rs, fmt.Sprintf("%s (%d)", short(rc.Rev), rc.Hosts))
		}
		parts = append(parts, g.Group+" "+strings.Join(rs, " "))
	}
	if len(parts) > 0 {
		live += ", per group: " + strings.Join(parts, ", ")
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
	list, err := b.dep.eng.History(s.Name, n)
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
	deployer.FormatSummary(&sb, sum)
	where := fmt.Sprintf("deploybot deploy-log %s --id %s", s.Name, sum.ID)
	if u := b.deployLogURL(sum.ID); u != "" {
		where = u
	}
	b.reply(r, fmt.Sprintf("%s — full log: %s", strings.TrimSpace(sb.String()), where))
}
