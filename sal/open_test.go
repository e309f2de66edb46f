package sal

import (
	"strings"
	"testing"
)

// TestOpenErrorsHidePassword: an error opening a PostgreSQL SAL (a URL
// that does not parse, a server that does not answer) never carries the
// URL's password, in its user-info or as a parameter: serve logs it.
func TestOpenErrorsHidePassword(t *testing.T) {
	const secret = "hunter2-not-in-logs"
	for _, url := range []string{
		"postgres://sal:" + secret + "@127.0.0.1:1/sal?connect_timeout=5",
		"postgresql://sal@127.0.0.1:1/sal?password=" + secret + "&connect_timeout=5",
		"postgres://sal:" + secret + "@127.0.0.1:1/sal?sslmode=bogus",
		"postgres://sal:" + secret + "@127.0.0.1:99999/sal",
		"postgres://sal:" + secret + "@[::1/sal",
		"postgres://sal@127.0.0.1:99999/sal?password=" + secret,
	} {
		s, err := Open(url)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", url)
			continue
		}
		t.Logf("%v", err)
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
