package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"deploybot/sal"
)

// Options configure the handler New returns.
type Options struct {
	// Store is where entries are read from. Required.
	Store sal.Store
	// Title names the log on pages and in the feed; "" = "Server Admin Log".
	Title string
	// PublicURL is the base of absolute links (Atom ids and links, the
	// JSON "next" and "url"), e.g. https://sal.example.org. Its path, if
	// any, is the prefix of every link on the pages, and requests are
	// served with or without that prefix (behind a proxy that strips it or
	// not). "" = links relative to the request's host.
	PublicURL string
	// TaskURL is the task tracker URL with one %s for the task id, e.g.
	// https://phabricator.wikimedia.org/%s. "" = no task links.
	TaskURL string
	// PageSize is how many entries a page (and the Atom feed) shows;
	// 0 = 100, at most 500.
	PageSize int
	// Now is the clock (the default day of /wikitext); nil = time.Now.
	Now func() time.Time
	// Log receives store and rendering failures; nil = slog.Default().
	Log *slog.Logger
}

// Limits of what a request may ask for.
const (
	defaultTitle    = "Server Admin Log"
	defaultPageSize = 100
	maxAPILimit     = 500
	maxWikiDays     = 31
	maxSearchBytes  = 256
	// maxWikiEntries bounds one /wikitext response.
	maxWikiEntries = 100_000
)

// contentSecurityPolicy allows nothing but the page's own inline style
// (by hash) and forms that submit to this site: the pages run no script,
// load nothing and cannot be framed.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

type handler struct {
	opts Options
	root string // path prefix from PublicURL: "" or "/sal"
	link linker
	mux  *http.ServeMux
	log  *slog.Logger
}

// New returns the SAL web handler. It answers GET and HEAD only:
//
//	/                  the log, newest first, grouped by UTC day
//	/<project>         the same for one project ([a-z0-9._-]+, at most 64
//	                   bytes; /log and /api are not project pages, and
//	                   /<project>/ redirects here)
//	                   both take q (search), d (YYYY-MM-DD: entries on or
//	                   before that UTC day) and before (paging cursor)
//	/log/<id>          one entry (its permalink)
//	/api/log           JSON: {"entries":[…],"next":"<url>"}; q, d, project,
//	                   before, limit (default PageSize, at most 500)
//	/atom, /atom/<p>   Atom 1.0 feed of the newest entries (q, d work too)
//	/wikitext          text/plain in the wikitech SAL format; d (default
//	                   today, UTC), days (1–31, default 1), project, q
//
// A malformed or out-of-range d, before, days, limit, q or project
// parameter is answered with 400 and a one-line plain-text reason (JSON
// {"error": …} on /api/log). Serve the handler with NewServer.
func New(opts Options) http.Handler {
	if opts.Store == nil {
		panic("web.New: Options.Store is nil")
	}
	if opts.Title == "" {
		opts.Title = defaultTitle
	}
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	opts.PageSize = min(opts.PageSize, maxAPILimit)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{opts: opts, log: opts.Log}
	if h.log == nil {
		h.log = slog.Default()
	}
	if u, err := url.Parse(opts.PublicURL); err == nil && opts.PublicURL != "" {
		h.root = strings.TrimRight(u.Path, "/")
	}
	h.link = newLinker(opts.TaskURL, h.root+"/")

	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.list)
	m.HandleFunc("GET /{project}", h.list)
	m.HandleFunc("GET /{project}/{$}", h.dropSlash)
	m.HandleFunc("GET /favicon.ico", http.NotFound)
	m.HandleFunc("GET /log/{id}", h.entry)
	m.HandleFunc("GET /api/log", h.api)
	m.HandleFunc("GET /atom", h.atom)
	m.HandleFunc("GET /atom/{project}", h.atom)
	m.HandleFunc("GET /wikitext", h.wikitext)
	h.mux = m
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	if h.root != "" {
		if p := r.URL.Path; p == h.root || strings.HasPrefix(p, h.root+"/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(p, h.root)
			r2.URL.RawPath = ""
			if r2.URL.Path == "" {
				r2.URL.Path = "/"
			}
			r = r2
		}
	}
	h.mux.ServeHTTP(w, r)
}

// dropSlash redirects /<project>/ (and /atom/) to the same without the
// slash.
func (h *handler) dropSlash(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if !validProject(project) || reserved[project] {
		http.NotFound(w, r)
		return
	}
	u := *r.URL
	u.Path = h.root + "/" + project
	u.RawPath = ""
	u.Scheme, u.Host = "", ""
	http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
}

// validProject reports whether s looks like a project name.
func validProject(s string) bool {
	alnum := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			alnum = true
		case c == '.' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return alnum && len(s) <= 64
}

// filters are the query parameters shared by every view.
type filters struct {
	project string
	q       string
	d       string    // YYYY-MM-DD, or ""
	day     time.Time // d at 00:00 UTC
	before  int64
}

// badRequest is a client error, answered with 400 and its text.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func parseFilters(v url.Values, project string) (filters, error) {
	f := filters{project: project, q: strings.TrimSpace(v.Get("q"))}
	if len(f.q) > maxSearchBytes {
		return f, badRequest(fmt.Sprintf("bad q: too long, want at most %d bytes", maxSearchBytes))
	}
	if d := strings.TrimSpace(v.Get("d")); d != "" {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return f, badRequest(fmt.Sprintf("bad d=%q: want a UTC day written YYYY-MM-DD, like 2016-04-22", d))
		}
		f.d, f.day = d, t
	}
	if s := strings.TrimSpace(v.Get("before")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return f, badRequest(fmt.Sprintf("bad before=%q: want an entry id (a whole number above 0)", s))
		}
		f.before = n
	}
	return f, nil
}

