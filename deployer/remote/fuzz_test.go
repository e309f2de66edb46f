package remote

import (
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzMarkers feeds arbitrary script output to the marker parser, whole
// (ParseStages) and in chunks (as Run's stream gives it): it must not
// panic, must report only markers written out in full in their exact form,
// and must not depend on how the output was cut. `make fuzz` runs it for a
// while, `go test` runs its seeds (here and under
// testdata/fuzz/FuzzMarkers/).
func FuzzMarkers(f *testing.F) {
	sha := strings.Repeat("ab", 20)
	for _, s := range []string{
		"##deploybot pid 4242\n##deploybot begin fetch\nfetching\n##deploybot end fetch 0 120\n##deploybot begin checkout\nno newline" +
			"##deploybot end checkout 0 1530\n##deploybot begin restart\nfailed\n##deploybot end restart 3 2010\n",
		"##deploybot pid 1\n##deploybot noop " + sha + "\n",
		"##deploybot rev " + sha + "\n##deploybot noop \n",
		"##deploybot current " + sha + "\n##deploybot done \n##deploybot deploying " + sha + "\n",
		"##deploybot begin fetch\n##deploybot end fetch 0 5\n##deploybot begin checkout\npartial",
		"##deploybot begin fetch\n##deploybot  end fetch 0 5\n##deploybot end fetch 00 5\n##deploybot end fetch 0 5 \n##deploybot end fetch 0 -7\n",
		"##deploybot begin fetch\r\n##deploybot end\tfetch 0 5\n##deploybot end Fetch 0 5\n##deploybot end fetch +0 5\n",
		"service says: ##deploybot noop\n##deploybot unknown x\n##deploybot pid\n##deploybot pid 12a\n##deploybot begin fet",
		"##deploybot ##deploybot begin fetch\n##deploybot begin ##deploybot\n##deploybot noop a b\n",
		"##deploybot begin fetch\n##deploybot end fetch 0 99999999999999999999\n",
		strings.Repeat("x", maxLine+10) + "##deploybot begin fetch\n",
	} {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, out string, cut uint8) {
		stages, noop := ParseStages(out)
		for _, s := range stages {
			if !strings.Contains(out, MarkerPrefix+"begin "+s.Stage+"\n") {
				t.Fatalf("stage %q reported without its begin marker", s.Stage)
			}
			if s.ExitCode != -1 && !hasEnd(out, s) {
				t.Fatalf("stage %+v reported without its end marker", s)
			}
		}
		if noop && !hasMarker(out, "noop") {
			t.Fatal("noop reported without its marker")
		}

		// The same output as a stream, cut every cut+1 bytes.
		p := newParser()
		p.now = func() time.Time { return time.Time{} }
		n := int(cut) + 1
		for i := 0; i < len(out); i += n {
			p.Write([]byte(out[i:min(i+n, len(out))]))
		}
		streamed, _, marks, pid := p.result()
		if pid != 0 && !strings.Contains(out, MarkerPrefix+"pid "+strconv.Itoa(pid)+"\n") {
			t.Fatalf("pid %d reported without its marker", pid)
		}
		for k, v := range marks {
			if !strings.Contains(out, MarkerPrefix+k+" "+v+"\n") {
				t.Fatalf("marker %s %q reported, not written", k, v)
			}
		}
		longest := 0
		for _, l := range strings.SplitAfter(out, "\n") {
			longest = max(longest, len(l))
		}
		if longest > maxLine {
			return // long lines are passed on in pieces where they are cut
		}
		if len(streamed) != len(stages) {
			t.Fatalf("streamed %d stages, whole %d", len(streamed), len(stages))
		}
		for i := range stages {
			a, b := stages[i], streamed[i]
			if a.Stage != b.Stage || a.ExitCode != b.ExitCode || a.Duration != b.Duration {
				t.Fatalf("stage %d: streamed %+v, whole %+v", i, b, a)
			}
			if a.ExitCode != -1 && a.Output != b.Output {
				t.Fatalf("stage %d output: streamed %q, whole %q", i, b.Output, a.Output)
			}
		}
	})
}

// hasEnd reports whether out holds, on a line's end, the end marker s was
// parsed from: its stage, exit code and its duration (unless that was
// measured here, which the fuzz clock makes 0).
func hasEnd(out string, s StageResult) bool {
	head := MarkerPrefix + "end " + s.Stage + " " + strconv.Itoa(s.ExitCode) + " "
	for rest := out; ; {
		i := strings.Index(rest, head)
		if i < 0 {
			return false
		}
		rest = rest[i+len(head):]
		ms, _, ok := strings.Cut(rest, "\n")
		if !ok {
			return false
		}
		if s.Duration == 0 && isDigits(strings.TrimPrefix(ms, "-")) {
			return true // 0, or measured (negative, too large)
		}
		if isDigits(ms) && ms == strconv.FormatInt(s.Duration.Milliseconds(), 10) && s.Duration%time.Millisecond == 0 {
			return true
		}
	}
}

// hasMarker reports whether out holds a complete marker line with key.
func hasMarker(out, key string) bool {
	for _, l := range strings.SplitAfter(out, "\n") {
		i := strings.LastIndex(l, MarkerPrefix+key+" ")
		if i >= 0 && strings.HasSuffix(l, "\n") {
			if _, _, ok := marker(strings.TrimSuffix(l[i+len(MarkerPrefix):], "\n")); ok {
				return true
			}
		}
	}
	return false
}

// ReadFrom (what a session's output copier calls) parses a stream read
// in small pieces as Write does the whole of it.
func TestParserReadFrom(t *testing.T) {
	var b strings.Builder
	b.WriteString("##deploybot pid 77\n")
	for i := range 40 {
		stage := "s" + strings.Repeat("a", i%5+1)
		b.WriteString("##deploybot begin " + stage + "\n" + strings.Repeat("output line of "+stage+"\n", 30) +
			"##deploybot end " + stage + " 0 " + strconv.Itoa(i) + "\n")
	}
	out := b.String()
	whole, streamed := newParser(), newParser()
	whole.Write([]byte(out))
	n, err := streamed.ReadFrom(iotest.OneByteReader(strings.NewReader(out[:readBuf+3])))
	if err != nil || n != int64(readBuf+3) {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	if _, err := streamed.ReadFrom(strings.NewReader(out[readBuf+3:])); err != nil {
		t.Fatal(err)
	}
	ws, wo, _, wp := whole.result()
	ss, so, _, sp := streamed.result()
	if len(ws) != 40 || len(ss) != len(ws) || wo != so || wp != sp || wp != 77 {
		t.Fatalf("streamed %d stages pid %d, whole %d stages pid %d", len(ss), sp, len(ws), wp)
	}
	for i := range ws {
		if ws[i].Stage != ss[i].Stage || ws[i].Output != ss[i].Output || ws[i].Duration != ss[i].Duration {
			t.Fatalf("stage %d: streamed %+v, whole %+v", i, ss[i], ws[i])
		}
	}
}
