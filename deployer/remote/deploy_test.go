package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// copyHelper puts the test binary on h at /srv/deployment/remote.test.
func copyHelper(t *testing.T, h *fleet.Host) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Root, "remote.test"), b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// waitHTTP repeats an HTTP check until it passes or 30 s (scaled) have passed:
// the restarted service may take a moment to replace the old one.
func waitHTTP(c *Conn, chk config.Check) CheckResult {
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		r := c.CheckHTTP(context.Background(), chk)
		if r.OK || time.Now().After(deadline) {
			return r
		}
		time.Sleep(scale.D(20 * time.Millisecond))
	}
}

func restartsOf(t *testing.T, h *fleet.Host) []string {
	b, err := os.ReadFile(filepath.Join(h.Root, "restarts"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestDeploy: deploys to two hosts at once over one connection each, in
// ONE session per deploy; the layout, submodules, restart; port and HTTP
// checks through the connection (no session); failing checks say what
// they saw; command checks; noop and force; Finalize keeps keep_revs;
// Rollback restores the previous done revision and is safe to repeat.
func TestDeploy(t *testing.T) {
	f, d := startFleet(t, 2)
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 4)
	sha := g.SHAs
	tg := Target{
		Service:    "svc",
		Dir:        "/srv/deployment/svc/deploy",
		ServeURL:   g.ServeURL,
		Repo:       g.Repo,
		Submodules: []string{"lib"},
		Restart:    serviceRestart,
		KeepRevs:   2,
	}
	ctx := context.Background()
	conns := make([]*Conn, len(f.Hosts))
	for i, h := range f.Hosts {
		copyHelper(t, h)
		conns[i] = dialT(t, d, h)
	}
	// forEach runs fn on every host at once.
	forEach := func(fn func(i int, h *fleet.Host, c *Conn)) {
		var wg sync.WaitGroup
		for i, h := range f.Hosts {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i, h, conns[i]) }()
		}
		wg.Wait()
	}
	httpCheck := config.Check{Name: "info", HTTP: "http://127.0.0.1:18080/", ExpectStatus: 200, Timeout: config.Duration(5 * time.Second)}
	deploy := func(c *Conn, s string, force bool) []StageResult {
		t.Helper()
		start := time.Now()
		stages, err := c.Deploy(ctx, tg, s, force, scale.D(30*time.Second))
		if err != nil {
			t.Fatalf("%s: deploy %s: %v\n%+v", c.Host(), s[:8], err, stages)
		}
		var b strings.Builder
		for _, st := range stages {
			fmt.Fprintf(&b, " %s=%v", st.Stage, st.Duration)
		}
		t.Logf("%s: deploy %s force=%v in %v:%s", c.Host(), s[:8], force, time.Since(start).Round(time.Millisecond), b.String())
		return stages
	}

	forEach(func(i int, h *fleet.Host, c *Conn) {
		stages := deploy(c, sha[0], false)
		if len(stages) != 4 || stages[3].Stage != StageRestart || !strings.Contains(stages[3].Output, "restarted "+sha[0]) || stages[0].Command == "" {
			t.Errorf("%s: stages %+v", h.Name, stages)
		}
		if n := c.Sessions(); n != 1 {
			t.Errorf("%s: deploy used %d sessions, want 1", h.Name, n)
		}
		root := filepath.Join(h.Root, "svc", "deploy-cache")
		if b, _ := os.ReadFile(filepath.Join(root, "revs", sha[0], "version")); string(b) != "v1\n" {
			t.Errorf("%s: version %q", h.Name, b)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "revs", sha[0], "lib", "lib.txt")); string(b) != "lib v1\n" {
			t.Errorf("%s: submodule %q", h.Name, b)
		}
		if l, _ := os.Readlink(filepath.Join(root, "current")); l != "revs/"+sha[0] {
			t.Errorf("%s: current -> %q", h.Name, l)
		}
		if l, _ := os.Readlink(filepath.Join(h.Root, "svc", "deploy")); l != tg.Dir+"-cache/current" {
			t.Errorf("%s: target dir -> %q", h.Name, l)
		}
		if r := restartsOf(t, h); len(r) != 1 || r[0] != sha[0]+" "+tg.Dir+"-cache/revs/"+sha[0] {
			t.Errorf("%s: restarts %q", h.Name, r)
		}

		// Port and HTTP checks through the connection: no session. The
		// HTTP check to the port checked uses the port check's connection.
		pr := c.CheckPort(ctx, servicePort, scale.D(10*time.Second))
		if !pr.OK {
			t.Errorf("%s: port check: %+v", h.Name, pr)
		}
		chans := c.Channels()
		chk := httpCheck
		chk.ExpectBody = "^rev " + sha[0]
		hr := c.CheckHTTP(ctx, chk)
		if !hr.OK || hr.Status != 200 || hr.Body != "rev "+sha[0]+"\n" || hr.Latency <= 0 {
			t.Errorf("%s: http check: %+v", h.Name, hr)
		}
		if n := c.Channels() - chans; n != 0 {
			t.Errorf("%s: the http check after the port check opened %d channels, want 0", h.Name, n)
		}
		// Without a port check before it, a connection of its own.
		if hr := c.CheckHTTP(ctx, chk); !hr.OK || c.Channels()-chans != 1 {
			t.Errorf("%s: second http check: %+v, %d channels", h.Name, hr, c.Channels()-chans)
		}
		// A kept connection the service closed: a new one.
		if pr := c.CheckPort(ctx, servicePort, scale.D(10*time.Second)); !pr.OK {
			t.Errorf("%s: port check: %+v", h.Name, pr)
		}
		c.mu.Lock()
		c.spare.conn.Close()
		c.mu.Unlock()
		chans = c.Channels()
		if hr := c.CheckHTTP(ctx, chk); !hr.OK || c.Channels()-chans != 1 {
			t.Errorf("%s: http check on a closed kept connection: %+v, %d channels", h.Name, hr, c.Channels()-chans)
		}
		t.Logf("%s: port check %v (%s), http check %v", h.Name, pr.Latency.Round(time.Millisecond), pr.Output, hr.Latency.Round(time.Millisecond))
		if n := c.Sessions(); n != 1 {
			t.Errorf("%s: checks opened sessions: %d in all", h.Name, n)
		}
	})
	c, h := conns[0], f.Hosts[0]

	// Failing checks report what they saw.
	chk := httpCheck
	chk.HTTP = "http://127.0.0.1:18080/status/503"
	if r := c.CheckHTTP(ctx, chk); r.OK || r.Status != 503 || r.Body != "status 503\n" || !strings.Contains(r.Err, "status 503, want 200") {
		t.Errorf("wrong status: %+v", r)
	}
	chk = httpCheck
	chk.ExpectBody = "^rev deadbeef"
	if r := c.CheckHTTP(ctx, chk); r.OK || r.Status != 200 || !strings.Contains(r.Body, sha[0]) || !strings.Contains(r.Err, "does not match") {
		t.Errorf("wrong body: %+v", r)
	}
	chk = httpCheck
	chk.HTTP = "http://127.0.0.1:18080/slow"
	chk.Timeout = config.Duration(300 * time.Millisecond)
	if r := c.CheckHTTP(ctx, chk); r.OK || !r.TimedOut {
		t.Errorf("slow: %+v", r)
	}
	chk = httpCheck
	chk.HTTP = "http://127.0.0.1:18081/"
	if r := c.CheckHTTP(ctx, chk); r.OK || r.Err == "" {
		t.Errorf("closed port http: %+v", r)
	} else {
		t.Logf("http check on a closed port: %s", r.Err)
	}
	start := time.Now()
	if r := c.CheckPort(ctx, servicePort+1, scale.D(300*time.Millisecond)); r.OK || !r.TimedOut || !strings.Contains(r.Err, "refused") {
		t.Errorf("closed port: %+v", r)
	} else if el := time.Since(start); el > scale.D(2*time.Second) {
		t.Errorf("port check of 300ms took %v", el)
	} else {
		t.Logf("closed port: %s (%s)", r.Err, r.Output)
	}

	// Command checks run in the current revision.
	r := c.CheckCommand(ctx, tg, config.Check{Name: "smoke", Command: `echo out; echo err >&2; echo "$DEPLOY_REV $(cat version)"; pwd; exit 3`, Timeout: config.Duration(5 * time.Second)})
	want := "out\nerr\n" + sha[0] + " v1\n" + tg.Dir + "-cache/revs/" + sha[0] + "\n"
	if r.OK || r.ExitCode != 3 || r.Output != want || !strings.Contains(r.Err, "exit status 3") {
		t.Errorf("failing command check: %+v\nwant output %q", r, want)
	}
	if r := c.CheckCommand(ctx, tg, config.Check{Name: "ok", Command: `test "$(cat version)" = v1`}); !r.OK || r.ExitCode != 0 {
		t.Errorf("command check: %+v", r)
	}
	if r := c.CheckCommand(ctx, tg, config.Check{Name: "hang", Command: "sleep 30", Timeout: config.Duration(500 * time.Millisecond)}); r.OK || !r.TimedOut || r.Latency > scale.D(3*time.Second) {
		t.Errorf("hanging command check: %+v", r)
	}

	if cur, done, err := c.State(ctx, tg); err != nil || cur != sha[0] || done != "" {
		t.Errorf("state: %q %q %v", cur, done, err)
	}
	forEach(func(i int, h *fleet.Host, c *Conn) {
		if fr, err := c.Finalize(ctx, tg, sha[0]); err != nil {
			t.Errorf("%s: finalize: %v %+v", h.Name, err, fr)
		}
	})
	if st, err := c.Status(ctx, tg); err != nil || st != (TargetState{Current: sha[0], Done: sha[0]}) {
		t.Errorf("status after finalize: %+v %v", st, err)
	}

	// The live, done revision again: noop, no restart; forced: redeployed.
	n := len(restartsOf(t, h))
	if stages := deploy(c, sha[0], false); len(stages) != 1 || stages[0].Stage != StageNoop || len(restartsOf(t, h)) != n {
		t.Errorf("noop: %+v", stages)
	}
	if stages := deploy(c, sha[0], true); len(stages) != 4 || len(restartsOf(t, h)) != n+1 {
		t.Errorf("force: %+v", stages)
	}

	// Two more, finalized: keep_revs 2.
	for _, s := range sha[1:3] {
		deploy(c, s, false)
		if _, err := c.Finalize(ctx, tg, s); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(h.Root, "svc", "deploy-cache", "revs"))
	var revs []string
	for _, e := range ents {
		revs = append(revs, e.Name())
	}
	if strings.Join(revs, " ") != strings.Join(sortedPair(sha[1], sha[2]), " ") {
		t.Errorf("revs kept: %v, want %s and %s", revs, sha[1], sha[2])
	}

	// A fourth, not finalized, then rolled back: the third is served again.
	deploy(c, sha[3], false)
	chk = httpCheck
	chk.ExpectBody = "^rev " + sha[3]
	if r := waitHTTP(c, chk); !r.OK {
		t.Errorf("after deploy 4: %+v", r)
	}
	if st, err := c.Status(ctx, tg); err != nil || st != (TargetState{Current: sha[3], Done: sha[2], Deploying: sha[3]}) {
		t.Errorf("status mid-deploy: %+v %v", st, err)
	}
	rr, restored, err := c.Rollback(ctx, tg)
	if err != nil || restored != sha[2] || !strings.Contains(rr.Output, "restarted "+sha[2]) {
		t.Fatalf("rollback: %q %v %+v", restored, err, rr)
	}
	t.Logf("rollback in %v", rr.Duration.Round(time.Millisecond))
	if pr := c.CheckPort(ctx, servicePort, scale.D(10*time.Second)); !pr.OK {
		t.Errorf("port after rollback: %+v", pr)
	}
	chk.ExpectBody = "^rev " + sha[2]
	if r := waitHTTP(c, chk); !r.OK {
		t.Errorf("after rollback: %+v", r)
	}
	if cur, done, err := c.State(ctx, tg); err != nil || cur != sha[2] || done != sha[2] {
		t.Errorf("state after rollback: %q %q %v", cur, done, err)
	}
	n = len(restartsOf(t, h))
	if _, restored, err := c.Rollback(ctx, tg); err != nil || restored != sha[2] || len(restartsOf(t, h)) != n {
		t.Errorf("second rollback: %q %v", restored, err)
	}
	// A deploy that finalized the host before it was rolled back: with
	// Undo naming it, the done revision before it is restored and done
	// again; without, the finalized revision would stay.
	deploy(c, sha[3], false)
	if _, err := c.Finalize(ctx, tg, sha[3]); err != nil {
		t.Fatal(err)
	}
	undo := tg
	undo.Undo = sha[3]
	if rr, restored, err := c.Rollback(ctx, undo); err != nil || restored != sha[2] || !strings.Contains(rr.Output, "undid done "+sha[3]) {
		t.Fatalf("rollback undoing %s: %q %v %+v", sha[3][:8], restored, err, rr)
	}
	if st, err := c.Status(ctx, tg); err != nil || st != (TargetState{Current: sha[2], Done: sha[2]}) {
		t.Errorf("status after undo: %+v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.Root, "svc", "deploy-cache", ".history")); string(b) != sha[2]+"\n" {
		t.Errorf("history after undo: %q", b)
	}
	if _, restored, err := c.Rollback(ctx, undo); err != nil || restored != sha[2] {
		t.Errorf("undo repeated: %q %v", restored, err)
	}
	// The other host never went past the first revision; a host with
	// nothing done yet has nothing to roll back to.
	other := conns[1]
	fresh := tg
	fresh.Dir = "/srv/deployment/svc2/deploy"
	fresh.Restart = ""
	if _, err := other.Deploy(ctx, fresh, sha[0], false, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Rollback(ctx, fresh); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("rollback without a done rev: %v", err)
	}
	// A failing stage is a StageError naming it.
	bad := tg
	bad.Restart = "echo cannot start; exit 5"
	_, err = other.Deploy(ctx, bad, sha[1], false, 0)
	var se *StageError
	if !errors.As(err, &se) || se.Stage != StageRestart || se.ExitCode != 5 || !strings.Contains(se.Error(), "cannot start") {
		t.Errorf("failing restart: %v", err)
	}
}

