package web

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

const phab = "https://phabricator.wikimedia.org/%s"

func TestLinkify(t *testing.T) {
	tests := []struct {
		name, in, task, want string
	}{
		{"plain", "restarted citoid", phab, "restarted citoid"},
		{"script", `<script>alert(1)</script>`, phab, `&lt;script&gt;alert(1)&lt;/script&gt;`},
		{"attribute injection in text", `"><img src=x onerror=alert(1)> & 'x'`, phab,
			`&#34;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#39;x&#39;`},
		{"task", "fixing T12345 now", phab,
			`fixing <a href="https://phabricator.wikimedia.org/T12345">T12345</a> now`},
		{"task in parens and at ends", "(T123) T4567:", phab,
			`(<a href="https://phabricator.wikimedia.org/T123">T123</a>) <a href="https://phabricator.wikimedia.org/T4567">T4567</a>:`},
		{"task too short", "T12 T1", phab, "T12 T1"},
		{"task not a word", "xT12345 T12345x T12345_1 BT123", phab, "xT12345 T12345x T12345_1 BT123"},
		{"no task URL", "T12345", "", "T12345"},
		{"task URL without %s", "T12345", "https://tasks.example.org/", `<a href="https://tasks.example.org/T12345">T12345</a>`},
		{"unsafe task URL", "T12345", "javascript:alert(%s)", "T12345"},
		{"task glued to a path", "gerrit/r/T12345 a-T12345", phab, "gerrit/r/T12345 a-T12345"},
		{"sha1 short", "deploying citoid 5d6e7f8", phab, `deploying citoid <a href="/?q=5d6e7f8">5d6e7f8</a>`},
		{"sha1 full", "at 0123456789abcdef0123456789abcdef01234567.", phab,
			`at <a href="/?q=0123456789abcdef0123456789abcdef01234567">0123456789abcdef0123456789abcdef01234567</a>.`},
		{"hex words and numbers are not sha1s", "deadbeef defaced 20160422 1234567", phab, "deadbeef defaced 20160422 1234567"},
		{"hex too short or too long", "abc123 0123456789abcdef0123456789abcdef012345678", phab,
			"abc123 0123456789abcdef0123456789abcdef012345678"},
		{"hex inside a word", "xabc1234 abc1234g abcdef1_", phab, "xabc1234 abc1234g abcdef1_"},
		{"uppercase hex", "ABCDEF12", phab, "ABCDEF12"},
		{"deploy tag", "Started deploy [citoid@5d6e7f8]: Fix", phab,
			`Started deploy [citoid@<a href="/?q=5d6e7f8">5d6e7f8</a>]: Fix`},
		{"deploy tag, all digits", "Finished deploy [web-2.x_y@1234567] ok", phab,
			`Finished deploy [web-2.x_y@<a href="/?q=1234567">1234567</a>] ok`},
		{"deploy tag, all letters", "[svc@deadbee]", phab, `[svc@<a href="/?q=deadbee">deadbee</a>]`},
		{"not a deploy tag", "svc@1234567] [@1234567] [svc@1234567 [a b@1234567] x[s@12345678", phab,
			"svc@1234567] [@1234567] [svc@1234567 [a b@1234567] x[s@12345678"},
		{"full sha1, all digits", "at 1234567890123456789012345678901234567890", phab,
			`at <a href="/?q=1234567890123456789012345678901234567890">1234567890123456789012345678901234567890</a>`},
		{"url", "see https://wikitech.wikimedia.org/wiki/SAL for more", phab,
			`see <a href="https://wikitech.wikimedia.org/wiki/SAL" rel="nofollow">https://wikitech.wikimedia.org/wiki/SAL</a> for more`},
		{"url trailing punctuation", "see http://a.example.org/x. Or (http://b.example.org/y), ok?", phab,
			`see <a href="http://a.example.org/x" rel="nofollow">http://a.example.org/x</a>. Or (<a href="http://b.example.org/y" rel="nofollow">http://b.example.org/y</a>), ok?`},
		{"url balanced parens", "https://en.wikipedia.org/wiki/Foo_(bar)", phab,
			`<a href="https://en.wikipedia.org/wiki/Foo_(bar)" rel="nofollow">https://en.wikipedia.org/wiki/Foo_(bar)</a>`},
		{"url with task and sha1 inside is one link", "https://gerrit.example.org/r/T12345/5d6e7f8a?x=abc1234#T999 done", phab,
			`<a href="https://gerrit.example.org/r/T12345/5d6e7f8a?x=abc1234#T999" rel="nofollow">https://gerrit.example.org/r/T12345/5d6e7f8a?x=abc1234#T999</a> done`},
		{"url ampersand", "http://x.example.org/?a=1&b=<2>", phab,
			`<a href="http://x.example.org/?a=1&amp;b=" rel="nofollow">http://x.example.org/?a=1&amp;b=</a>&lt;2&gt;`},
		{"url double quote ends it", `http://x.example.org/"onmouseover="alert(1)`, phab,
			`<a href="http://x.example.org/" rel="nofollow">http://x.example.org/</a>&#34;onmouseover=&#34;alert(1)`},
		{"url single quote is escaped in href", `http://x.example.org/a'onmouseover='alert(1)'`, phab,
			`<a href="http://x.example.org/a&#39;onmouseover=&#39;alert(1)" rel="nofollow">http://x.example.org/a&#39;onmouseover=&#39;alert(1)</a>&#39;`},
		{"javascript is never a link", "javascript:alert(1) JAVASCRIPT://x.org/%0aalert(1) data:text/html,hi", phab,
			"javascript:alert(1) JAVASCRIPT://x.org/%0aalert(1) data:text/html,hi"},
		{"scheme without host", "http:// https:///x", phab, "http:// https:///x"},
		{"scheme-less path keeps its sha1", "gerrit.example.org/r/c/abc1234", phab, "gerrit.example.org/r/c/abc1234"},
		{"all three", "T123 abc1234 https://a.example.org/", phab,
			`<a href="https://phabricator.wikimedia.org/T123">T123</a> <a href="/?q=abc1234">abc1234</a> <a href="https://a.example.org/" rel="nofollow">https://a.example.org/</a>`},
		{"unicode", "déploiement de T1234 — ok ✓", phab,
			`déploiement de <a href="https://phabricator.wikimedia.org/T1234">T1234</a> — ok ✓`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Linkify(tt.in, tt.task))
			if got != tt.want {
				t.Errorf("Linkify(%q)\n got: %s\nwant: %s", tt.in, got, tt.want)
			}
			checkSafeHTML(t, tt.in, got)
		})
	}
}

