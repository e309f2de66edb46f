// Command summary reads `go test -json` on stdin, passes the tests'
// output through, and ends with one line per test and subtest: its
// outcome (pass, fail, skip) and duration, then the totals. It exits 1
// when a test failed, the run reported a build or package failure, or no
// test ran at all, so a pipeline cannot hide a failure behind it.
//
//	go test -json ./e2e/faults/ | go run ./e2e/faults/cmd/summary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// event is one line of `go test -json` (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type result struct {
	name    string
	outcome string
	elapsed float64
}

func main() {
	var results []*result
	byName := map[string]*result{}
	pkgFailed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fmt.Println(sc.Text()) // build errors come as plain text
			pkgFailed = true
			continue
		}
		switch {
		case ev.Action == "output":
			fmt.Print(ev.Output)
		case ev.Test == "" && ev.Action == "fail":
			pkgFailed = true
		case ev.Test != "" && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip"):
			r := byName[ev.Test]
			if r == nil {
				r = &result{name: ev.Test}
				byName[ev.Test] = r
				results = append(results, r)
			}
			r.outcome, r.elapsed = ev.Action, ev.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
	os.Exit(report(results, pkgFailed))
}

// report prints the table and returns the exit status.
func report(results []*result, pkgFailed bool) int {
	counts := map[string]int{}
	fmt.Println("\n=== fault suite summary")
	for _, r := range results {
		indent := strings.Repeat("  ", strings.Count(r.name, "/"))
		fmt.Printf("%-4s %7.1fs  %s%s\n", strings.ToUpper(r.outcome), r.elapsed, indent, r.name)
		counts[r.outcome]++
	}
	fmt.Printf("=== %d passed, %d failed, %d skipped\n", counts["pass"], counts["fail"], counts["skip"])
	switch {
	case counts["fail"] > 0 || pkgFailed:
		fmt.Println("=== FAIL")
		return 1
	case len(results) == 0:
		fmt.Println("=== FAIL: no test ran")
		return 1
	}
	fmt.Println("=== ok")
	return 0
}
