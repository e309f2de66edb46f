package scale

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
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
	"e2e/fleet", "e2e/ircd", "e2e/pgsql", "deployer/fakefleet", "sal/saltest",
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

// bareTimeouts lists, as "file:line: text", the waits of a constant
// duration in one file: arguments of the calls in timeoutCalls and of the
// functions in waits, deadlines time.Now().Add(d), and fields named
// …Timeout in composite literals and assignments.
func bareTimeouts(t *testing.T, root, path string, waits map[string]int) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	fixed := map[int]bool{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if strings.Contains(c.Text, Fixed) {
				fixed[fset.Position(c.Pos()).Line] = true
			}
		}
	}
	rel, _ := filepath.Rel(root, path)
	var out []string
	flag := func(n ast.Node) {
		if line := fset.Position(n.Pos()).Line; !fixed[line] {
			out = append(out, fmt.Sprintf("%s:%d: %s", rel, line, exprString(fset, n)))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if arg := waitArg(n, waits); arg != nil && constantDuration(arg) {
				flag(n)
			}
		case *ast.KeyValueExpr:
			if key, ok := n.Key.(*ast.Ident); ok && strings.HasSuffix(key.Name, "Timeout") && constantDuration(n.Value) {
				flag(n)
			}
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if sel, ok := lhs.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Timeout") && i < len(n.Rhs) && constantDuration(n.Rhs[i]) {
					flag(n)
				}
			}
		}
		return true
	})
	return out
}

// timeoutParams maps the name of each function or method of the module
// that takes a time.Duration parameter named timeout, within or …Timeout
// to that parameter's position.
func timeoutParams(t *testing.T, root string) map[string]int {
	waits := map[string]int{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.Contains(p, "/testdata/") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok {
				if i := timeoutParam(fn.Type.Params); i >= 0 {
					waits[fn.Name.Name] = i
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return waits
}

// timeoutParam is the position of the timeout parameter in params, or -1.
func timeoutParam(params *ast.FieldList) int {
	i := 0
	for _, field := range params.List {
		isDuration := selectorName(field.Type) == "time.Duration"
		for _, name := range field.Names {
			if isDuration && (name.Name == "timeout" || name.Name == "within" || strings.HasSuffix(name.Name, "Timeout")) {
				return i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1
}

// waitArg is the duration argument of a call that waits or sets a
// deadline, or nil.
func waitArg(call *ast.CallExpr, waits map[string]int) ast.Expr {
	name := selectorName(call.Fun)
	if i, ok := timeoutCalls[name]; ok && i < len(call.Args) {
		return call.Args[i]
	}
	var short string
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		short = fn.Name
	case *ast.SelectorExpr:
		short = fn.Sel.Name
		// time.Now().Add(d): a deadline.
		if inner, ok := fn.X.(*ast.CallExpr); ok && short == "Add" && selectorName(inner.Fun) == "time.Now" && len(call.Args) == 1 {
			return call.Args[0]
		}
	}
	if i, ok := waits[short]; ok && i < len(call.Args) && !strings.HasPrefix(name, "time.") {
		return call.Args[i]
	}
	return nil
}

// constantDuration reports whether e is built only of literals and time
// units (5*time.Second, time.Minute, 1e9): a duration fixed in the source.
// A negative duration is not a wait.
func constantDuration(e ast.Expr) bool {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Value == "0" {
		return false // no timeout at all
	}
	return constantExpr(e)
}

func constantExpr(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.INT || e.Kind == token.FLOAT
	case *ast.ParenExpr:
		return constantExpr(e.X)
	case *ast.BinaryExpr:
		return constantExpr(e.X) && constantExpr(e.Y)
	case *ast.SelectorExpr:
		return strings.HasPrefix(selectorName(e), "time.")
	}
	return false
}

func selectorName(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return pkg.Name + "." + sel.Sel.Name
}

func exprString(fset *token.FileSet, e ast.Node) string {
	var b strings.Builder
	start, end := fset.Position(e.Pos()).Offset, fset.Position(e.End()).Offset
	src, err := os.ReadFile(fset.Position(e.Pos()).Filename)
	if err != nil || end > len(src) {
		return "?"
	}
	b.Write(src[start:end])
	return b.String()
}
