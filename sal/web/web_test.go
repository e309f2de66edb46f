package web

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"deploybot/sal"
)

// now is the tests' clock: 2016-04-23 12:00 UTC.
var now = at("2016-04-23T12:00:00Z")

// sample is a small log over three days and two projects.
func sample() *fakeStore {
	return (&fakeStore{}).add(
		sal.Entry{Time: at("2016-04-21T10:00:00Z"), Nick: "carol", Project: "production", Channel: "#wikimedia-operations", Message: "started the day"},
		sal.Entry{Time: at("2016-04-21T23:59:00Z"), Nick: "carol", Project: "releng", Channel: "#wikimedia-releng", Message: "beta cluster rebooted"},
		sal.Entry{Time: at("2016-04-22T05:02:00Z"), Nick: "alice", Project: "production", Channel: "#wikimedia-operations", Message: "restarted citoid on scb1001"},
		sal.Entry{Time: at("2016-04-22T05:16:00Z"), Nick: "bd808", Project: "production", Channel: "#wikimedia-operations", Message: "deploying citoid 5d6e7f8 for T12345", Source: sal.SourceDeploy},
		sal.Entry{Time: at("2016-04-23T09:30:00Z"), Nick: "mallory", Project: "production", Message: `<script>alert(1)</script> "><img src=x onerror=alert(2)>`},
		sal.Entry{Time: at("2016-04-23T10:00:00Z"), Nick: `"><b>evil</b>`, Project: "production", Message: "nick test"},
	)
}

func newTest(store sal.Store, mod ...func(*Options)) http.Handler {
	o := Options{Store: store, TaskURL: phab, PublicURL: "https://sal.example.org", Now: func() time.Time { return now }}
	for _, m := range mod {
		m(&o)
	}
	return New(o)
}

func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func get(t *testing.T, h http.Handler, target string, wantCode int) *httptest.ResponseRecorder {
	t.Helper()
	w := do(t, h, "GET", target)
	if w.Code != wantCode {
		t.Fatalf("GET %s: %d, want %d\n%s", target, w.Code, wantCode, w.Body)
	}
	return w
}

// doc is a parsed page with helpers to look at what a reader sees.
type doc struct {
	t    *testing.T
	root *html.Node
	raw  string
}

func parse(t *testing.T, w *httptest.ResponseRecorder) doc {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	n, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc{t, n, w.Body.String()}
}

// all returns the elements with tag name and class (class "" = any).
func (d doc) all(tag, class string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag && (class == "" || attr(n, "class") == class) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(d.root)
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func texts(ns []*html.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = text(n)
	}
	return out
}

// items are the log lines as a reader sees them.
func (d doc) items() []string {
	var out []string
	for _, ul := range d.all("ul", "log") {
		for li := ul.FirstChild; li != nil; li = li.NextSibling {
			if li.Type == html.ElementNode {
				out = append(out, text(li))
			}
		}
	}
	return out
}

