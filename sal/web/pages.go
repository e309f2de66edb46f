package web

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"deploybot/sal"
)

// page is what the HTML template renders.
type page struct {
	Title     string // <title>
	SiteTitle string
	CSS       template.CSS
	Root      string // link to the whole log
	Here      string // path of this list (form action)
	Project   string
	Q, D      string
	Feed      string
	API       string
	WikiText  string

	// The list.
	Days    []dayView
	Older   string // next page (cursor)
	Newest  string // back to the first page, when paged or on a day
	PrevDay string
	NextDay string
	Empty   string // what to say when there are no entries

	// The single entry (/log/<id>).
	Entry *entryView
}

type dayView struct {
	Date    string
	Href    string
	Entries []entryView
}

type entryView struct {
	ID       int64
	Href     string // permalink
	HHMM     string // 05:16
	Stamp    string // RFC 3339, for <time datetime>
	Full     string // 2016-04-22 05:16:07 UTC
	Nick     string
	Account  string // the services account, shown after Nick when it differs
	Project  string // shown in lists only when not already on a project page
	Msg      template.HTML
	Channel  string
	Source   string
	Sender   string // the real sender of a relayed entry
	Abs      string // absolute permalink
	InLog    string // the list, starting at this entry
	ProjHref string
}

func (h *handler) view(e sal.Entry, showProject bool) entryView {
	t := e.Time.UTC()
	v := entryView{
		ID:    e.ID,
		Href:  h.root + "/log/" + strconv.FormatInt(e.ID, 10),
		HHMM:  t.Format("15:04"),
		Stamp: t.Format(time.RFC3339),
		Nick:  e.Nick,
		Msg:   h.link.linkify(e.Message),
	}
	if e.Account != "" && !strings.EqualFold(e.Account, e.Nick) {
		v.Account = e.Account
	}
	if showProject {
		v.Project = e.Project
	}
	return v
}

// projectPath is the list of one project, or of everything.
func (h *handler) projectPath(project string) string {
	return h.root + "/" + project
}

func (h *handler) basePage(title, project string) page {
	p := page{
		Title:     title,
		SiteTitle: h.opts.Title,
		CSS:       template.CSS(pageCSS),
		Root:      h.root + "/",
		Here:      h.projectPath(project),
		Project:   project,
		Feed:      h.root + "/atom",
		API:       h.root + "/api/log",
		WikiText:  h.root + "/wikitext",
	}
	if project != "" {
		p.Feed += "/" + project
		p.API += "?project=" + project
		p.WikiText += "?project=" + project
	}
	return p
}

// reserved are first path segments of other routes: /log and /api alone
// are not project pages.
var reserved = map[string]bool{"log": true, "api": true}

// list serves / and /<project>.
func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if project != "" && (!validProject(project) || reserved[project]) {
		http.NotFound(w, r)
		return
	}
	f, err := parseFilters(r.URL.Query(), project)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	entries, next, err := h.fetch(r.Context(), f.query(h.opts.PageSize))
	if err != nil {
		h.fail(w, r, err)
		return
	}

	title := h.opts.Title
	if project != "" {
		title = project + " – " + title
	}
	if f.q != "" {
		title = f.q + " – " + title
	}
	if f.d != "" {
		title = f.d + " – " + title
	}
	p := h.basePage(title, project)
	p.Q, p.D = f.q, f.d
	here := p.Here
	for _, e := range sortedNewestFirst(entries) {
		date := e.Time.UTC().Format(time.DateOnly)
		if n := len(p.Days); n == 0 || p.Days[n-1].Date != date {
			df := filters{q: f.q, d: date}
			p.Days = append(p.Days, dayView{Date: date, Href: withQuery(here, df.values(false))})
		}
		d := &p.Days[len(p.Days)-1]
		d.Entries = append(d.Entries, h.view(e, project == ""))
	}
	if next != 0 {
		nf := f
		nf.before = next
		p.Older = withQuery(here, nf.values(false))
	}
	if f.before != 0 || f.d != "" {
		p.Newest = withQuery(here, filters{q: f.q}.values(false))
	}
	if f.d != "" {
		prev := filters{q: f.q, d: f.day.AddDate(0, 0, -1).Format(time.DateOnly)}
		p.PrevDay = withQuery(here, prev.values(false))
		if nd := f.day.AddDate(0, 0, 1); !nd.After(h.opts.Now()) {
			p.NextDay = withQuery(here, filters{q: f.q, d: nd.Format(time.DateOnly)}.values(false))
		}
	}
	switch {
	case f.before != 0:
		p.Empty = "No older entries."
	case f.q != "" && f.d != "":
		p.Empty = "No entries match “" + f.q + "” on or before " + f.d + "."
	case f.q != "":
		p.Empty = "No entries match “" + f.q + "”."
	case f.d != "":
		p.Empty = "No entries on or before " + f.d + "."
	default:
		p.Empty = "No entries yet."
	}
	h.render(w, r, listTemplate, p)
}

