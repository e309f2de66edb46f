package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// securityDoc is the threat model, from this package's directory.
const securityDoc = "../../docs/SECURITY.md"

var (
	// docTestRef is a test named in the threat model: `package/path.TestName`.
	docTestRef = regexp.MustCompile("`((?:[a-z0-9_]+/)*[a-z0-9_]+)\\.((?:Test|Fuzz)[A-Za-z0-9_]*)`")
	// threatRow is a row of the threats table: "| <number> | …".
	threatRow = regexp.MustCompile(`^\|\s*\d+\s*\|`)
)

// TestSecurityDocTestsExist: every row of docs/SECURITY.md's threats table
// names at least one test in its last column, and every test the document
// names is a func TestX( or FuzzX( in the _test.go files of the package it
// names.
func TestSecurityDocTestsExist(t *testing.T) {
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for i, line := range strings.Split(string(doc), "\n") {
		if !threatRow.MatchString(line) {
			continue
		}
		rows++
		cells := strings.Split(strings.TrimSuffix(strings.TrimSpace(line), "|"), "|")
		if last := cells[len(cells)-1]; !docTestRef.MatchString(last) {
			t.Errorf("%s:%d: the row names no test: %q", securityDoc, i+1, last)
		}
	}
	if rows < 20 {
		t.Fatalf("%s: %d threat rows found; the table's form changed?", securityDoc, rows)
	}
	refs := docTestRef.FindAllStringSubmatch(string(doc), -1)
	sources := map[string]string{} // package dir → its tests' source
	for _, ref := range refs {
		pkg, name := ref[1], ref[2]
		src, ok := sources[pkg]
		if !ok {
			src = testSources(t, filepath.Join("..", "..", filepath.FromSlash(pkg)))
			sources[pkg] = src
		}
		if !strings.Contains(src, "\nfunc "+name+"(") {
			t.Errorf("%s names %s.%s, which is not a test of package %s", securityDoc, pkg, name, pkg)
		}
	}
	t.Logf("%d threats, %d tests named in %d packages", rows, len(refs), len(sources))
}

// testSources is the text of every _test.go file in dir, "" when there is
// none.
func testSources(t *testing.T, dir string) string {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
		b.Write(src)
	}
	return b.String()
}