// link returns the href of the first <a> whose text is s.
func (d doc) link(s string) string {
	d.t.Helper()
	for _, a := range d.all("a", "") {
		if strings.TrimSpace(text(a)) == s {
			return attr(a, "href")
		}
	}
	d.t.Fatalf("no link %q in\n%s", s, d.raw)
	return ""
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

func TestListPage(t *testing.T) {
	h := newTest(sample())
	w := get(t, h, "/", 200)
	for k, v := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "same-origin",
	} {
		if w.Header().Get(k) != v {
			t.Errorf("%s: %q, want %q", k, w.Header().Get(k), v)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, s := range []string{"default-src 'none'", "form-action 'self'", "style-src 'sha256-"} {
		if !strings.Contains(csp, s) {
			t.Errorf("CSP %q lacks %q", csp, s)
		}
	}
	d := parse(t, w)
	equal(t, "days", texts(d.all("h2", "")), []string{"2016-04-23", "2016-04-22", "2016-04-21"})
	equal(t, "entries", d.items(), []string{
		`10:00 production "><b>evil</b>: nick test`,
		`09:30 production mallory: <script>alert(1)</script> "><img src=x onerror=alert(2)>`,
		"05:16 production bd808: deploying citoid 5d6e7f8 for T12345",
		"05:02 production alice: restarted citoid on scb1001",
		"23:59 releng carol: beta cluster rebooted",
		"10:00 production carol: started the day",
	})
	// Escaping: the hostile nick and message are text, not elements.
	if n := len(d.all("script", "")) + len(d.all("img", "")) + len(d.all("b", "")); n != 0 {
		t.Errorf("hostile markup became %d elements:\n%s", n, d.raw)
	}
	if strings.Contains(d.raw, "<script>alert") || strings.Contains(d.raw, `"><b>`) {
		t.Errorf("raw markup in page:\n%s", d.raw)
	}
	// Links in messages, permalinks, the viewport, no script.
	if got := d.link("T12345"); got != "https://phabricator.wikimedia.org/T12345" {
		t.Errorf("task link %q", got)
	}
	if got := d.link("5d6e7f8"); got != "/?q=5d6e7f8" {
		t.Errorf("sha1 link %q", got)
	}
	var permalinks []string
	for _, a := range d.all("a", "permalink") {
		permalinks = append(permalinks, attr(a, "href"))
	}
	equal(t, "permalinks", permalinks, []string{"/log/6", "/log/5", "/log/4", "/log/3", "/log/2", "/log/1"})
	if times := d.all("time", ""); attr(times[0], "datetime") != "2016-04-23T10:00:00Z" {
		t.Errorf("first <time datetime=%q>", attr(times[0], "datetime"))
	}
	if !strings.Contains(d.raw, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
		t.Error("no viewport meta")
	}
	if !strings.Contains(d.raw, `<input type="search" id="q" name="q"`) || !strings.Contains(d.raw, `<input type="date" id="d" name="d"`) {
		t.Error("no search or day form")
	}
	// The only script-ish things a page may hold: none.
	if strings.Contains(strings.ToLower(d.raw), "<script") || strings.Contains(d.raw, "javascript:") {
		t.Error("page holds script")
	}
	// The inline style is the one the CSP allows.
	styles := d.all("style", "")
	if len(styles) != 1 || text(styles[0]) != pageCSS {
		t.Error("the page's style is not pageCSS, whose hash the CSP allows")
	}
}

func TestListFilters(t *testing.T) {
	store := sample()
	h := newTest(store)

	d := parse(t, get(t, h, "/?q=citoid", 200))
	equal(t, "q=citoid", d.items(), []string{
		"05:16 production bd808: deploying citoid 5d6e7f8 for T12345",
		"05:02 production alice: restarted citoid on scb1001",
	})
	if !strings.Contains(d.raw, `value="citoid"`) {
		t.Error("search box does not keep q")
	}
	if q := store.queries[len(store.queries)-1]; q.Search != "citoid" || q.Limit != defaultPageSize+1 {
		t.Errorf("query %+v", q)
	}

	// d = on or before the end of that UTC day.
	d = parse(t, get(t, h, "/?d=2016-04-22", 200))
	equal(t, "days", texts(d.all("h2", "")), []string{"2016-04-22", "2016-04-21"})
	if q := store.queries[len(store.queries)-1]; !q.Until.Equal(at("2016-04-23T00:00:00Z")) {
		t.Errorf("Until %v", q.Until)
	}
	if d.link("Day before ›") != "/?d=2016-04-21" || d.link("‹ Day after") != "/?d=2016-04-23" || d.link("« Newest") != "/" {
		t.Errorf("day navigation:\n%s", d.raw)
	}
	if !strings.Contains(d.raw, `<input type="hidden" name="d" value="2016-04-22">`) {
		t.Error("the search form does not keep d")
	}

	// Both, and a project.
	d = parse(t, get(t, h, "/production?q=carol&d=2016-04-22", 200))
	equal(t, "project+q+d", d.items(), []string{"10:00 carol: started the day"})
	if !strings.Contains(d.raw, `<input type="hidden" name="q" value="carol">`) {
		t.Error("the day form does not keep q")
	}
	if !strings.Contains(d.raw, `action="/production"`) {
		t.Error("the forms do not stay on the project")
	}

	d = parse(t, get(t, h, "/releng", 200))
	equal(t, "releng", d.items(), []string{"23:59 carol: beta cluster rebooted"})

	d = parse(t, get(t, h, "/?q=nothing-matches", 200))
	if p := d.all("p", "empty"); len(p) != 1 || text(p[0]) != "No entries match “nothing-matches”." {
		t.Errorf("empty result:\n%s", d.raw)
	}
	d = parse(t, get(t, h, "/nosuchproject", 200))
	if p := d.all("p", "empty"); len(p) != 1 {
		t.Errorf("empty project:\n%s", d.raw)
	}
}

func TestPaging(t *testing.T) {
	store := &fakeStore{}
	for i := range 7 {
		store.add(sal.Entry{Time: at("2016-04-22T00:00:00Z").Add(time.Duration(i) * time.Minute), Nick: "n", Project: "production", Message: fmt.Sprintf("citoid step %d", i+1)})
	}
	store.add(sal.Entry{Time: at("2016-04-22T01:00:00Z"), Nick: "n", Project: "production", Message: "unrelated"})
	h := newTest(store, func(o *Options) { o.PageSize = 3 })

	var seen []string
	target := "/production?q=citoid&d=2016-04-22"
	for pages := 0; target != ""; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		d := parse(t, get(t, h, target, 200))
		seen = append(seen, d.items()...)
		target = ""
		for _, a := range d.all("a", "") {
			if attr(a, "rel") == "next" {
				target = attr(a, "href")
				u, _ := url.Parse(target)
				if u.Path != "/production" || u.Query().Get("q") != "citoid" || u.Query().Get("d") != "2016-04-22" {
					t.Errorf("older link %q loses the filters", target)
				}
			}
		}
	}
	equal(t, "all pages", seen, []string{
		"00:06 n: citoid step 7", "00:05 n: citoid step 6", "00:04 n: citoid step 5",
		"00:03 n: citoid step 4", "00:02 n: citoid step 3", "00:01 n: citoid step 2",
		"00:00 n: citoid step 1",
	})

	// Exactly a page full: no older link.
	d := parse(t, get(t, h, "/production?q=citoid&before=4", 200))
	if len(d.items()) != 3 || strings.Contains(d.raw, `rel="next"`) {
		t.Errorf("last full page:\n%s", d.raw)
	}
	d = parse(t, get(t, h, "/production?before=1", 200))
	if p := d.all("p", "empty"); len(p) != 1 || text(p[0]) != "No older entries." {
		t.Errorf("past the end:\n%s", d.raw)
	}
}

func TestBadRequests(t *testing.T) {
	h := newTest(sample())
	for _, target := range []string{
		"/?d=2016-13-01", "/?d=yesterday", "/?d=2016-4-2", "/production?before=abc", "/?before=0", "/?before=-5",
		"/?q=" + strings.Repeat("x", maxSearchBytes+1),
		"/wikitext?d=2016-02-30", "/wikitext?days=0", "/wikitext?days=32", "/wikitext?days=two", "/wikitext?project=Bad!",
		"/wikitext?days=1000", "/wikitext?days=99999999999999999999", "/wikitext?days=-1",
		"/wikitext?q=" + strings.Repeat("x", maxSearchBytes+1), "/atom?q=" + strings.Repeat("x", maxSearchBytes+1),
		"/atom?d=x", "/api/log?before=x", "/api/log?limit=501",
	} {
		w := get(t, h, target, 400)
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", target, ct)
		}
		if b := w.Body.String(); strings.Count(strings.TrimSpace(b), "\n") != 0 || !strings.Contains(b, "want") {
			t.Errorf("%s: body %q is not a one-line reason", target, b)
		}
	}
	for _, target := range []string{
		"/Production", "/bad_name!", "/..", "/log/", "/log/abc", "/log/0", "/log/99", "/log/1/x", "/favicon.ico",
		"/atom/BAD", "/api", "/api/log/x", "/a/b",
	} {
		w := do(t, h, "GET", target)
		if w.Code != 404 && !(target == "/.." && w.Code/100 == 3) {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		for _, target := range []string{"/", "/production", "/log/1", "/api/log", "/atom", "/wikitext"} {
			w := do(t, h, m, target)
			if w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, target, w.Code)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: no security headers", m, target)
			}
		}
	}
	for target, loc := range map[string]string{"/production/?q=x": "/production?q=x", "/atom/": "/atom"} {
		if w := do(t, h, "GET", target); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != loc {
			t.Errorf("GET %s: %d to %q, want 301 to %q", target, w.Code, w.Header().Get("Location"), loc)
		}
	}
	w := do(t, h, "HEAD", "/log/1")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD: %d %v", w.Code, w.Header())
	}
}

