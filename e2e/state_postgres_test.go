package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"deploybot/deployer/journal"
	"deploybot/deployer/pgstate"
	"deploybot/deployer/statetest"
	"deploybot/e2e/pgsql"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

func openState(t *testing.T, url string) *pgstate.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scale.D(time.Minute))
	defer cancel()
	st, err := pgstate.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStatePostgresConformance runs the state store conformance suite
// against a real PostgreSQL server, a fresh database per test, each Store
// of a test standing for another deploy host.
func TestStatePostgresConformance(t *testing.T) {
	srv := pgsql.StartT(t)
	statetest.Run(t, statetest.Fresh(
		func(t *testing.T) string { return srv.DatabaseT(t) },
		func(t *testing.T, url string) (journal.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), scale.D(time.Minute))
			defer cancel()
			return pgstate.Open(ctx, url)
		},
	))
}

// TestStatePostgresLeaseLost: when the session holding a deploy lock
// ends (its backend terminated, as when the deploying host or the server
// goes away), the lease reports it within the heartbeat, its writer
// records nothing more, and another host takes the deploy up as
// interrupted. The SAL shares the database.
func TestStatePostgresLeaseLost(t *testing.T) {
	srv := pgsql.StartT(t)
	url := srv.DatabaseT(t)
	salStore, err := sal.Open(url)
	if err != nil {
		t.Fatalf("the SAL on the same database: %v", err)
	}
	defer salStore.Close()
	a, b := openState(t, url), openState(t, url)
	a.Heartbeat = 200 * time.Millisecond
	id, _ := journal.NewID("citoid", time.Now())
	l, err := a.AcquireDeploy("citoid", journal.Holder{Who: "alice", Why: "deploying", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	w, err := a.Create(l, journal.Meta{ID: id, Who: "alice", Rev: "1111111", Hosts: map[string][]string{"main": {"m1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(journal.Event{Type: journal.TypeStageStarted, Group: "main", Host: "m1", Stage: "deploy"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := salStore.(*sal.Postgres).Pool().Exec(ctx, `SELECT pg_terminate_backend(backend_pid) FROM deploy_locks WHERE service = 'citoid'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("the lease did not notice its session ended")
	}
	if err := w.Append(journal.Event{Type: journal.TypeNote, Message: "too late"}); !errors.Is(err, journal.ErrLeaseLost) {
		t.Errorf("Append after the session ended: %v, want ErrLeaseLost", err)
	}
	u, err := b.Unfinished()
	if err != nil || len(u) != 1 || u[0].Meta.ID != id || !u[0].HostState["m1"].InFlight {
		t.Fatalf("Unfinished on the other host = %v, %v", u, err)
	}
	if len(u[0].Events) != 2 {
		t.Errorf("the journal has %d events, want the 2 written before the session ended", len(u[0].Events))
	}
	rl, err := b.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "rolling back", DeployID: id})
	if err != nil {
		t.Fatalf("the other host cannot take the lock of the dead deploy: %v", err)
	}
	rl.Release()
}