func (f filters) query(limit int) sal.Query {
	q := sal.Query{Project: f.project, Search: f.q, Before: f.before, Limit: limit}
	if f.d != "" {
		q.Until = f.day.AddDate(0, 0, 1)
	}
	return q
}

// values are f as URL parameters; the project goes in the path or not,
// as the caller says.
func (f filters) values(withProject bool) url.Values {
	v := url.Values{}
	if f.q != "" {
		v.Set("q", f.q)
	}
	if f.d != "" {
		v.Set("d", f.d)
	}
	if f.before != 0 {
		v.Set("before", strconv.FormatInt(f.before, 10))
	}
	if withProject && f.project != "" {
		v.Set("project", f.project)
	}
	return v
}

// withQuery joins path and encoded parameters.
func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// fetch lists entries, one more than limit to learn whether there is an
// older page. It returns at most limit entries and the cursor of the next
// page (0 = none).
func (h *handler) fetch(ctx context.Context, q sal.Query) ([]sal.Entry, int64, error) {
	limit := q.Limit
	q.Limit = limit + 1
	entries, err := h.opts.Store.List(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	if len(entries) > limit {
		entries = entries[:limit]
		return entries, entries[limit-1].ID, nil
	}
	return entries, 0, nil
}

// fail answers a request that could not be served.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		http.Error(w, bad.Error(), http.StatusBadRequest)
	case errors.Is(err, sal.ErrNotFound):
		http.Error(w, "no such entry", http.StatusNotFound)
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	default:
		h.log.Error("SAL web: request failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error: the log could not be read", http.StatusInternalServerError)
	}
}

// absBase is the absolute URL of the SAL root, without a trailing slash.
func (h *handler) absBase(r *http.Request) string {
	if h.opts.PublicURL != "" {
		return strings.TrimRight(h.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// write sends a fully rendered body.
func write(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// apiEntry is an entry in the JSON API: the stored fields and its permalink.
type apiEntry struct {
	sal.Entry
	URL string `json:"url"`
}

func (h *handler) api(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	fail := func(err error) {
		var bad badRequest
		if errors.As(err, &bad) {
			body, _ := json.Marshal(map[string]string{"error": bad.Error()})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write(append(body, '\n'))
			return
		}
		h.fail(w, r, err)
	}
	project := strings.TrimSpace(v.Get("project"))
	if project != "" && !validProject(project) {
		fail(badRequest(fmt.Sprintf("bad project=%q: want a project name (a-z, 0-9, . _ -)", project)))
		return
	}
	f, err := parseFilters(v, project)
	if err != nil {
		fail(err)
		return
	}
	limit := min(h.opts.PageSize, maxAPILimit)
	if s := strings.TrimSpace(v.Get("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxAPILimit {
			fail(badRequest(fmt.Sprintf("bad limit=%q: want a whole number from 1 to %d", s, maxAPILimit)))
			return
		}
		limit = n
	}
	entries, next, err := h.fetch(r.Context(), f.query(limit))
	if err != nil {
		fail(err)
		return
	}
	base := h.absBase(r)
	resp := struct {
		Entries []apiEntry `json:"entries"`
		Next    string     `json:"next"`
	}{Entries: make([]apiEntry, len(entries))}
	for i, e := range entries {
		resp.Entries[i] = apiEntry{Entry: e, URL: sal.Permalink(base, e.ID)}
	}
	if next != 0 {
		nf := f
		nf.before = next
		nv := nf.values(true)
		if v.Get("limit") != "" {
			nv.Set("limit", strconv.Itoa(limit))
		}
		resp.Next = withQuery(base+"/api/log", nv)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		h.fail(w, r, err)
		return
	}
	write(w, "application/json", buf.Bytes())
}

func (h *handler) wikitext(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	project := strings.TrimSpace(v.Get("project"))
	if project != "" && !validProject(project) {
		h.fail(w, r, badRequest(fmt.Sprintf("bad project=%q: want a project name (a-z, 0-9, . _ -)", project)))
		return
	}
	f, err := parseFilters(v, project)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if f.d == "" {
		now := h.opts.Now().UTC()
		f.day = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		f.d = f.day.Format(time.DateOnly)
	}
	days := 1
	if s := strings.TrimSpace(v.Get("days")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxWikiDays {
			h.fail(w, r, badRequest(fmt.Sprintf("bad days=%q: want a whole number from 1 to %d", s, maxWikiDays)))
			return
		}
		days = n
	}
	q := f.query(1000)
	q.Since = f.day.AddDate(0, 0, 1-days)
	var all []sal.Entry
	for len(all) < maxWikiEntries {
		batch, err := h.opts.Store.List(r.Context(), q)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		all = append(all, batch...)
		if len(batch) < q.Limit {
			break
		}
		last := batch[len(batch)-1].ID
		if q.Before != 0 && last >= q.Before {
			break // a store that ignores the cursor: do not loop forever
		}
		q.Before = last
	}
	var buf bytes.Buffer
	if err := Wikitext(&buf, all); err != nil {
		h.fail(w, r, err)
		return
	}
	write(w, "text/plain; charset=utf-8", buf.Bytes())
}
