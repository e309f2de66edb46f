package web

import (
	"strings"
	"testing"
	"time"

	"deploybot/sal"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWikitextFormat(t *testing.T) {
	// Out of order on purpose: Wikitext sorts, newest day and entry first.
	entries := []sal.Entry{
		{ID: 1, Time: at("2016-04-21T23:59:00Z"), Nick: "carol", Message: "late one"},
		{ID: 3, Time: at("2016-04-22T05:16:00Z"), Nick: "bd808", Message: "deploying citoid 5d6e7f8"},
		{ID: 2, Time: at("2016-04-22T05:02:00Z"), Nick: "alice", Message: "restarted citoid on scb1001"},
		{ID: 4, Time: at("2016-04-22T07:02:00+02:00"), Nick: "dave", Message: "same minute, later id"},
	}
	var b strings.Builder
	if err := Wikitext(&b, entries); err != nil {
		t.Fatal(err)
	}
	want := `== 2016-04-22 ==
* 05:16 bd808: deploying citoid 5d6e7f8
* 05:02 dave: same minute, later id
* 05:02 alice: restarted citoid on scb1001
== 2016-04-21 ==
* 23:59 carol: late one
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := Wikitext(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("no entries: %q, %v", b.String(), err)
	}
}

func TestWikitextEscaping(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"templates", "{{delete}} and {{subst:foo|bar}}", "&#123;&#123;delete&#125;&#125; and &#123;&#123;subst:foo&#124;bar&#125;&#125;"},
		{"closing braces alone", "}} done", "&#125;&#125; done"},
		{"table", "{| class=wikitable\n|-\n| x\n|}", "&#123;&#124; class=wikitable &#124;- &#124; x &#124;&#125;"},
		{"pipe", "a|b", "a&#124;b"},
		{"internal link", "see [[Main Page|home]]", "see &#91;&#91;Main Page&#124;home&#93;&#93;"},
		{"external link", "[https://evil.example.org click]", "&#91;https://evil.example.org click&#93;"},
		{"heading in message", "== Hacked ==", "== Hacked =="},
		{"heading after a newline", "ok\n== Hacked ==\n* fake 00:00 entry", "ok == Hacked == * fake 00:00 entry"},
		{"tags", "<nowiki>x</nowiki> <!-- c --> <script>alert(1)</script>", "&lt;nowiki&gt;x&lt;/nowiki&gt; &lt;!-- c --&gt; &lt;script&gt;alert(1)&lt;/script&gt;"},
		{"signatures", "~~~~ and ~~~ and ~~~~~ but ~ and ~~ stay", "&#126;&#126;&#126;&#126; and &#126;&#126;&#126; and &#126;&#126;&#126;&#126;&#126; but ~ and ~~ stay"},
		{"bold and italics", "'''bold''' ''it'' don't", "&#39;&#39;&#39;bold&#39;&#39;&#39; &#39;&#39;it&#39;&#39; don't"},
		{"behaviour switch", "__NOTOC__ snake_case", "&#95;&#95;NOTOC&#95;&#95; snake_case"},
		{"character references stay literal", "&#123; &amp; &lt; AT&T & co; &", "&amp;#123; &amp;amp; &amp;lt; AT&T & co; &"},
		{"language converter", "-{zh-hans:x}-", "-&#123;zh-hans:x&#125;-"},
		{"plain", "deploying citoid 5d6e7f8 (T12345) https://x.example.org/a?b=c", "deploying citoid 5d6e7f8 (T12345) https://x.example.org/a?b=c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			e := sal.Entry{ID: 1, Time: at("2016-04-22T05:16:00Z"), Nick: "bd808", Message: tt.msg}
			if err := Wikitext(&b, []sal.Entry{e}); err != nil {
				t.Fatal(err)
			}
			want := "== 2016-04-22 ==\n* 05:16 bd808: " + tt.want + "\n"
			if b.String() != want {
				t.Errorf("message %q\n got: %q\nwant: %q", tt.msg, b.String(), want)
			}
			checkWikiLine(t, b.String())
		})
	}
}

func TestWikitextNick(t *testing.T) {
	var b strings.Builder
	e := sal.Entry{ID: 1, Time: at("2016-04-22T05:16:00Z"), Nick: "[[User:x|x]]{{y}}\n== z ==", Message: "hi"}
	if err := Wikitext(&b, []sal.Entry{e}); err != nil {
		t.Fatal(err)
	}
	want := "== 2016-04-22 ==\n* 05:16 &#91;&#91;User:x&#124;x&#93;&#93;&#123;&#123;y&#125;&#125; == z ==: hi\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// checkWikiLine fails if the export holds anything but headings and list
// items, or markup characters in an item.
func checkWikiLine(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "== ") && strings.HasSuffix(line, " =="):
			if _, err := time.Parse("== 2006-01-02 ==", line); err != nil {
				t.Errorf("heading %q is not a day", line)
			}
		case strings.HasPrefix(line, "* "):
			if i := strings.IndexAny(line, "{}|[]<>"); i >= 0 {
				t.Errorf("markup %q left in %q", line[i], line)
			}
			for _, s := range []string{"~~~", "''", "__"} {
				if strings.Contains(line, s) {
					t.Errorf("%q left in %q", s, line)
				}
			}
		default:
			t.Errorf("line %q is neither a day heading nor an entry", line)
		}
	}
}
