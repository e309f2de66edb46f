package sal

import (
	"fmt"
	"strings"
)

// Open opens the store named by database: a SQLite file path. (PostgreSQL
// URLs are refused with a clear error until that store exists.)
func Open(database string) (Store, error) {
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		return nil, fmt.Errorf("sal: PostgreSQL is not supported by this build yet; use a SQLite file path")
	}
	return OpenSQLite(strings.TrimPrefix(database, "sqlite:"))
}

// Permalink is the URL of one entry under base (sal.public_url).
func Permalink(base string, id int64) string {
	return strings.TrimRight(base, "/") + fmt.Sprintf("/log/%d", id)
}
