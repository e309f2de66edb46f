package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// flagLine is a flag in a FlagSet's usage: "  -rev sha1".
var flagLine = regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)

// docs/operators.md documents every subcommand and every flag of each, as
// the binary itself lists them ('deploybot <command> -h').
func TestOperatorsDocCoversEverySubcommand(t *testing.T) {
	data, err := os.ReadFile("../../docs/operators.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	var cmds [][]string
	for _, c := range subcommands {
		if c.name == "sal" {
			for _, sub := range []string{"list", "search", "add", "wikitext"} {
				cmds = append(cmds, []string{"sal", sub})
			}
			continue
		}
		cmds = append(cmds, []string{c.name})
	}
	for _, args := range cmds {
		name := strings.Join(args, " ")
		heading := "### `deploybot " + args[0]
		if !regexp.MustCompile(`(?m)^### .*` + regexp.QuoteMeta("`deploybot "+args[0]) + `[ ` + "`" + `]`).MatchString(doc) {
			t.Errorf("docs/operators.md has no section %q… for 'deploybot %s': add one (usage, output, failures)", heading, name)
		}
		_, _, help := runCLI(t, append(args, "-h")...)
		flags := flagLine.FindAllStringSubmatch(help, -1)
		if len(flags) == 0 && args[0] != "version" {
			t.Fatalf("'deploybot %s -h' lists no flags:\n%s", name, help)
		}
		for _, f := range flags {
			if !regexp.MustCompile(`-` + regexp.QuoteMeta(f[1]) + `\b`).MatchString(doc) {
				t.Errorf("docs/operators.md does not mention the flag -%s of 'deploybot %s'", f[1], name)
			}
		}
	}
}

// The systemd unit of examples/ runs subcommands that exist, with the
// configuration where production.md says it is.
func TestSystemdUnitRunsRealCommands(t *testing.T) {
	data, err := os.ReadFile("../../examples/deploybot.service")
	if err != nil {
		t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?m)^ExecStart(?:Pre)?=/usr/local/bin/deploybot (\S+)`).FindAllStringSubmatch(string(data), -1)
	if len(exec) != 2 {
		t.Fatalf("want ExecStartPre and ExecStart running /usr/local/bin/deploybot, found %q", exec)
	}
	for _, m := range exec {
		found := false
		for _, c := range subcommands {
			found = found || c.name == m[1]
		}
		if !found {
			t.Errorf("the unit runs 'deploybot %s', which is not a subcommand", m[1])
		}
	}
	if !strings.Contains(string(data), "DEPLOYBOT_CONFIG="+defaultConf) {
		t.Errorf("the unit does not set DEPLOYBOT_CONFIG=%s", defaultConf)
	}
}