func TestStoreFailure(t *testing.T) {
	store := sample()
	store.err = errors.New("disk on fire")
	h := newTest(store, func(o *Options) { o.Log = discardLog() })
	for _, target := range []string{"/", "/log/1", "/api/log", "/atom", "/wikitext"} {
		w := get(t, h, target, 500)
		if strings.Contains(w.Body.String(), "disk on fire") {
			t.Errorf("%s leaks the store error: %q", target, w.Body)
		}
	}
}

func TestEntryPage(t *testing.T) {
	h := newTest(sample())
	d := parse(t, get(t, h, "/log/4", 200))
	arts := d.all("article", "entry")
	if len(arts) != 1 {
		t.Fatalf("no entry:\n%s", d.raw)
	}
	got := strings.Join(strings.Fields(text(arts[0])), " ")
	for _, s := range []string{
		"2016-04-22 05:16:00 UTC", "bd808: deploying citoid 5d6e7f8 for T12345",
		"Project production", "Channel #wikimedia-operations", "Logged via deploy",
		"Permalink https://sal.example.org/log/4",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("entry page lacks %q: %s", s, got)
		}
	}
	if l := d.link("See it in the log"); l != "/production?before=5#e4" {
		t.Errorf("context link %q", l)
	}
	if l := d.link("T12345"); l != "https://phabricator.wikimedia.org/T12345" {
		t.Errorf("task link %q", l)
	}
	// And the hostile one.
	d = parse(t, get(t, h, "/log/5", 200))
	if len(d.all("script", ""))+len(d.all("img", "")) != 0 {
		t.Errorf("hostile message became markup:\n%s", d.raw)
	}
}

