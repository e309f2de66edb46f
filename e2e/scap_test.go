package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Scap3 services (scap: true) deployed from IRC onto the fleet with the
// behaviour their scap/ directory describes, then imported with
// import-scap into an explicit service that check-config accepts, plans
// the same deploy and deploys the same way from the shell.

// TestScapSimple: one target list; the restart Scap3 runs (sudo -n
// /usr/sbin/service svc restart) and the port check of service_port.
func TestScapSimple(t *testing.T) {
	e := newScapEnv(t, "simple", 3)
	conf := e.scapConfig("")
	alice, _ := e.startIRC(conf)
	alice.Say("#ops", "!deploy svc")
	if start := expectBot(t, alice, "deploybot", "alice: deploying svc "+e.revs["v1"][:7]+" (first deploy", scapLong()); !strings.Contains(start, " on 2 hosts") {
		t.Fatalf("start line %q: want the deploy on 2 hosts", start)
	}
	expectBot(t, alice, "deploybot", "default 2/2 ok", scapLong())
	expectBot(t, alice, "deploybot", "alice: Finished deploy [svc@"+e.revs["v1"][:7]+"]", scapLong())
	e.wantLive("v1", 0, 1) // host03 is in no target list
	for _, l := range botLines(alice, "deploybot") {
		if strings.Contains(l, "not carried out") {
			t.Errorf("a setting reported as not carried out: %q", l)
		}
	}

	imported := e.importedConfig("")
	v2 := e.commit("v2", nil)
	if a, b := e.plan(conf, v2), e.plan(imported, v2); a != b {
		t.Errorf("the plans differ:\nscap: true:\n%s\nimported:\n%s", a, b)
	}
	if code, out, errOut := e.cli(imported, "", "deploy", "svc", "--rev", v2); code != 0 {
		t.Fatalf("deploy with the imported service: exit %d\n%s\n%s", code, out, errOut)
	}
	e.wantLive("v2", 0, 1)
}

