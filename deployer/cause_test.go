package deployer

import (
	"errors"
	"slices"
	"testing"

	"deploybot/deployer/fakefleet"
	"deploybot/deployer/remote"
)

// Each host failure names its cause in one word from a small set, and
// every stage of every host's deploy session is reported with its
// duration (what metrics count and time); the engine's observer sees
// them all.
func TestHostFailureCausesAndStages(t *testing.T) {
	f := newFleetFixture(t, `
groups:
  - {name: a, hosts: [h1, h2, h3, h4], failure_limit: 3}
`)
	f.installAll(f.shas[0])
	f.fleet.Set("h1", fakefleet.Behavior{DeployFails: true})
	f.fleet.Set("h2", fakefleet.Behavior{FailChecks: []string{"health"}})
	f.fleet.Set("h3", fakefleet.Behavior{DialErr: &remote.HostError{Host: "h3", Kind: remote.KindAuthFailed, Err: errors.New("no")}})
	a := &answerer{e: f.eng, who: "bob"}
	w := &rec{}
	f.eng.SetObserver(w)
	f.deploy(t, a, Request{})
	if len(w.events) == 0 || len(w.events) != len(a.events) {
		t.Errorf("the engine's observer saw %d events, the deploy's %d", len(w.events), len(a.events))
	}

	causes := map[string]string{}
	stages := map[string][]string{}
	for _, ev := range a.events {
		switch ev.Type {
		case EventHostFailed:
			causes[ev.Host] = ev.Cause
		case EventStage:
			if ev.Duration <= 0 {
				t.Errorf("stage %s of %s without a duration", ev.Stage, ev.Host)
			}
			stages[ev.Host] = append(stages[ev.Host], ev.Stage)
		}
	}
	want := map[string]string{"h1": remote.StageRestart, "h2": CauseCheck, "h3": remote.KindAuthFailed}
	for h, c := range want {
		if causes[h] != c {
			t.Errorf("%s failed with cause %q, want %q", h, causes[h], c)
		}
	}
	if len(causes) != len(want) {
		t.Errorf("failures %v, want those of %v", causes, want)
	}
	full := []string{remote.StageFetch, remote.StagePromote, remote.StageRestart}
	for _, h := range []string{"h1", "h2", "h4"} {
		if !slices.Equal(stages[h], full) {
			t.Errorf("%s reported stages %v, want %v", h, stages[h], full)
		}
	}
	if len(stages["h3"]) != 0 {
		t.Errorf("h3 (unreachable) reported stages %v", stages["h3"])
	}
}