// A relayed entry's real sender is on its permalink page and in the JSON
// API, escaped; an entry without one shows none.
func TestRelayedSender(t *testing.T) {
	store := (&fakeStore{}).add(
		sal.Entry{Time: at("2016-04-22T05:02:00Z"), Nick: "alice@deploy1001", Project: "production", Message: "restarted web",
			Source: sal.SourceRelay, Sender: `logmsgbot!~lmb@wikimedia/bot/logmsgbot (logmsgbot) <b>x</b>`},
		sal.Entry{Time: at("2016-04-22T05:03:00Z"), Nick: "bob", Project: "production", Message: "direct"},
	)
	h := newTest(store)
	d := parse(t, get(t, h, "/log/1", 200))
	got := strings.Join(strings.Fields(text(d.all("article", "entry")[0])), " ")
	if want := "Sent by logmsgbot!~lmb@wikimedia/bot/logmsgbot (logmsgbot) <b>x</b>"; !strings.Contains(got, want) {
		t.Errorf("entry page lacks %q: %s", want, got)
	}
	if len(d.all("b", "")) != 0 {
		t.Errorf("sender became markup:\n%s", d.raw)
	}
	d = parse(t, get(t, h, "/log/2", 200))
	if got := text(d.all("article", "entry")[0]); strings.Contains(got, "Sent by") {
		t.Errorf("entry without a sender shows one: %s", got)
	}
	var resp apiResponse
	if err := json.Unmarshal(get(t, h, "/api/log", 200).Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 2 || resp.Entries[1].Sender != store.entries[0].Sender || resp.Entries[0].Sender != "" {
		t.Errorf("API entries %+v", resp.Entries)
	}
}

func TestPublicURLPrefix(t *testing.T) {
	h := newTest(sample(), func(o *Options) { o.PublicURL = "https://example.org/sal/" })
	for _, prefix := range []string{"", "/sal"} {
		d := parse(t, get(t, h, prefix+"/production", 200))
		if l := d.link("05:16"); l != "/sal/log/4" {
			t.Errorf("permalink %q", l)
		}
		if l := d.link("5d6e7f8"); l != "/sal/?q=5d6e7f8" {
			t.Errorf("sha1 link %q", l)
		}
		if !strings.Contains(d.raw, `action="/sal/production"`) {
			t.Error("form action lacks the prefix")
		}
		get(t, h, prefix+"/log/4", 200)
	}
	get(t, h, "/sal", 200)
	var resp apiResponse
	json.Unmarshal(get(t, h, "/sal/api/log?limit=1", 200).Body.Bytes(), &resp)
	if resp.Entries[0].URL != "https://example.org/sal/log/6" || !strings.HasPrefix(resp.Next, "https://example.org/sal/api/log?") {
		t.Errorf("absolute links: %+v", resp)
	}
}

type apiResponse struct {
	Entries []struct {
		sal.Entry
		URL string `json:"url"`
	} `json:"entries"`
	Next string `json:"next"`
}

func TestAPI(t *testing.T) {
	store := sample()
	h := newTest(store)
	w := get(t, h, "/api/log?project=production&q=citoid&d=2016-04-22&limit=1", 200)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var resp apiResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 1 || resp.Entries[0].ID != 4 || resp.Entries[0].URL != "https://sal.example.org/log/4" ||
		resp.Entries[0].Message != "deploying citoid 5d6e7f8 for T12345" || !resp.Entries[0].Time.Equal(at("2016-04-22T05:16:00Z")) {
		t.Errorf("entries %+v", resp.Entries)
	}
	next, err := url.Parse(resp.Next)
	if err != nil || next.Host != "sal.example.org" || next.Path != "/api/log" {
		t.Fatalf("next %q", resp.Next)
	}
	for k, v := range map[string]string{"project": "production", "q": "citoid", "d": "2016-04-22", "limit": "1", "before": "4"} {
		if next.Query().Get(k) != v {
			t.Errorf("next %q: %s=%q, want %q", resp.Next, k, next.Query().Get(k), v)
		}
	}
	// Following next gives the rest, and an empty next at the end.
	resp = apiResponse{}
	json.Unmarshal(get(t, h, next.RequestURI(), 200).Body.Bytes(), &resp)
	if len(resp.Entries) != 1 || resp.Entries[0].ID != 3 || resp.Next != "" {
		t.Errorf("second page %+v", resp)
	}
	// Empty is [], not null.
	w = get(t, h, "/api/log?q=nothing", 200)
	if !strings.Contains(w.Body.String(), `"entries":[]`) || !strings.Contains(w.Body.String(), `"next":""`) {
		t.Errorf("empty: %s", w.Body)
	}
	// Limits.
	get(t, h, "/api/log?limit=500", 200)
	if q := store.queries[len(store.queries)-1]; q.Limit != maxAPILimit+1 {
		t.Errorf("limit=500 asked the store for %d", q.Limit)
	}
	asked := len(store.queries)
	for _, bad := range []string{"limit=0", "limit=-1", "limit=x", "limit=501", "limit=100000", "limit=99999999999999999999",
		"project=Bad!", "d=x", "before=0", "q=" + strings.Repeat("x", maxSearchBytes+1)} {
		w := get(t, h, "/api/log?"+bad, 400)
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %s %q", bad, w.Header().Get("Content-Type"), w.Body)
		}
	}
	if len(store.queries) != asked {
		t.Errorf("bad requests reached the store: %+v", store.queries[asked:])
	}
}

