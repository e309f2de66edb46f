// Command testsummary runs `go test -json` (the command given as its
// arguments) or reads its events from stdin, and prints what a person needs
// from a long run: one line per package as it finishes, the whole output of
// every failing test and failing package (build errors, panics, timeouts)
// as it happens, and at the end how many tests ran, passed, failed and were
// skipped, with each skip's reason. `make test` and `make test-short` use it:
//
//	testsummary go test -json -count=1 ./...
//	go test -json ./... | testsummary
//
// With -cases first, it also lists every test and subtest at the end with
// its outcome and duration (`make faults` uses it).
//
// Its exit status is 1 when any test or package failed, when the command
// failed (whatever the events said), or when no test ran at all; 0
// otherwise. It is a build tool: nothing in deploybot imports it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run summarizes the events of the command args (or of stdin when args is
// empty) on out and returns the exit status.
func run(args []string, stdin io.Reader, out, errOut io.Writer) int {
	cases := len(args) > 0 && args[0] == "-cases"
	if cases {
		args = args[1:]
	}
	newSummary := func(out io.Writer) *summary {
		s := newSummary(out)
		s.listCases = cases
		return s
	}
	if len(args) == 0 {
		s := newSummary(out)
		err := s.read(stdin)
		return s.finish(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = stdin
	cmd.Stderr = errOut
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(errOut, "testsummary:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(errOut, "testsummary:", err)
		return 1
	}
	s := newSummary(out)
	readErr := s.read(pipe)
	waitErr := cmd.Wait()
	code := s.finish(readErr)
	if waitErr != nil {
		var exit *exec.ExitError
		if !errors.As(waitErr, &exit) {
			fmt.Fprintln(errOut, "testsummary:", waitErr)
		}
		if code == 0 {
			fmt.Fprintf(out, "FAIL: %s: %v\n", args[0], waitErr)
			code = 1
		}
	}
	return code
}
