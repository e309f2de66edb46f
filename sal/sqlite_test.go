package sal_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"deploybot/sal"
	"deploybot/sal/saltest"
)

func TestSQLiteConformance(t *testing.T) {
	saltest.Run(t, saltest.Fresh(
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "sal.db") },
		func(t *testing.T, path string) (sal.Store, error) { return sal.OpenSQLite(path) },
	), saltest.Edit(func(t *testing.T, s sal.Store, id int64) error {
		// A connection of its own, as an operator's sqlite3 would be.
		db, err := sql.Open("sqlite", "file:"+s.(*sal.SQLite).Path()+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, err = db.Exec(`UPDATE entries SET message = 'edited' WHERE id = ?`, id)
		return err
	}))
}