// TestDeployTimeout: a restart that hangs is killed at the deploy's
// timeout, the stage says so; a restart that leaves a service running in
// the background does not hold the session open.
func TestDeployTimeout(t *testing.T) {
	f, d := startFleet(t, 1)
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 1)
	c := dialT(t, d, f.Hosts[0])
	ctx := context.Background()
	tg := Target{Dir: "/srv/deployment/x/deploy", ServeURL: g.ServeURL, Repo: g.Repo,
		Restart: "echo $$ >/srv/deployment/x.restart; echo starting; sleep 300"}
	start := time.Now()
	stages, err := c.Deploy(ctx, tg, g.SHAs[0], false, scale.D(2*time.Second))
	wantKind(t, err, KindCommandTimeout)
	if n := len(stages); n != 4 || !stages[3].TimedOut || stages[3].ExitCode != -1 || stages[2].ExitCode != 0 {
		t.Errorf("stages %+v", stages)
	}
	if el := time.Since(start); el > scale.D(5*time.Second) {
		t.Errorf("deploy with a 2s timeout returned after %v", el)
	}
	// The restart command ran in a process group of its own: killed too.
	b, _ := os.ReadFile(filepath.Join(f.Hosts[0].Root, "x.restart"))
	if rpg := atoi(string(b)); rpg < 2 || !waitGone(rpg, scale.D(15*time.Second)) {
		t.Errorf("the timed-out restart's process group %d is still alive", rpg)
	}
	tg.Restart = "sleep 300 & echo started in the background"
	start = time.Now()
	stages, err = c.Deploy(ctx, tg, g.SHAs[0], true, scale.D(10*time.Second))
	if err != nil || len(stages) != 4 || !strings.Contains(stages[3].Output, "started in the background") {
		t.Errorf("background service: %v %+v", err, stages)
	}
	t.Logf("deploy with a background service: %v", time.Since(start).Round(time.Millisecond))
}

// TestHelperProcess is not a test: it is the test binary's helper mode on
// a fleet host.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "http": // serve the revision (DEPLOY_REV) on arg until killed
		var l net.Listener
		var err error
		for i := 0; i < 100; i++ { // the old service may still hold the port
			if l, err = net.Listen("tcp", arg); err == nil {
				break
			}
			time.Sleep(scale.D(20 * time.Millisecond))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rev := os.Getenv("DEPLOY_REV")
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "rev %s\n", rev) })
		mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
			code, _ := strconv.Atoi(r.PathValue("code"))
			w.WriteHeader(code)
			fmt.Fprintf(w, "status %d\n", code)
		})
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(scale.D(5 * time.Second)) })
		_ = http.Serve(l, mux)
		os.Exit(0)
	}
	os.Exit(2)
}
