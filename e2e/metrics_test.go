package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// TestPrometheusMetrics: Debian's Prometheus server scrapes the bot's
// metrics.listen every second while an operator logs a line, deploys a
// good revision and a bad one whose canary fails and is rolled back on
// !rollback; the figures read back through Prometheus's HTTP API are the
// ones that session makes.
func TestPrometheusMetrics(t *testing.T) {
	promBin := prometheusBinary(t)
	canaryAndA := func(f *fleet.Fleet) string {
		return fmt.Sprintf("\n    canary: [%q]\n    groups:\n      - {name: a, hosts: [%q, %q], parallel: 2}\n", f.Hosts[0].IP, f.Hosts[1].IP, f.Hosts[2].IP)
	}
	e := newIRCEnv(t, 3, canaryAndA, ircd.Options{}, "  rate: {per_second: 5, burst: 10}\n", scale.D(60*time.Second))
	d := e.deployEnv
	metricsAddr := freeAddr(t)
	e.botConf += fmt.Sprintf("metrics:\n  listen: %s\n", metricsAddr)
	prom := startPrometheus(t, promBin, metricsAddr)

	alice := e.operator(t, "alice", "alice-pw-1")
	e.startBot(t, alice)
	nick := e.botNick
	long := scale.D(90 * time.Second)

	alice.Say("#ops", "!log metrics under test")
	expectBot(t, alice, nick, "Logged the message at http://", scale.D(10*time.Second))

	d.Commit("v2", 200)
	alice.Say("#ops", "!deploy svc")
	expectBot(t, alice, nick, "Finished deploy", long)

	v3 := d.Commit("v3-bad", 500)
	alice.Say("#ops", "!deploy svc "+v3[:10]+" try v3")
	expectBot(t, alice, nick, "svc: canary FAILED", long)
	expectBot(t, alice, nick, "!rollback svc / !continue svc", scale.D(10*time.Second))
	alice.Say("#ops", "!rollback svc")
	expectBot(t, alice, nick, "Rolled back svc to", long)

	want := map[string]float64{
		`deploybot_deploys_total{service="svc",outcome="success"}`:                                           1,
		`deploybot_deploys_total{service="svc",outcome="rolled_back"}`:                                       1,
		`sum(deploybot_deploys_total{service="svc"})`:                                                        2,
		`sum(deploybot_deploy_duration_seconds_count{service="svc"})`:                                        2,
		`deploybot_host_failures_total{service="svc",reason="check"}`:                                        1,
		`sum(deploybot_host_failures_total{service="svc"})`:                                                  1,
		`deploybot_prompts_total{service="svc",kind="canary_failed"}`:                                        1,
		`deploybot_prompt_answers_total{service="svc",kind="canary_failed",answer="rollback",by="operator"}`: 1,
		// Three hosts restarted on the good revision, the canary on the bad one.
		`deploybot_stage_duration_seconds_count{service="svc",stage="restart"}`: 4,
		`deploybot_stage_duration_seconds_count{service="svc",stage="fetch"}`:   4,
		`deploybot_sal_appends_total{source="irc",result="stored"}`:             1,
		`deploybot_sal_spool_depth`:                                             0,
		`deploybot_irc_connected`:                                               1,
		`deploybot_irc_reconnects_total`:                                        0,
		`deploybot_irc_output_queue_depth`:                                      0,
	}
	atLeast := map[string]float64{
		// Started and Finished, FAILED and Rolled back.
		`sum(deploybot_sal_appends_total{source="deploy"})`: 4,
		`deploybot_sal_spool_flushed_total`:                 4,
		// The !log answer and the deploys' lines.
		`deploybot_irc_lines_sent_total`: 8,
	}
	deadline := time.Now().Add(scale.D(60 * time.Second))
	for {
		bad := prom.mismatches(t, want, atLeast)
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus's figures after %v:\n%s", scale.D(60*time.Second), strings.Join(bad, "\n"))
		}
		time.Sleep(scale.D(500 * time.Millisecond))
	}
}

// prometheusBinary finds Debian's prometheus, or fails (CI) or skips.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed (scripts/install-deps.sh installs the Debian package prometheus)")
		}
		t.Skip("prometheus is not installed (scripts/install-deps.sh installs it) [skipped: CI is not set]")
	}
	return p
}

// promServer is a running Prometheus server.
type promServer struct{ url string }

// startPrometheus runs prometheus scraping target's /metrics every second,
// until the test ends.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: deploybot
    static_configs: [{targets: [%q]}]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	log := &harness.LockedBuffer{}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(scale.D(10 * time.Second)):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &promServer{url: "http://" + addr}
	for deadline := time.Now().Add(scale.D(30 * time.Second)); ; time.Sleep(scale.D(100 * time.Millisecond)) {
		if resp, err := http.Get(p.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after %v:\n%s", scale.D(30*time.Second), log.String())
		}
	}
}

// query returns the value of an instant query that yields one sample, and
// whether it did.
func (p *promServer) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s %s", q, err, r.Status, r.Error)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// mismatches lists the queries whose value is not want's (or below
// atLeast's).
func (p *promServer) mismatches(t *testing.T, want, atLeast map[string]float64) []string {
	t.Helper()
	var bad []string
	for q, w := range want {
		if v, ok := p.query(t, q); !ok || v != w {
			bad = append(bad, fmt.Sprintf("%s = %v (found: %v), want %v", q, v, ok, w))
		}
	}
	for q, w := range atLeast {
		if v, ok := p.query(t, q); !ok || v < w {
			bad = append(bad, fmt.Sprintf("%s = %v (found: %v), want at least %v", q, v, ok, w))
		}
	}
	return bad
}
