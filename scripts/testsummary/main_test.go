package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// The testdata streams are real `go test -json` output of a small package
// with TestPass, TestSkip, TestSub (a skipped and a passing subtest) and,
// in mixed.jsonl only, TestFail.
func summarize(t *testing.T, args []string, file string) (int, string) {
	t.Helper()
	var in io.Reader = strings.NewReader("")
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		in = f
	}
	var b strings.Builder
	code := run(args, in, &b, &b)
	return code, b.String()
}

func TestFailingRun(t *testing.T) {
	code, out := summarize(t, nil, "testdata/mixed.jsonl")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, want := range []string{
		"--- FAIL: x TestFail",
		"x_test.go:5: some context", // the failing test's output
		"x_test.go:5: boom",
		"== 6 tests ran (subtests included): 3 passed, 1 failed, 2 skipped",
		"  x TestSkip: x_test.go:4: needs a server: inspircd is missing\n",
		"  x TestSub/a: x_test.go:6: sub reason\n",
		"failed tests:\n  x TestFail\n",
		"failed packages:\n  x\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "FAIL\n") {
		t.Errorf("output does not end with FAIL:\n%s", out)
	}
}

func TestPassingRunWithSkips(t *testing.T) {
	code, out := summarize(t, nil, "testdata/skips.jsonl")
	if code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"ok   x ",
		"== 5 tests ran (subtests included): 3 passed, 0 failed, 2 skipped; packages: 1 ok, 0 failed, 0 without tests",
		"skipped:\n  x TestSkip: x_test.go:4: needs a server: inspircd is missing\n  x TestSub/a: x_test.go:5: sub reason\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN") {
		t.Errorf("passing tests' output was printed:\n%s", out)
	}
}

// The command's exit status counts even when its events look clean.
func TestCommandStatusKept(t *testing.T) {
	code, out := summarize(t, []string{"sh", "-c", "cat testdata/skips.jsonl; exit 3"}, "")
	if code != 1 || !strings.Contains(out, "FAIL: sh: exit status 3") {
		t.Errorf("exit status %d, want 1 with the command's status named:\n%s", code, out)
	}
	code, _ = summarize(t, []string{"sh", "-c", "cat testdata/skips.jsonl"}, "")
	if code != 0 {
		t.Errorf("a clean command: exit status %d, want 0", code)
	}
}

func TestNothingRan(t *testing.T) {
	code, out := summarize(t, []string{"true"}, "")
	if code != 1 || !strings.Contains(out, "no test ran") {
		t.Errorf("exit status %d, want 1 and \"no test ran\":\n%s", code, out)
	}
}

// With -cases, every test and subtest is listed with its outcome.
func TestCases(t *testing.T) {
	code, out := summarize(t, []string{"-cases"}, "testdata/mixed.jsonl")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	_, rest, ok := strings.Cut(out, "== every case\n")
	if !ok {
		t.Fatalf("no case list:\n%s", out)
	}
	var got []string
	for _, l := range strings.Split(rest, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[2] == "x" {
			got = append(got, f[0]+" "+f[3])
		}
	}
	for _, want := range []string{"PASS TestPass", "SKIP TestSkip", "SKIP TestSub/a", "PASS TestSub/b", "FAIL TestFail"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("case list %q lacks %q", got, want)
		}
	}
	_, plain := summarize(t, nil, "testdata/mixed.jsonl")
	if strings.Contains(plain, "== every case") {
		t.Error("the case list is printed without -cases")
	}
}
