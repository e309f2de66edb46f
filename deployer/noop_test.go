package deployer

import (
	"errors"
	"slices"
	"testing"

	"deploybot/deployer/fakefleet"
)

// A no-op is decided before the deploy is announced or journaled: it
// emits only its finished event and leaves no journal; anything that makes
// the deploy real announces it first.
func TestNoopDecidedBeforeStart(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(f *fleetFixture)
		force   bool
		outcome Outcome
	}{
		{"every host live and done", func(f *fleetFixture) { f.installAll(f.shas[2]) }, false, OutcomeNoop},
		{"forced", func(f *fleetFixture) { f.installAll(f.shas[2]) }, true, OutcomeSuccess},
		{"one host behind", func(f *fleetFixture) {
			f.installAll(f.shas[2])
			f.fleet.Install("a1", f.shas[1])
		}, false, OutcomeSuccess},
		{"one host unreachable", func(f *fleetFixture) {
			f.installAll(f.shas[2])
			f.fleet.Set("a1", fakefleet.Behavior{DialErr: errors.New("unreachable")})
		}, false, OutcomeSuccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2], failure_limit: 1}]")
			tc.setup(f)
			r := &rec{}
			res := f.deploy(t, r, Request{Force: tc.force})
			if res.Outcome != tc.outcome {
				t.Fatalf("outcome %s, want %s (%+v)", res.Outcome, tc.outcome, res)
			}
			started := slices.Contains(r.types, EventStarted)
			if tc.outcome == OutcomeNoop {
				if started || !slices.Equal(r.types, []EventType{EventFinished}) {
					t.Errorf("events %v, want only finished", r.types)
				}
				if res.ID != "" || r.events[0].DeployID != "" || res.OK != 3 {
					t.Errorf("no-op result %+v, event %+v", res, r.events[0])
				}
				if n := f.journals(t); n != 0 {
					t.Errorf("%d journals after a no-op", n)
				}
				return
			}
			if !started || r.types[0] != EventStarted {
				t.Errorf("events %v: want started first", r.types)
			}
			if n := f.journals(t); n != 1 || res.ID == "" {
				t.Errorf("%d journals, id %q", n, res.ID)
			}
		})
	}
}
