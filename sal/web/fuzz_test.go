package web

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"html"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	xhtml "golang.org/x/net/html"

	"deploybot/sal"
)

// Fuzz targets of the renderers; `make fuzz` runs each for a while, `go
// test` runs their seeds (here and under testdata/fuzz/<target>/).

var fuzzTexts = []string{
	"restarted citoid on scb1001 (T12345) https://gerrit.example.org/r/c/123 5d6e7f8",
	`<script>alert(1)</script> "><img src=x onerror=alert(2)>`,
	"javascript:alert(1) JAVASCRIPT://x http://evil\"onmouseover=x https://a.b/c?d=e&f=g#h).",
	"{{template}} [[link]] [http://x y] ~~~~ ''bold'' __NOTOC__ ---- &#123; &amp &lt;",
	"T123 T1 aT123 /T999 abc1234 deadbeef 20160422 a/abcdef1 https://x.org/T123/abc1234",
	"\x02bold\x02 \x03color \x00nul \r\n newline \t tab \xff\xfe invalid \u2028",
	"http://[::1]:80/x http://:80/ https:// http://a.b/((x)) http://a.b/[x]]",
	"&#x41; &#65; &lt &gt; &quot; &#; &; &#xzz;",
	"é ☃ 😀 \ufeff \ufffe \U0010ffff",
}

// anchorRE is the one piece of markup Linkify writes.
var anchorRE = regexp.MustCompile(`<a href="([^"<>]*)"(?: rel="nofollow")?>([^<>"]*)</a>`)

// FuzzLinkify: the visible text is the input, exactly; the only markup is
// <a href> with an http(s) URL, the task URL or a SAL search; a link's
// text is what it links (or the task id, or the sha1 searched).
func FuzzLinkify(f *testing.F) {
	for _, s := range fuzzTexts {
		f.Add(s, "https://phabricator.example.org/%s")
		f.Add(s, "")
	}
	for _, s := range []string{
		"deploying citoid 5d6e7f8 for T12345 https://gerrit.example.org/r/1234",
		`"><svg onload=alert(1)>`, `http://x.org/"'<>&`,
		"https://x.org/a)b](c) T1234]", "http://[::1]:80/ https://x:y@z/",
	} {
		f.Add(s, phab)
	}
	f.Add("T123", "javascript:alert(%s)")
	f.Add("T123", "/tasks/")
	f.Add("T123", "//evil.example/%s")
	f.Fuzz(func(t *testing.T, text, taskURL string) {
		if !utf8.ValidString(text) {
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		out := string(Linkify(text, taskURL))
		if !strings.ContainsAny(text, "\x00\r\n\f") {
			// What sal.Clean lets through, parsed as a browser would.
			checkSafeHTML(t, text, out)
		}
		var visible strings.Builder
		last := 0
		for _, m := range anchorRE.FindAllStringSubmatchIndex(out, -1) {
			visible.WriteString(out[last:m[0]])
			href := html.UnescapeString(out[m[2]:m[3]])
			label := html.UnescapeString(out[m[4]:m[5]])
			visible.WriteString(out[m[4]:m[5]])
			last = m[1]
			lower := strings.ToLower(href)
			switch {
			case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
				if href != label && !isTaskLink(taskURL, href, label) {
					t.Fatalf("link %q shows %q", href, label)
				}
			case href == "/?q="+label:
				if !sha1Like(label) || len(label) < 7 || len(label) > 40 {
					t.Fatalf("search link for %q", label)
				}
			case isTaskLink(taskURL, href, label):
			default:
				t.Fatalf("unsafe or unexpected href %q (label %q, task URL %q) in %q", href, label, taskURL, out)
			}
		}
		visible.WriteString(out[last:])
		rest := visible.String()
		if strings.ContainsAny(rest, `<>"'`) {
			t.Fatalf("markup outside the links: %q", out)
		}
		if got := html.UnescapeString(rest); got != text {
			t.Fatalf("visible text changed:\n got %q\nwant %q", got, text)
		}
	})
}

// isTaskLink reports whether href is taskURL's link for the task id label.
func isTaskLink(taskURL, href, label string) bool {
	if !safeTaskURL(taskURL) || !regexp.MustCompile(`^T[0-9]{3,}$`).MatchString(label) {
		return false
	}
	return href == newLinker(taskURL, "/").taskHref(label)
}

// xmlText is s as an XML document can carry it: invalid UTF-8 and
// characters XML cannot hold become U+FFFD, as encoding/xml writes them.
func xmlText(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			b.WriteRune(r)
		} else {
			b.WriteRune('\uFFFD')
		}
	}
	return b.String()
}

