package bot

import (
	"os"
	"regexp"
	"testing"
)

// docs/operators.md has a section for every command of the table, headed
// with its usage as !help prints it.
func TestOperatorsDocCoversEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../docs/operators.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range commands {
		usage := "`" + c.usage("!") + "`"
		if !regexp.MustCompile(`(?m)^### .*` + regexp.QuoteMeta(usage)).Match(data) {
			t.Errorf("docs/operators.md has no section headed with %s (the usage of !%s): add one with the lines it produces and its failures", usage, name)
		}
	}
}
