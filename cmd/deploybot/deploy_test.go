package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestDeployCommandsRefuseBadInput: bad usage is exit 2, a bad revision is
// refused (exit 1) before the configuration is even read.
func TestDeployCommandsRefuseBadInput(t *testing.T) {
	missing := "/nonexistent/deploybot.yaml"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"deploy", "-c", missing}, exitFailed, missing},
		{[]string{"deploy", "a", "b"}, exitUsage, "Usage: deploybot deploy"},
		{[]string{"deploy", "svc", "--rev", "zzzzzzz", "-c", missing}, exitFailed, "not hex"},
		{[]string{"deploy", "svc", "--rev", "abc", "-c", missing}, exitFailed, "too short"},
		{[]string{"deploy", "--rev", strings.Repeat("a", 41), "svc", "-c", missing}, exitFailed, "too long"},
		{[]string{"deploy", "svc", "-m", "two\nlines", "-c", missing}, exitUsage, "one line"},
		{[]string{"deploy", "svc", "-c", missing}, exitFailed, missing},
		{[]string{"deploy", "-h"}, exitOK, "--dry-run"},
		{[]string{"lock", "svc", "-c", missing}, exitUsage, "-m reason is required"},
		{[]string{"unlock", "a", "b"}, exitUsage, "Usage: deploybot unlock"},
		{[]string{"deploy-log", "--level", "loud", "-c", missing}, exitUsage, "level"},
		{[]string{"deploy-log", "a", "b"}, exitUsage, "Usage: deploybot deploy-log"},
		{[]string{"recover", "--rollback"}, exitUsage, "Usage: deploybot recover"},
		{[]string{"recover", "x", "--rollback", "--mark-ended"}, exitUsage, "Usage: deploybot recover"},
		{[]string{"recover", "-h"}, exitOK, "--mark-ended"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", c.args, code, c.code, c.want, out, errOut)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rev := fs.String("rev", "", "")
	force := fs.Bool("force", false, "")
	pos, code := parseInterspersed(fs, []string{"svc", "--rev", "abc1234", "--force", "--", "-x"})
	if code != -1 || *rev != "abc1234" || !*force || !reflect.DeepEqual(pos, []string{"svc", "-x"}) {
		t.Errorf("pos %q code %d rev %q force %v", pos, code, *rev, *force)
	}
	if _, code := parseInterspersed(fs, []string{"svc", "--nope"}); code != exitUsage {
		t.Errorf("unknown flag: code %d", code)
	}
}

func TestCommandTable(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	for _, name := range []string{"deploy ", "deploy-log", "lock ", "unlock", "recover"} {
		if code != 0 || !strings.Contains(out, "  "+name) {
			t.Errorf("usage lacks %q:\n%s", name, out)
		}
	}
}
