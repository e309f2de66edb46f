package scale

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	polls := pollSleeps(f)
	var out []string
	flag := func(n ast.Node) {
		if line := fset.Position(n.Pos()).Line; !fixed[line] && !polls[n] {
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
				if i, name := timeoutParam(fn.Type.Params); i >= 0 && !scalesParam(fn.Body, name) {
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

// pollSleeps is the set of time.Sleep calls that are statements of a for
// loop's body or its post statement: the interval of a poll, whose
// deadline is elsewhere, not a wait of their own.
func pollSleeps(f *ast.File) map[ast.Node]bool {
	polls := map[ast.Node]bool{}
	mark := func(s ast.Stmt) {
		if es, ok := s.(*ast.ExprStmt); ok {
			if call, ok := es.X.(*ast.CallExpr); ok && selectorName(call.Fun) == "time.Sleep" {
				polls[call] = true
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if loop, ok := n.(*ast.ForStmt); ok {
			for _, s := range loop.Body.List {
				mark(s)
			}
			if loop.Post != nil {
				mark(loop.Post)
			}
		}
		return true
	})
	return polls
}

// scalesParam reports whether body scales the parameter name itself
// (D(name) or scale.D(name)): its callers pass the unscaled duration.
func scalesParam(body *ast.BlockStmt, name string) bool {
	found := false
	if body == nil {
		return false
	}
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return !found
		}
		fn := selectorName(call.Fun)
		if id, ok := call.Fun.(*ast.Ident); ok {
			fn = id.Name
		}
		if arg, ok := call.Args[0].(*ast.Ident); ok && arg.Name == name && (fn == "scale.D" || fn == "D") {
			found = true
		}
		return !found
	})
	return found
}

// timeoutParam is the position and name of the timeout parameter in
// params, or -1.
func timeoutParam(params *ast.FieldList) (int, string) {
	i := 0
	for _, field := range params.List {
		isDuration := selectorName(field.Type) == "time.Duration"
		for _, name := range field.Names {
			if isDuration && (name.Name == "timeout" || name.Name == "within" || strings.HasSuffix(name.Name, "Timeout")) {
				return i, name.Name
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1, ""
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
