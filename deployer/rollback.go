package deployer

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// rollbackAll rolls back every host the deploy changed, newest group
// first, and says how the deploy ends.
func (r *run) rollbackAll(ctx context.Context, reason string) (Outcome, string, error) {
	r.note("rolling back: " + reason)
	r.mu.Lock()
	byGroup := map[string][]string{}
	for name, h := range r.hosts {
		if h.changed {
			byGroup[h.group] = append(byGroup[h.group], name)
		}
	}
	order := append([]string(nil), r.order...)
	r.mu.Unlock()
	allOK := r.rollbackGroups(ctx, order, byGroup)
	if ctx.Err() != nil {
		return OutcomeInterrupted, "", ctx.Err()
	}
	if !allOK {
		return OutcomeFailed, reason + "; the rollback did not restore every host", nil
	}
	return OutcomeRolledBack, reason, nil
}

// rollbackGroups rolls back the hosts of each group, groups in reverse
// order, each group as parallel as it deployed; it reports whether every
// host was restored and passed its checks.
func (r *run) rollbackGroups(ctx context.Context, order []string, byGroup map[string][]string) bool {
	par := map[string]int{}
	for _, g := range r.svc.Rollout() {
		par[g.Name] = g.Parallel
	}
	allOK := true
	for i := len(order) - 1; i >= 0; i-- {
		g := order[i]
		hosts := byGroup[g]
		if len(hosts) == 0 {
			continue
		}
		sort.Strings(hosts)
		r.setStage(StageRollingBack, g)
		var t groupTally
		eachBounded(ctx, hosts, par[g], nil, func(h string) {
			good := r.rollbackHost(ctx, g, h)
			r.mu.Lock()
			if good {
				t.ok++
			} else {
				t.failed++
			}
			r.mu.Unlock()
		})
		if t.failed > 0 {
			allOK = false
		}
		r.emit(Event{Type: EventRollback, Group: g, Total: len(hosts), OK: t.ok, Failed: t.failed})
	}
	return allOK
}

// rollbackHost points host back at its last done revision, restarts and
// re-checks it; it reports whether the host is restored and healthy.
func (r *run) rollbackHost(ctx context.Context, group, host string) bool {
	fail := func(reason string) bool {
		return r.failHost(group, host, journal.StageRollback, "", "rollback: "+oneLine(reason), nil)
	}
	c, err := r.conn(ctx, host)
	if err != nil {
		return fail(hostReason(err))
	}
	if err := r.stopStale(ctx, c, group, host); err != nil {
		return fail(err.Error())
	}
	r.journal(journal.Event{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: journal.StageRollback, Command: "rollback to the last done revision"})
	r.update(host, func(h *hostRun) { h.inFlight = true })
	t := r.target
	if r.undoes(host) {
		t.Undo = r.sha // the host may have been finalized already
	}
	cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
	st, rev, err := c.Rollback(cctx, t)
	cancel()
	r.update(host, func(h *hostRun) { h.inFlight = false })
	ev := journal.Event{Type: journal.TypeStage, Group: group, Host: host, Stage: journal.StageRollback,
		Command: st.Command, Duration: st.Duration, Output: st.Output, Rev: rev}
	if st.ExitCode >= 0 {
		ev.ExitCode = journal.Code(st.ExitCode)
	}
	if err != nil {
		ev.Err = oneLine(err.Error())
		ev.Rev = ""
	}
	r.journal(ev)
	if err != nil {
		if errors.Is(err, remote.ErrNothingToRollBack) {
			return fail(err.Error())
		}
		return fail(stageReason(err))
	}
	bad := r.check(ctx, c, group, host, false)
	r.journal(journal.Event{Type: journal.TypeRolledBackHost, Group: group, Host: host, Rev: rev})
	r.mu.Lock()
	r.rolled = append(r.rolled, HostRev{Host: host, Rev: rev})
	if h := r.hosts[host]; h != nil {
		h.ok = false
	}
	r.mu.Unlock()
	if bad != nil {
		return fail(fmt.Sprintf("restored %s but %s", short(rev), checkReason(*bad)))
	}
	return true
}

// undoes reports whether a rollback of host first undoes a done mark of
// r.sha: when the run finalizes early, or a finalize of r.sha began there
// (a deploy interrupted while finalizing the fleet) and r.sha is not the
// revision deployed before (whose done mark is not this deploy's).
func (r *run) undoes(host string) bool {
	if r.finalizesEarly() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[host]
	return h != nil && h.marking && r.from != r.sha
}