// checkSafeHTML parses out as an HTML fragment and fails unless it is text
// and <a> elements with only href (http, https or root-relative) and rel,
// and its text is exactly in.
func checkSafeHTML(t *testing.T, in, out string) {
	t.Helper()
	body := &html.Node{Type: html.ElementNode, Data: "p", DataAtom: atom.P}
	nodes, err := html.ParseFragment(strings.NewReader(out), body)
	if err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	var text strings.Builder
	for _, n := range nodes {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data)
		case html.ElementNode:
			if n.Data != "a" {
				t.Fatalf("Linkify(%q) made a <%s> element: %s", in, n.Data, out)
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "href":
					lower := strings.ToLower(a.Val)
					if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") &&
						!(strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "//")) {
						t.Fatalf("Linkify(%q) made href %q", in, a.Val)
					}
				case "rel":
				default:
					t.Fatalf("Linkify(%q) made attribute %s=%q: %s", in, a.Key, a.Val, out)
				}
			}
			if n.FirstChild == nil || n.FirstChild != n.LastChild || n.FirstChild.Type != html.TextNode {
				t.Fatalf("Linkify(%q): link holds more than text: %s", in, out)
			}
			text.WriteString(n.FirstChild.Data)
		default:
			t.Fatalf("Linkify(%q) made node type %v: %s", in, n.Type, out)
		}
	}
	if text.String() != in {
		t.Fatalf("Linkify(%q) shows %q", in, text.String())
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