// TestScapGroups: a canary and two server groups, each deployed one host
// at a time and each asking before it starts (as Scap3 asks); command
// checks after promote and after restart_service; the beta environment's
// target list and check replace the base ones.
func TestScapGroups(t *testing.T) {
	e := newScapEnv(t, "groups", 5)
	conf := e.scapConfig("beta")
	alice, _ := e.startIRC(conf)
	v1 := e.revs["v1"][:7]
	alice.Say("#ops", "!deploy svc")
	// beta's codfw is host05 alone: 4 hosts, host04 untouched.
	if start := expectBot(t, alice, "deploybot", "alice: deploying svc "+v1+" (first deploy", scapLong()); !strings.Contains(start, " on 4 hosts") {
		t.Fatalf("start line %q: want the deploy on 4 hosts", start)
	}
	canary := expectBot(t, alice, "deploybot", "svc: canary 1/1 ok", scapLong())
	for _, check := range []string{"version", "health"} {
		if !strings.Contains(canary, check) {
			t.Errorf("canary line %q lacks check %s", canary, check)
		}
	}
	expectBot(t, alice, "deploybot", "paused before eqiad", scapLong())
	alice.Say("#ops", "!continue svc")
	expectBot(t, alice, "deploybot", "eqiad 2/2 ok", scapLong())
	expectBot(t, alice, "deploybot", "paused before codfw", scapLong())
	alice.Say("#ops", "!continue svc")
	expectBot(t, alice, "deploybot", "alice: Finished deploy [svc@"+v1+"]", scapLong())
	e.wantLive("v1", 0, 1, 2, 4)

	// "bad" passes beta's version check (it looks for "broken"); a
	// broken revision fails it on the canary, and is rolled back.
	broken := e.commit("broken", nil)
	alice.Say("#ops", "!deploy svc")
	failed := expectBot(t, alice, "deploybot", "svc: canary FAILED", scapLong())
	if !strings.Contains(failed, "version") {
		t.Errorf("failure line %q does not name the version check", failed)
	}
	expectBot(t, alice, "deploybot", "!rollback svc / !continue svc", scapLong())
	alice.Say("#ops", "!rollback svc")
	expectBot(t, alice, "deploybot", "alice: Rolled back svc to "+v1+" (canary failed; 1 host restored", scapLong())
	e.wantLive("v1", 0, 1, 2, 4)
	if cur, _ := os.Readlink(filepath.Join(e.fleet.Hosts[0].Root, "svc", "deploy-cache", "current")); filepath.Base(cur) == broken {
		t.Error("host01 still runs the broken revision")
	}

	imported := e.importedConfig("beta")
	v3 := e.commit("bad", nil)
	if a, b := e.plan(conf, v3), e.plan(imported, v3); a != b {
		t.Errorf("the plans differ:\nscap: true:\n%s\nimported:\n%s", a, b)
	}
	code, out, errOut := e.cli(imported, "c\nc\n", "deploy", "svc", "--rev", v3)
	if code != 0 {
		t.Fatalf("deploy with the imported service: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(errOut, "[r]ollback or [c]ontinue?"); n != 2 {
		t.Errorf("the imported service asked %d times, want 2 (before eqiad and codfw):\n%s", n, errOut)
	}
	e.wantLive("bad", 0, 1, 2, 4)
}

// TestScapConfigFiles: config_deploy renders the templates into each new
// revision (an absolute path linked through the live revision, a relative
// one in the revision), a rollback restores the previous rendering, and
// the NRPE check is announced as not carried out.
func TestScapConfigFiles(t *testing.T) {
	e := newScapEnv(t, "configs", 2)
	conf := e.scapConfig("")
	alice, _ := e.startIRC(conf)
	alice.Say("#ops", "!deploy svc")
	note := expectBot(t, alice, "deploybot", "svc: not carried out from scap/", scapLong())
	if !strings.Contains(note, "checks.disk (scap/checks.yaml:2)") {
		t.Errorf("the nrpe check is not named: %q", note)
	}
	expectBot(t, alice, "deploybot", "alice: Finished deploy [svc@"+e.revs["v1"][:7]+"]", scapLong())
	e.wantLive("v1", 0, 1)
	const cfgPath = "/srv/deployment/etc/svc/config.yaml"
	hello := "greeting: hello\nworkers: 4\ndebug: false\nfeatures:\n  - SEARCH\n  - CACHE"
	wantConfig := func(want string) {
		t.Helper()
		for i := range e.fleet.Hosts {
			if got := e.hostExec(i, "cat "+cfgPath); got != want {
				t.Errorf("host %d: %s =\n%s\nwant\n%s", i, cfgPath, got, want)
			}
		}
	}
	wantConfig(hello)
	if got := e.hostExec(0, "readlink "+cfgPath); got != targetDir+"-cache/current/.git/config-files"+cfgPath {
		t.Errorf("%s links to %q", cfgPath, got)
	}
	if got := e.hostExec(1, "cat "+targetDir+"/conf/motd"); got != "Hello from 2 features" {
		t.Errorf("conf/motd = %q", got)
	}

	// A revision whose rendering the config check refuses: rolled back,
	// with the previous rendering.
	bye := e.commit("bye", func(dir string) {
		b, _ := os.ReadFile(filepath.Join(dir, "scap", "vars.yaml"))
		write(t, filepath.Join(dir, "scap", "vars.yaml"), strings.Replace(string(b), "hello", "bye", 1), 0o644)
	})
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, "deploybot", "alice: deploying svc "+e.revs["v1"][:7]+".."+bye[:7], scapLong())
	expectBot(t, alice, "deploybot", "svc: default FAILED on 2/2 — config failed", scapLong())
	expectBot(t, alice, "deploybot", "!rollback svc / !continue svc", scapLong())
	alice.Say("#ops", "!rollback svc")
	expectBot(t, alice, "deploybot", "alice: Rolled back svc to "+e.revs["v1"][:7]+" (group default failed: 2 of 2 hosts; 2 hosts restored", scapLong())
	wantConfig(hello)
	e.wantLive("v1", 0, 1)

	imported := e.importedConfig("")
	v3 := e.commit("v3", func(dir string) {
		b, _ := os.ReadFile(filepath.Join(dir, "scap", "vars.yaml"))
		write(t, filepath.Join(dir, "scap", "vars.yaml"), strings.Replace(string(b), "bye", "hello", 1), 0o644)
	})
	if a, b := e.plan(conf, v3), e.plan(imported, v3); a != b {
		t.Errorf("the plans differ:\nscap: true:\n%s\nimported:\n%s", a, b)
	}
	if code, out, errOut := e.cli(imported, "", "deploy", "svc", "--rev", v3); code != 0 {
		t.Fatalf("deploy with the imported service: exit %d\n%s\n%s", code, out, errOut)
	}
	e.wantLive("v3", 0, 1)
	wantConfig(hello)
}