// tagsAndLinks lists the start tags of an HTML page and checks every
// attribute: no event handler, no script: or data: URL.
func tagsAndLinks(t *testing.T, page []byte) map[string]bool {
	t.Helper()
	tags := map[string]bool{}
	z := xhtml.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case xhtml.ErrorToken:
			return tags
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			tok := z.Token()
			tags[tok.Data] = true
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				if strings.HasPrefix(a.Key, "on") {
					t.Fatalf("event handler %s=%q", a.Key, a.Val)
				}
				if (a.Key == "href" || a.Key == "action" || a.Key == "src") &&
					!(strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") || strings.HasPrefix(v, "?") || strings.HasPrefix(v, "#") ||
						strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://")) {
					t.Fatalf("%s=%q on <%s>", a.Key, a.Val, tok.Data)
				}
			}
		}
	}
}

// FuzzRenderers renders one entry, as a store keeps it (cleaned), through
// every view: the HTML list and entry pages hold no markup but the
// templates' and Linkify's links; the Atom feed is well-formed XML that
// gives the message back; the JSON API gives it back; the wikitext is two
// lines that hold no wiki markup and read back as the entry.
func FuzzRenderers(f *testing.F) {
	for i, s := range fuzzTexts {
		f.Add("alice", s, "production", int64(1461302167+i*86400))
		f.Add(s, "msg", s, int64(i))
	}
	f.Add("b~~", "~''x''__y__~~~", "p", int64(-1))
	f.Add("", "", "", int64(0))
	f.Fuzz(func(t *testing.T, nick, msg, project string, unix int64) {
		when := time.Unix(unix%(1<<33), 0).UTC()
		stored := sal.Entry{Nick: sal.Clean(nick), Message: sal.Clean(msg), Project: sal.Clean(project), Channel: "#ops", Time: when}
		if stored.Nick == "" || stored.Message == "" || len(stored.Message) > sal.MaxMessageBytes {
			return // the store refuses it
		}
		benign := newTest((&fakeStore{}).add(sal.Entry{Nick: "n", Message: "m", Project: "p", Channel: "#ops", Time: when}))
		h := newTest((&fakeStore{}).add(stored))
		day := when.Format(time.DateOnly)
		for _, target := range []string{"/?d=" + day, "/log/1"} {
			allowed := tagsAndLinks(t, get(t, benign, target, 200).Body.Bytes())
			allowed["a"] = true
			for tag := range tagsAndLinks(t, get(t, h, target, 200).Body.Bytes()) {
				if !allowed[tag] {
					t.Fatalf("%s: <%s> came from the entry", target, tag)
				}
			}
		}

		var feed feed
		if err := xml.Unmarshal(get(t, h, "/atom?d="+day, 200).Body.Bytes(), &feed); err != nil {
			t.Fatalf("atom: %v", err)
		}
		if len(feed.Entries) != 1 || feed.Entries[0].Content.Body != xmlText(stored.Message) || feed.Entries[0].Author.Name != xmlText(stored.Nick) {
			t.Fatalf("atom entries %+v, want the message %q", feed.Entries, stored.Message)
		}

		var api struct{ Entries []sal.Entry }
		if err := json.Unmarshal(get(t, h, "/api/log", 200).Body.Bytes(), &api); err != nil {
			t.Fatalf("api: %v", err)
		}
		if len(api.Entries) != 1 || api.Entries[0].Message != stored.Message || api.Entries[0].Nick != stored.Nick {
			t.Fatalf("api entries %+v", api.Entries)
		}

		// Wikitext cleans by itself: give it the raw entry.
		raw := sal.Entry{Nick: nick, Message: msg, Time: when}
		var buf bytes.Buffer
		if err := Wikitext(&buf, []sal.Entry{raw}); err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(buf.String(), "\n")
		if len(lines) != 3 || lines[2] != "" || lines[0] != "== "+day+" ==\n" {
			t.Fatalf("wikitext %q", buf.String())
		}
		item := strings.TrimSuffix(lines[1], "\n")
		if strings.ContainsAny(item, "{}|[]<>\n\r") || strings.Contains(item, "~~~") || strings.Contains(item, "''") || strings.Contains(item, "__") {
			t.Fatalf("wiki markup in %q", item)
		}
		want := "* " + when.Format("15:04") + " " + sal.Clean(nick) + ": " + sal.Clean(msg)
		if got := wikiUnescape(item); got != want {
			t.Fatalf("wikitext reads\n%q\nwant\n%q", got, want)
		}
	})
}

// wikiCharRef is what wikiEscape writes, and what MediaWiki reads as the
// character: numeric references and three named ones, with their ;.
var wikiCharRef = regexp.MustCompile(`&(#[0-9]+|lt|gt|amp);`)

func wikiUnescape(s string) string {
	return wikiCharRef.ReplaceAllStringFunc(s, func(ref string) string {
		switch name := ref[1 : len(ref)-1]; name {
		case "lt":
			return "<"
		case "gt":
			return ">"
		case "amp":
			return "&"
		default:
			n, err := strconv.Atoi(name[1:])
			if err != nil {
				return ref
			}
			return string(rune(n))
		}
	})
}
