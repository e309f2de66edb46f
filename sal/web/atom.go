package web

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"time"
	"unicode/utf8"

	"deploybot/sal"
)

// Atom 1.0 (RFC 4287) documents, as much of them as the feed uses.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  atomPerson  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

type atomEntry struct {
	ID        string        `xml:"id"`
	Title     atomText      `xml:"title"`
	Updated   string        `xml:"updated"`
	Published string        `xml:"published"`
	Author    atomPerson    `xml:"author"`
	Links     []atomLink    `xml:"link"`
	Category  *atomCategory `xml:"category,omitempty"`
	Content   atomText      `xml:"content"`
}

// maxAtomTitle is how many characters of a message the entry title shows.
const maxAtomTitle = 100

// atom serves /atom and /atom/<project>: the newest PageSize entries. The
// feed and entry ids are their absolute URLs (PublicURL), which never
// change; entry content is the message as plain text.
func (h *handler) atom(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if project != "" && !validProject(project) {
		http.NotFound(w, r)
		return
	}
	f, err := parseFilters(r.URL.Query(), project)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	entries, err := h.opts.Store.List(r.Context(), f.query(h.opts.PageSize))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	base := h.absBase(r)
	self := base + "/atom"
	alt := base + "/"
	title := h.opts.Title
	if project != "" {
		self += "/" + project
		alt += project
		title += " – " + project
	}
	feed := atomFeed{
		Title:   title,
		ID:      self,
		Updated: h.opts.Now().UTC().Format(time.RFC3339),
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: withQuery(self, f.values(false))},
			{Rel: "alternate", Type: "text/html", Href: withQuery(alt, f.values(false))},
		},
		Author:  atomPerson{Name: h.opts.Title},
		Entries: make([]atomEntry, 0, len(entries)),
	}
	if len(entries) > 0 {
		newest := entries[0].Time
		for _, e := range entries {
			if e.Time.After(newest) {
				newest = e.Time
			}
		}
		feed.Updated = newest.UTC().Format(time.RFC3339)
	}
	for _, e := range entries {
		link := sal.Permalink(base, e.ID)
		stamp := e.Time.UTC().Format(time.RFC3339)
		ae := atomEntry{
			ID:        link,
			Title:     atomText{Type: "text", Body: e.Nick + ": " + shorten(e.Message, maxAtomTitle)},
			Updated:   stamp,
			Published: stamp,
			Author:    atomPerson{Name: e.Nick},
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: link}},
			Content:   atomText{Type: "text", Body: e.Message},
		}
		if e.Project != "" {
			ae.Category = &atomCategory{Term: e.Project}
		}
		feed.Entries = append(feed.Entries, ae)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", " ")
	if err := enc.Encode(feed); err != nil {
		h.fail(w, r, err)
		return
	}
	buf.WriteByte('\n')
	write(w, "application/atom+xml; charset=utf-8", buf.Bytes())
}

// shorten cuts s to at most n characters, marking the cut with "…".
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return s[:i] + "…"
}
