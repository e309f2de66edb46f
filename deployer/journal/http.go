package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// MaxHostGlob bounds the ?host= pattern Handler takes: a host name is at
// most 253 bytes, and a longer pattern only costs matching time.
const MaxHostGlob = 256

// Handler serves the deploy journals under dir read-only, as plain text:
// GET <prefix><id> shows where the deploy stands (one line per host), then
// every event as deploy-log prints it; ?level= and ?host= filter like its
// flags, and ?output=1 adds the output of commands that succeeded. It is
// mounted by the bot's web server under /deploys/, so the links the bot
// posts open the full log. A ?host= pattern longer than MaxHostGlob bytes
// is refused (400). Serve it with timeouts: the server that mounts it
// (sal/web's NewServer) has them.
func Handler(dir, prefix string) http.Handler { return HandlerFor(NewFiles(dir), prefix) }

// HandlerFor is Handler for the journals of any Store.
func HandlerFor(st Store, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, prefix)
		if _, _, err := ParseID(id); err != nil {
			http.Error(w, "no such deploy: "+quoteShort(id), http.StatusNotFound)
			return
		}
		opts := FormatOptions{Level: r.URL.Query().Get("level"), HostGlob: r.URL.Query().Get("host"), Output: r.URL.Query().Get("output") == "1"}
		if len(opts.HostGlob) > MaxHostGlob {
			http.Error(w, fmt.Sprintf("bad host pattern: too long, want at most %d bytes", MaxHostGlob), http.StatusBadRequest)
			return
		}
		if err := opts.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d, err := st.Read(id)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			http.Error(w, "no such deploy: "+quoteShort(id), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "cannot read the journal: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = WriteLog(w, d, opts)
	})
}
