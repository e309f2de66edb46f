package config

import (
	"net/url"
	"strings"
)

// redactedPassword stands for a password in a URL, as url.URL.Redacted
// writes it.
const redactedPassword = "xxxxx"

// RedactURL returns s, a database URL such as sal.database, fit to print:
// the password of its user info and any password parameter
// (postgres://user:pw@host/db?sslpassword=pw) replaced by xxxxx, as in
// postgres://user:xxxxx@host/db. A string that is not a URL (a file path)
// is returned as it is; a URL that cannot be parsed is cut to its scheme,
// since where its password is cannot be told.
func RedactURL(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return scheme + "://" + redactedPassword
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if isPasswordParam(k) {
				q[k] = []string{redactedPassword}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// isPasswordParam reports whether a URL parameter holds a password
// (libpq's password and sslpassword, in any case).
func isPasswordParam(k string) bool {
	return strings.Contains(strings.ToLower(k), "password")
}

// urlHasPassword reports whether s is a URL that holds a password.
func urlHasPassword(s string) bool {
	return strings.Contains(s, "://") && RedactURL(s) != s
}