// entry serves /log/<id>.
func (h *handler) entry(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	e, err := h.opts.Store.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := h.view(e, true)
	t := e.Time.UTC()
	v.Full = t.Format("2006-01-02 15:04:05") + " UTC"
	v.Channel = e.Channel
	v.Source = string(e.Source)
	v.Sender = e.Sender
	v.Abs = sal.Permalink(h.absBase(r), e.ID)
	project := ""
	if validProject(e.Project) {
		project = e.Project
		v.ProjHref = h.projectPath(project)
	}
	v.InLog = withQuery(h.projectPath(project), filters{before: e.ID + 1}.values(false)) + "#e" + strconv.FormatInt(e.ID, 10)

	p := h.basePage(e.Nick+" at "+v.Full+" – "+h.opts.Title, project)
	p.Entry = &v
	h.render(w, r, entryTemplate, p)
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, t *template.Template, p page) {
	var buf bytes.Buffer
	buf.Grow(4096)
	if err := t.Execute(&buf, p); err != nil {
		h.fail(w, r, err)
		return
	}
	write(w, "text/html; charset=utf-8", buf.Bytes())
}

// pageCSS is the whole style sheet: readable from 320 px up, and in dark
// mode. The pages work without it (terminal browsers).
const pageCSS = `
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:62rem;margin:0 auto;padding:0 .75rem 2rem;color:#1b1b1b;background:#fff}
a{color:#0645ad}
header{border-bottom:1px solid #ccc;padding-bottom:.4rem}
h1{font-size:1.3rem;margin:.7rem 0 .4rem}
h1 a{color:inherit;text-decoration:none}
h2{font-size:1.05rem;margin:1.1rem 0 .3rem;padding-bottom:.1rem;border-bottom:1px solid #ddd}
h2 a{color:inherit;text-decoration:none}
form{display:flex;flex-wrap:wrap;gap:.35rem;align-items:center;margin:.35rem 0}
label{min-width:3.5rem}
input,button{font:inherit;padding:.2rem .45rem;max-width:100%;box-sizing:border-box}
input[type=search]{flex:1 1 10rem}
ul.log{list-style:none;margin:0;padding:0}
ul.log li{padding:.15rem 0 .15rem 3.2rem;text-indent:-3.2rem;overflow-wrap:anywhere}
.permalink{font-family:ui-monospace,Menlo,Consolas,monospace;color:#555;text-decoration:none}
.permalink:hover,.permalink:focus{text-decoration:underline}
.nick{font-weight:600}
.account{color:#666}
.proj{color:#555;font-size:.9em}
.note{color:#555}
nav.pager{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}
article.entry .msg{font-size:1.1rem;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;overflow-wrap:anywhere}
dt{color:#555}dd{margin:0}
footer{margin-top:2rem;color:#555;font-size:.9em}
@media (prefers-color-scheme:dark){body{background:#121212;color:#ddd}a{color:#8ab4f8}.permalink,.proj,.note,dt,footer{color:#aaa}header,h2{border-color:#444}}
`

const layoutHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="alternate" type="application/atom+xml" title="Atom feed" href="{{.Feed}}">
<style>{{.CSS}}</style>
</head>
<body>
<header>
<h1><a href="{{.Root}}">{{.SiteTitle}}</a>{{with .Project}} <span class="proj">/ <a href="{{$.Here}}">{{.}}</a></span>{{end}}</h1>
<form method="get" action="{{.Here}}" role="search">
<label for="q">Search</label>
<input type="search" id="q" name="q" value="{{.Q}}" placeholder="words, nick, T123, sha1">
{{- with .D}}
<input type="hidden" name="d" value="{{.}}">{{end}}
<button type="submit">Search</button>
</form>
<form method="get" action="{{.Here}}">
<label for="d">Day</label>
<input type="date" id="d" name="d" value="{{.D}}" placeholder="YYYY-MM-DD" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" title="a UTC day, YYYY-MM-DD">
{{- with .Q}}
<input type="hidden" name="q" value="{{.}}">{{end}}
<button type="submit">Show</button> <span class="note">(UTC, YYYY-MM-DD)</span>
</form>
</header>
<main>
{{template "main" .}}
</main>
<footer>
<p>Times are UTC. <a href="{{.Feed}}">Atom feed</a> · <a href="{{.API}}">JSON</a> · <a href="{{.WikiText}}">Wikitext</a></p>
</footer>
</body>
</html>
`

const listHTML = `{{define "main" -}}
{{if or .Q .D}}<p class="note">
{{- if .Q}}Entries matching “{{.Q}}”{{else}}Entries{{end}}{{with .D}} on or before {{.}}{{end}}. <a href="{{.Here}}">Show all</a></p>
{{end -}}
{{range .Days}}<section>
<h2 id="d{{.Date}}"><a href="{{.Href}}">{{.Date}}</a></h2>
<ul class="log">
{{range .Entries}}<li id="e{{.ID}}"><a class="permalink" href="{{.Href}}" title="permalink to entry {{.ID}}"><time datetime="{{.Stamp}}">{{.HHMM}}</time></a> {{with .Project}}<span class="proj">{{.}}</span> {{end}}{{template "who" .}}: <span class="msg">{{.Msg}}</span></li>
{{end}}</ul>
</section>
{{else}}<p class="empty">{{.Empty}}</p>
{{end -}}
{{if or .Older .Newest .PrevDay .NextDay}}<nav class="pager">
{{- with .Newest}}<a href="{{.}}">« Newest</a>{{end}}
{{- with .NextDay}} <a href="{{.}}">‹ Day after</a>{{end}}
{{- with .PrevDay}} <a href="{{.}}">Day before ›</a>{{end}}
{{- with .Older}} <a rel="next" href="{{.}}">Older entries »</a>{{end -}}
</nav>
{{end -}}
{{end}}`

// whoHTML is who an entry is from, the same for !log and deploy entries:
// the nick, and the services account after it when the two differ.
const whoHTML = `{{define "who"}}<span class="nick"{{with .Account}} title="services account {{.}}"{{end}}>{{.Nick}}</span>
{{- with .Account}}<span class="account"> ({{.}})</span>{{end}}{{end}}`

const entryHTML = `{{define "main" -}}
{{with .Entry}}<article class="entry" id="e{{.ID}}">
<h2><a href="{{.Href}}"><time datetime="{{.Stamp}}">{{.Full}}</time></a></h2>
<p class="msg">{{template "who" .}}: {{.Msg}}</p>
<dl>
<dt>Project</dt>
<dd>{{if .ProjHref}}<a href="{{.ProjHref}}">{{.Project}}</a>{{else}}{{or .Project "–"}}{{end}}</dd>
{{with .Channel}}<dt>Channel</dt>
<dd>{{.}}</dd>
{{end}}<dt>Logged via</dt>
<dd>{{.Source}}</dd>
{{with .Sender}}<dt>Sent by</dt>
<dd>{{.}}</dd>
{{end}}<dt>Permalink</dt>
<dd><a href="{{.Href}}">{{.Abs}}</a></dd>
</dl>
<p><a href="{{.InLog}}">See it in the log</a></p>
</article>
{{end -}}
{{end}}`

var (
	layoutTemplate = template.Must(template.Must(template.New("layout").Parse(layoutHTML)).Parse(whoHTML))
	listTemplate   = template.Must(template.Must(layoutTemplate.Clone()).Parse(listHTML))
	entryTemplate  = template.Must(template.Must(layoutTemplate.Clone()).Parse(entryHTML))
)
