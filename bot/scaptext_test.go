package bot

import (
	"testing"

	"deploybot/deployer"
)

func TestUnsupportedText(t *testing.T) {
	ev := deployer.Event{Service: "svc", Notes: []string{
		"scap/checks.yaml:2: checks.disk: deploybot does not run NRPE checks",
		"scap/scap.cfg:6: git_fat: deploybot does not fetch git-fat objects",
	}}
	want := "svc: not carried out from scap/ (2): checks.disk (scap/checks.yaml:2), git_fat (scap/scap.cfg:6) — reasons in the deploy log and check-config"
	if got := unsupportedText(ev); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
