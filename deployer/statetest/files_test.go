package statetest_test

import (
	"testing"

	"deploybot/deployer/journal"
	"deploybot/deployer/statetest"
)

// The files store passes the suite: every Store of a test shares one
// journal directory, as processes on one deploy host do.
func TestFiles(t *testing.T) {
	statetest.Run(t, statetest.Fresh(
		func(t *testing.T) string { return t.TempDir() },
		func(t *testing.T, dir string) (journal.Store, error) { return journal.NewFiles(dir), nil },
	))
}