// Atom 1.0 as the tests read it back.
type feed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string   `xml:"title"`
	ID      string   `xml:"id"`
	Updated string   `xml:"updated"`
	Author  struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Links []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Entries []struct {
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Author  struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Link struct {
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Content struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"content"`
	} `xml:"entry"`
}

func TestAtom(t *testing.T) {
	h := newTest(sample())
	w := get(t, h, "/atom", 200)
	if ct := w.Header().Get("Content-Type"); ct != "application/atom+xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(w.Body.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Error("no XML declaration")
	}
	var f feed
	if err := xml.Unmarshal(w.Body.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if f.ID != "https://sal.example.org/atom" || f.Title != defaultTitle || f.Author.Name == "" || len(f.Entries) != 6 {
		t.Errorf("feed %+v", f)
	}
	if f.Updated != "2016-04-23T10:00:00Z" {
		t.Errorf("feed updated %q", f.Updated)
	}
	if len(f.Links) != 2 || f.Links[0].Rel != "self" || f.Links[0].Href != "https://sal.example.org/atom" {
		t.Errorf("links %+v", f.Links)
	}
	e := f.Entries[1]
	if e.ID != "https://sal.example.org/log/5" || e.Link.Href != e.ID || e.Author.Name != "mallory" ||
		e.Content.Type != "text" || e.Content.Body != `<script>alert(1)</script> "><img src=x onerror=alert(2)>` {
		t.Errorf("entry %+v", e)
	}
	for _, e := range f.Entries {
		if _, err := time.Parse(time.RFC3339, e.Updated); err != nil {
			t.Errorf("updated %q: %v", e.Updated, err)
		}
	}
	f = feed{}
	xml.Unmarshal(get(t, h, "/atom/releng", 200).Body.Bytes(), &f)
	if f.ID != "https://sal.example.org/atom/releng" || len(f.Entries) != 1 || f.Entries[0].Title != "carol: beta cluster rebooted" {
		t.Errorf("project feed %+v", f)
	}
	// An empty feed is still valid: it has an author and an updated time.
	f = feed{}
	xml.Unmarshal(get(t, h, "/atom/empty", 200).Body.Bytes(), &f)
	if len(f.Entries) != 0 || f.Author.Name == "" || f.Updated != "2016-04-23T12:00:00Z" {
		t.Errorf("empty feed %+v", f)
	}
	// Long messages make short titles.
	long := strings.Repeat("é", 300)
	h = newTest((&fakeStore{}).add(sal.Entry{Time: now, Nick: "n", Message: long}))
	f = feed{}
	xml.Unmarshal(get(t, h, "/atom", 200).Body.Bytes(), &f)
	if title := []rune(f.Entries[0].Title); len(title) != len("n: ")+maxAtomTitle || string(title[len(title)-1]) != "…" || f.Entries[0].Content.Body != long {
		t.Errorf("long title %q", string(title))
	}
}

