// Package web renders the Server Admin Log for people and for feeds: the
// HTML pages (a day-grouped log with search, a day selector, paging and a
// permalink per entry), the JSON API, the Atom feed and the wikitech
// wikitext export. New returns the http.Handler that `deploybot serve`
// mounts on sal.listen; Wikitext and Linkify are the pure renderers the CLI
// reuses.
//
// What does not live here: storage (package sal owns the Entry type, the
// Store implementations and the cleaning of messages; this package only
// reads through sal.Store) and IRC (package bot turns `!log` into
// entries). Nothing here writes to the log.
//
// Every page is plain HTML with a little inline CSS and no JavaScript, so
// it works in a phone browser and in a terminal browser. Every piece of
// text that comes from the log is HTML-escaped; links are only ever made
// from what Linkify recognizes (see its comment), never from raw markup.
package web
