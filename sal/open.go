package sal

import (
	"fmt"
	"strings"
)

// Open opens the store named by database: a postgres:// or postgresql://
// URL is a PostgreSQL database (OpenPostgres); anything else is a SQLite
// file path, optionally prefixed with "sqlite:" (OpenSQLite).
func Open(database string) (Store, error) {
	if IsPostgres(database) {
		return OpenPostgres(database)
	}
	return OpenSQLite(strings.TrimPrefix(database, "sqlite:"))
}

// IsPostgres reports whether Open takes database for a PostgreSQL URL.
func IsPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// Permalink is the URL of one entry under base (sal.public_url).
func Permalink(base string, id int64) string {
	return strings.TrimRight(base, "/") + fmt.Sprintf("/log/%d", id)
}