func TestWikitextEndpoint(t *testing.T) {
	store := sample()
	h := newTest(store)
	w := get(t, h, "/wikitext", 200)
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	want := "== 2016-04-23 ==\n" +
		"* 10:00 \"&gt;&lt;b&gt;evil&lt;/b&gt;: nick test\n" +
		"* 09:30 mallory: &lt;script&gt;alert(1)&lt;/script&gt; \"&gt;&lt;img src=x onerror=alert(2)&gt;\n"
	if w.Body.String() != want {
		t.Errorf("today:\n%s\nwant:\n%s", w.Body, want)
	}
	q := store.queries[len(store.queries)-1]
	if !q.Since.Equal(at("2016-04-23T00:00:00Z")) || !q.Until.Equal(at("2016-04-24T00:00:00Z")) {
		t.Errorf("query %+v", q)
	}

	w = get(t, h, "/wikitext?d=2016-04-22&days=2&project=production", 200)
	want = "== 2016-04-22 ==\n" +
		"* 05:16 bd808: deploying citoid 5d6e7f8 for T12345\n" +
		"* 05:02 alice: restarted citoid on scb1001\n" +
		"== 2016-04-21 ==\n" +
		"* 10:00 carol: started the day\n"
	if w.Body.String() != want {
		t.Errorf("two days:\n%s\nwant:\n%s", w.Body, want)
	}
	get(t, h, "/wikitext?days=31", 200)
}

func TestWikitextManyEntries(t *testing.T) {
	// More than one store page (1000) in the range.
	store := &fakeStore{}
	for i := range 2500 {
		store.add(sal.Entry{Time: at("2016-04-22T00:00:00Z").Add(time.Duration(i) * time.Second), Nick: "n", Message: "m" + strconv.Itoa(i)})
	}
	h := newTest(store)
	body := get(t, h, "/wikitext?d=2016-04-22", 200).Body.String()
	if n := strings.Count(body, "\n* "); n != 2500 || !strings.HasSuffix(body, ": m0\n") {
		t.Errorf("%d entries, ends %q", n, body[len(body)-20:])
	}
}

