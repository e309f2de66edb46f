package scale

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// helperDirs are the packages, beside the _test.go files, whose code runs
// only in tests and so waits only through D.
var helperDirs = []string{
	"e2e/fleet", "e2e/harness", "e2e/ircd", "e2e/pgsql", "e2e/simfleet", "deployer/fakefleet", "sal/saltest",
}

// timeoutCalls are the calls whose duration argument (by position) is a
// wait or a deadline.
var timeoutCalls = map[string]int{
	"time.After":          0,
	"time.Sleep":          0,
	"time.NewTimer":       0,
	"time.AfterFunc":      0,
	"context.WithTimeout": 1,
	"net.DialTimeout":     2,
}

// Fixed marks a line whose constant duration is data or a point inside a
// window the test sets up, not a wait: a comment holding it exempts the
// line from TestNoBareTimeouts. Give the reason beside it.
const Fixed = "scale:fixed"

// TestNoBareTimeouts fails when test code waits for a constant duration —
// time.After(5*time.Second), context.WithTimeout(ctx, time.Second),
// time.Sleep(100*time.Millisecond), a deadline time.Now().Add(2*time.Second)
// — instead of D(…): a wait tuned to an idle machine fails on a busy one.
// Besides the calls of timeoutCalls and deadlines, it checks the timeout
// argument of every function of the module with a time.Duration
// parameter named timeout, within or …Timeout (Expect(10*time.Second, …))
// and fields named …Timeout (ClientOptions{Timeout: time.Second}). It
// looks at every _test.go file and at the helper packages.
//
// A duration held in a variable or constant passes (its origin is not
// followed: give it as D(…) where it is defined), and so do 0 (no
// timeout) and a negative one (a point in the past is data, not a wait).
// A line whose duration is data, or a point inside a window the test
// sets up, carries a "scale:fixed" comment saying why.
func TestNoBareTimeouts(t *testing.T) {
	root := moduleRoot(t)
	waits := timeoutParams(t, root)
	var found []string
	for _, file := range testCodeFiles(t, root) {
		found = append(found, bareTimeouts(t, root, file, waits)...)
	}
	sort.Strings(found)
	for _, f := range found {
		t.Error(f)
	}
	if len(found) > 0 {
		t.Logf("%d waits of a constant duration: write scale.D(d) instead of d", len(found))
	}
}

// TestBareTimeoutsDetected proves the check finds each form it looks for,
// and passes the forms it must pass.
func TestBareTimeoutsDetected(t *testing.T) {
	src := `package p
func f(ctx context.Context, c net.Conn, d time.Duration) {
	<-time.After(5 * time.Second)              // bad
	time.Sleep(100 * time.Millisecond)         // bad
	context.WithTimeout(ctx, time.Minute)      // bad
	c.SetDeadline(time.Now().Add(time.Second)) // bad
	deadline := time.Now().Add(2 * time.Second) // bad
	time.NewTimer(3 * time.Second)             // bad
	c.Expect(10*time.Second, nil)              // bad
	_ = http.Client{Timeout: time.Second}      // bad
	cfg.Timeout = 500 * time.Millisecond       // bad
	cfg.Timeout = scale.D(500 * time.Millisecond)
	c.Expect(scale.D(10*time.Second), nil)
	_ = http.Client{Timeout: scale.D(time.Second)}
	<-time.After(scale.D(5 * time.Second))
	time.Sleep(d)
	context.WithTimeout(ctx, 2*d)
	_ = time.Now().Add(-time.Hour)
	_ = time.Now().Add(scale.D(time.Second))
	c.Expect(0, nil)
	time.Sleep(time.Second) // scale:fixed: inside a window of 2 s
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if d > 0 {
			time.Sleep(time.Second) // bad
		}
	}
	for ; ; time.Sleep(20 * time.Millisecond) {
	}
}`
	dir := t.TempDir()
	path := filepath.Join(dir, "p_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := bareTimeouts(t, dir, path, map[string]int{"Expect": 0})
	if want := strings.Count(src, "// bad"); len(got) != want {
		t.Fatalf("found %d bare timeouts, want %d:\n%s", len(got), want, strings.Join(got, "\n"))
	}
	for _, g := range got {
		line := strings.Split(src, "\n")[lineOf(t, g)-1]
		if !strings.Contains(line, "// bad") {
			t.Errorf("flagged a good line: %s", g)
		}
	}
}

// TestSelfScalingHelpersTakeUnscaled: a helper that scales its own
// timeout parameter is called with the unscaled duration, so its calls
// are not checked; one that does not, is.
func TestSelfScalingHelpersTakeUnscaled(t *testing.T) {
	src := `package p
func expect(s string, timeout time.Duration) { c.Expect(scale.D(timeout), nil) }
func Expect(timeout time.Duration, m func()) {}
func wait(x int, within time.Duration) { time.Sleep(D(within)) }
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := timeoutParams(t, dir)
	if len(got) != 1 || got["Expect"] != 0 {
		t.Fatalf("checked helpers %v, want only Expect's argument 0", got)
	}
}

func lineOf(t *testing.T, finding string) int {
	var file string
	var line int
	if _, err := fmt.Sscanf(strings.Replace(finding, ":", " ", 2), "%s %d", &file, &line); err != nil {
		t.Fatalf("finding %q: %v", finding, err)
	}
	return line
}

// moduleRoot is the directory holding go.mod, above this package.
func moduleRoot(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
}

// testCodeFiles lists every _test.go file of the module and every Go file
// of the helper packages.
func testCodeFiles(t *testing.T, root string) []string {
	helper := map[string]bool{}
	for _, d := range helperDirs {
		helper[filepath.Join(root, d)] = true
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != root && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, "_test.go") || (strings.HasSuffix(p, ".go") && helper[filepath.Dir(p)]) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files found under " + root)
	}
	return files
}
