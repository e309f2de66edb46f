package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nPRIVMSG #x :evil", "a  PRIVMSG #x :evil"},
		{"nul\x00x", "nulx"},
		{"\x01ACTION dances\x01", "ACTION dances"},
		{"tab\there", "tab here"},
		{"\x02bold\x02 kept", "\x02bold\x02 kept"},
		{"bad\xffbyte", "bad\uFFFDbyte"},
	}
	for _, c := range cases {
		if got := sanitize(c.in); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitText(t *testing.T) {
	words := strings.Repeat("deploy citoid ", 100)
	for _, budget := range []int{10, 37, 100, 400} {
		parts := splitText(words, budget)
		if strings.Join(parts, " ") != strings.TrimSpace(words) {
			t.Fatalf("budget %d: words lost or changed", budget)
		}
		for _, p := range parts {
			if len(p) > budget || p == "" || strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") {
				t.Fatalf("budget %d: bad part %q", budget, p)
			}
		}
	}
	// A long word of multi-byte characters is cut between characters.
	snow := strings.Repeat("☃", 200) // 3 bytes each
	parts := splitText(snow, 100)
	if strings.Join(parts, "") != snow {
		t.Fatal("runes lost")
	}
	for _, p := range parts {
		if !utf8.ValidString(p) || len(p) > 100 {
			t.Fatalf("bad part %q (%d bytes)", p, len(p))
		}
	}
	if got := splitText("   ", 10); len(got) != 0 {
		t.Fatalf("blank text gave %q", got)
	}
	if got := splitText("short", 400); len(got) != 1 || got[0] != "short" {
		t.Fatalf("short text gave %q", got)
	}
}

func TestTextBudget(t *testing.T) {
	if b := textBudget("#ops", maxPrefixLen); b > maxTextBytes || b < 300 {
		t.Fatalf("budget %d", b)
	}
	long := "#" + strings.Repeat("c", 49)
	line := ":" + strings.Repeat("n", maxPrefixLen-1) + " PRIVMSG " + long + " :" + strings.Repeat("x", textBudget(long, maxPrefixLen)) + "\r\n"
	if len(line) > 512 {
		t.Fatalf("line of %d bytes", len(line))
	}
}

func TestFold(t *testing.T) {
	if !sameName("Deploy[Bot]", "deploy{bot}") || sameName("a", "b") {
		t.Fatal("rfc1459 folding wrong")
	}
}