// TestSQLiteStore runs the handler on the real store, with the filters
// every version of it has (project, cursor).
func TestSQLiteStore(t *testing.T) {
	store, err := sal.OpenSQLite(filepath.Join(t.TempDir(), "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	for _, e := range sample().entries {
		e.ID = 0
		if e.Source == "" {
			e.Source = sal.SourceIRC
		}
		if err := store.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	h := newTest(store, func(o *Options) { o.PageSize = 2 })
	d := parse(t, get(t, h, "/production", 200))
	equal(t, "first page", d.items(), []string{`10:00 "><b>evil</b>: nick test`, `09:30 mallory: <script>alert(1)</script> "><img src=x onerror=alert(2)>`})
	d = parse(t, get(t, h, d.link("Older entries »"), 200))
	equal(t, "second page", d.items(), []string{"05:16 bd808: deploying citoid 5d6e7f8 for T12345", "05:02 alice: restarted citoid on scb1001"})

	d = parse(t, get(t, h, d.link("05:16"), 200))
	if a := d.all("article", "entry"); len(a) != 1 || !strings.Contains(text(a[0]), "deploying citoid") {
		t.Errorf("entry page:\n%s", d.raw)
	}
	get(t, h, "/log/99", 404)

	var resp apiResponse
	json.Unmarshal(get(t, h, "/api/log?project=releng", 200).Body.Bytes(), &resp)
	if len(resp.Entries) != 1 || resp.Entries[0].Nick != "carol" || resp.Entries[0].Channel != "#wikimedia-releng" {
		t.Errorf("api %+v", resp)
	}
	var f feed
	if err := xml.Unmarshal(get(t, h, "/atom/production", 200).Body.Bytes(), &f); err != nil || len(f.Entries) != 2 {
		t.Errorf("atom %v %+v", err, f)
	}

	// Search, day and range filters, done by the store.
	h = newTest(store)
	d = parse(t, get(t, h, "/production?q=citoid&d=2016-04-22", 200))
	equal(t, "search", d.items(), []string{"05:16 bd808: deploying citoid 5d6e7f8 for T12345", "05:02 alice: restarted citoid on scb1001"})
	d = parse(t, get(t, h, "/?d=2016-04-21", 200))
	equal(t, "day", d.items(), []string{"23:59 releng carol: beta cluster rebooted", "10:00 production carol: started the day"})
	want := "== 2016-04-22 ==\n* 05:16 bd808: deploying citoid 5d6e7f8 for T12345\n* 05:02 alice: restarted citoid on scb1001\n"
	if got := get(t, h, "/wikitext?d=2016-04-22&project=production", 200).Body.String(); got != want {
		t.Errorf("wikitext:\n%s\nwant:\n%s", got, want)
	}
}

// discardLog is a logger for tests that provoke errors on purpose.
func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// One person, one name: a !log entry and a deploy entry from the same
// person show the nick with the services account after it (and in a
// tooltip) when the two differ, on the list and on the entry page.
func TestNickWithAccount(t *testing.T) {
	store := (&fakeStore{}).add(
		sal.Entry{Time: at("2016-04-22T05:02:00Z"), Nick: "alice_", Account: "alice", Project: "production", Message: "restarted web", Source: sal.SourceIRC},
		sal.Entry{Time: at("2016-04-22T05:03:00Z"), Nick: "alice_", Account: "alice", Project: "production", Message: "Started deploy [web@5d6e7f8]", Source: sal.SourceDeploy},
		sal.Entry{Time: at("2016-04-22T05:04:00Z"), Nick: "bob", Account: "Bob", Project: "production", Message: "same name", Source: sal.SourceIRC},
	)
	h := newTest(store)
	body := get(t, h, "/production", 200).Body.String()
	want := `<span class="nick" title="services account alice">alice_</span><span class="account"> (alice)</span>: `
	if n := strings.Count(body, want); n != 2 {
		t.Errorf("%d entries show %q, want the !log and the deploy entry:\n%s", n, want, body)
	}
	if !strings.Contains(body, `<span class="nick">bob</span>: `) {
		t.Errorf("an account equal to the nick is repeated:\n%s", body)
	}
	for _, id := range []string{"1", "2"} {
		d := parse(t, get(t, h, "/log/"+id, 200))
		if got := strings.Join(strings.Fields(text(d.all("article", "entry")[0])), " "); !strings.Contains(got, "alice_ (alice): ") {
			t.Errorf("entry %s: %s", id, got)
		}
	}
}
