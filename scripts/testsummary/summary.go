package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	Elapsed    float64
	ImportPath string // build-output and build-fail
}

// skip is a skipped test and why.
type skip struct{ pkg, test, reason string }

// summary accumulates a run's events.
type summary struct {
	out io.Writer

	output  map[string][]string // test or package key → its output lines
	pkgOut  map[string][]string // package → package-level output
	build   map[string][]string // import path → build output
	passed  int
	failed  []string // "pkg Test"
	skipped []skip

	pkgOK, pkgNoTests int
	pkgFailed         []string
	stray             int // lines that were not JSON events

	// cases, when listCases is set, is every test's outcome in the order
	// they ended, printed at the end (make faults).
	listCases bool
	cases     []outcome
}

// outcome is how one test (or subtest) ended.
type outcome struct {
	action, pkg, test string
	elapsed           float64
}

func newSummary(out io.Writer) *summary {
	return &summary{
		out:    out,
		output: map[string][]string{},
		pkgOut: map[string][]string{},
		build:  map[string][]string{},
	}
}

func key(pkg, test string) string { return pkg + " " + test }

// read consumes events until EOF.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			s.stray++
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.add(e)
	}
	return sc.Err()
}

func (s *summary) add(e event) {
	switch e.Action {
	case "build-output":
		s.build[e.ImportPath] = append(s.build[e.ImportPath], e.Output)
	case "build-fail":
		fmt.Fprintf(s.out, "BUILD FAILED %s\n%s", e.ImportPath, strings.Join(s.build[e.ImportPath], ""))
	case "output":
		if e.Test == "" {
			s.pkgOut[e.Package] = append(s.pkgOut[e.Package], e.Output)
		} else {
			k := key(e.Package, e.Test)
			s.output[k] = append(s.output[k], e.Output)
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.packageDone(e)
		} else {
			s.testDone(e)
		}
	}
}

func (s *summary) testDone(e event) {
	k := key(e.Package, e.Test)
	if s.listCases {
		s.cases = append(s.cases, outcome{e.Action, e.Package, e.Test, e.Elapsed})
	}
	switch e.Action {
	case "pass":
		s.passed++
	case "fail":
		s.failed = append(s.failed, k)
		fmt.Fprintf(s.out, "--- FAIL: %s %s (%.2fs)\n%s", e.Package, e.Test, e.Elapsed, strings.Join(s.output[k], ""))
	case "skip":
		s.skipped = append(s.skipped, skip{e.Package, e.Test, reason(s.output[k])})
	}
	delete(s.output, k)
}

func (s *summary) packageDone(e event) {
	switch e.Action {
	case "pass":
		s.pkgOK++
		fmt.Fprintf(s.out, "ok   %s %.1fs\n", e.Package, e.Elapsed)
	case "skip":
		s.pkgNoTests++
	case "fail":
		s.pkgFailed = append(s.pkgFailed, e.Package)
		fmt.Fprintf(s.out, "FAIL %s %.1fs\n%s", e.Package, e.Elapsed, strings.Join(s.pkgOut[e.Package], ""))
	}
	delete(s.pkgOut, e.Package)
}

// reason is what a skipped test printed, without the framing lines
// (=== RUN, --- SKIP) that go test adds.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

// finish prints the totals and the skips and returns the exit status.
func (s *summary) finish(readErr error) int {
	if len(s.cases) > 0 {
		fmt.Fprintf(s.out, "\n== every case\n")
		for _, c := range s.cases {
			fmt.Fprintf(s.out, "%-4s %7.1fs  %s %s\n", strings.ToUpper(c.action), c.elapsed, c.pkg, c.test)
		}
	}
	ran := s.passed + len(s.failed) + len(s.skipped)
	fmt.Fprintf(s.out, "\n== %d tests ran (subtests included): %d passed, %d failed, %d skipped; packages: %d ok, %d failed, %d without tests\n",
		ran, s.passed, len(s.failed), len(s.skipped), s.pkgOK, len(s.pkgFailed), s.pkgNoTests)
	if len(s.skipped) > 0 {
		sort.Slice(s.skipped, func(i, j int) bool {
			a, b := s.skipped[i], s.skipped[j]
			return a.pkg < b.pkg || a.pkg == b.pkg && a.test < b.test
		})
		fmt.Fprintf(s.out, "skipped:\n")
		for _, k := range s.skipped {
			fmt.Fprintf(s.out, "  %s %s: %s\n", k.pkg, k.test, k.reason)
		}
	}
	code := 0
	if len(s.failed) > 0 {
		fmt.Fprintf(s.out, "failed tests:\n  %s\n", strings.Join(s.failed, "\n  "))
		code = 1
	}
	if len(s.pkgFailed) > 0 {
		fmt.Fprintf(s.out, "failed packages:\n  %s\n", strings.Join(s.pkgFailed, "\n  "))
		code = 1
	}
	if readErr != nil {
		fmt.Fprintf(s.out, "reading the events: %v\n", readErr)
		code = 1
	}
	if ran == 0 {
		fmt.Fprintf(s.out, "no test ran\n")
		code = 1
	}
	if code == 0 {
		fmt.Fprintf(s.out, "PASS\n")
	} else {
		fmt.Fprintf(s.out, "FAIL\n")
	}
	return code
}
