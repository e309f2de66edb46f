package deployer

import (
	"context"
	"fmt"
	"sort"
	"time"

	"deploybot/config"
	"deploybot/deployer/journal"
)

// groupTally counts the hosts of a group as they finish.
type groupTally struct{ ok, failed int }

// runGroup deploys one group and decides, asking when needed, whether the
// deploy stops (and is rolled back).
func (r *run) runGroup(ctx context.Context, canary bool, g config.Group) (stop bool, reason string) {
	start := time.Now()
	r.mu.Lock()
	r.order = append(r.order, g.Name)
	r.mu.Unlock()
	r.setStage(StageDeploying, g.Name)
	r.journal(journal.Event{Type: journal.TypeGroupStarted, Group: g.Name, Message: fmt.Sprintf("%d hosts, %d at a time", len(g.Hosts), g.Parallel)})
	r.emit(Event{Type: EventGroupStarted, Group: g.Name, Total: len(g.Hosts)})

	pending := make([]string, 0, len(g.Hosts))
	for _, h := range g.Hosts {
		pending = append(pending, h.String())
	}
	var t groupTally
	for len(pending) > 0 {
		rest, aborted := r.runHosts(ctx, g, pending, &t)
		pending = rest
		if ctx.Err() != nil {
			return true, ctx.Err().Error()
		}
		if !aborted {
			continue
		}
		ans := r.ask(ctx, PromptAborted, g.Name, fmt.Sprintf("deploy aborted during group %s (%d ok, %d failed, %d not started): continue or rollback?", g.Name, t.ok, t.failed, len(pending)))
		if ans == Rollback {
			r.groupFinished(g, t, OutcomeAborted, start)
			return true, "aborted by the operator during group " + g.Name
		}
		r.mu.Lock()
		r.abort = make(chan struct{})
		r.mu.Unlock()
		r.setStage(StageDeploying, g.Name)
	}
	allowed := g.FailureLimit.Allowed(len(g.Hosts))
	if canary {
		allowed = 0
	}
	if t.failed <= allowed {
		r.groupFinished(g, t, OutcomeSuccess, start)
		return false, ""
	}
	r.groupFinished(g, t, OutcomeFailed, start)
	kind, text := PromptGroupFailed, fmt.Sprintf("group %s failed: %d of %d hosts failed (limit %d): continue or rollback?", g.Name, t.failed, len(g.Hosts), allowed)
	if canary {
		kind, text = PromptCanaryFailed, fmt.Sprintf("canary failed: %d of %d hosts failed: continue or rollback?", t.failed, len(g.Hosts))
	}
	if r.ask(ctx, kind, g.Name, text) == Continue {
		return false, ""
	}
	if canary {
		return true, "canary failed"
	}
	return true, fmt.Sprintf("group %s failed: %d of %d hosts", g.Name, t.failed, len(g.Hosts))
}

func (r *run) groupFinished(g config.Group, t groupTally, outcome Outcome, start time.Time) {
	r.journal(journal.Event{Type: journal.TypeGroupFinished, Group: g.Name, Outcome: outcome,
		Message: fmt.Sprintf("%d/%d ok, %d failed", t.ok, len(g.Hosts), t.failed), Duration: time.Since(start)})
	r.emit(Event{Type: EventGroupFinished, Group: g.Name, Total: len(g.Hosts), OK: t.ok, Failed: t.failed, Outcome: outcome, Duration: time.Since(start)})
}

// runHosts deploys hosts, g.Parallel at a time (capped by
// ssh.max_connections), counting them in t, until they are done or an
// abort stops new ones from starting: those are returned, and aborted is
// set (also when the abort came during the last hosts).
func (r *run) runHosts(ctx context.Context, g config.Group, hosts []string, t *groupTally) (rest []string, aborted bool) {
	par := g.Parallel
	if m := r.e.cfg.Deploy.SSH.MaxConnections; m > 0 && (par <= 0 || par > m) {
		par = m
	}
	r.mu.Lock()
	abort := r.abort
	r.mu.Unlock()
	rest = eachBounded(ctx, hosts, par, abort, func(host string) {
		good := r.deployHost(ctx, g.Name, host)
		r.mu.Lock()
		if good {
			t.ok++
		} else {
			t.failed++
		}
		r.mu.Unlock()
	})
	return rest, stopped(abort)
}

// finalizeAll finalizes every host that passed (mark done, prune) and is
// not finalized yet, at most ssh.max_connections at once.
func (r *run) finalizeAll(ctx context.Context) {
	r.setStage(StageFinalizing, "")
	r.mu.Lock()
	var hosts []string
	for name, h := range r.hosts {
		if h.ok && !h.finalized {
			hosts = append(hosts, name)
		}
	}
	r.mu.Unlock()
	sort.Strings(hosts)
	eachBounded(ctx, hosts, r.e.cfg.Deploy.SSH.MaxConnections, nil, func(h string) { r.finalizeHost(ctx, h, nil) })
}
