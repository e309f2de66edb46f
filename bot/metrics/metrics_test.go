package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"deploybot/deployer"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	return string(body)
}

func TestDeployEvents(t *testing.T) {
	m := New()
	canary := &deployer.Prompt{Kind: deployer.PromptCanaryFailed}
	for _, ev := range []deployer.Event{
		{Type: deployer.EventStage, Service: "web", Stage: "fetch", Duration: 300 * time.Millisecond},
		{Type: deployer.EventStage, Service: "web", Stage: "fetch", Duration: 100 * time.Millisecond},
		{Type: deployer.EventGroupFinished, Service: "web", Group: "canary", Duration: 2 * time.Second},
		{Type: deployer.EventFinished, Service: "web", Outcome: deployer.OutcomeSuccess, Duration: 3 * time.Second},
		{Type: deployer.EventHostFailed, Service: "web", Cause: deployer.CauseCheck},
		{Type: deployer.EventHostFailed, Service: "web"},
		{Type: deployer.EventPrompt, Service: "web", Prompt: canary},
		{Type: deployer.EventAnswer, Service: "web", Prompt: canary, Answer: deployer.Rollback, Who: "alice"},
		{Type: deployer.EventAnswer, Service: "web", Prompt: canary, Answer: deployer.Rollback, Who: deployer.AnsweredByTimeout},
		{Type: deployer.EventFinished, Service: "web", Outcome: deployer.OutcomeRolledBack, Duration: 5 * time.Second},
		{Type: deployer.EventFinished, Service: "api", Outcome: deployer.OutcomeSuccess, Duration: time.Second},
	} {
		m.Observe(ev)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`deploybot_deploys_total{outcome="success",service="web"} 1`,
		`deploybot_deploys_total{outcome="rolled_back",service="web"} 1`,
		`deploybot_deploys_total{outcome="success",service="api"} 1`,
		`deploybot_deploy_duration_seconds_count{outcome="success",service="web"} 1`,
		`deploybot_deploy_duration_seconds_sum{outcome="rolled_back",service="web"} 5`,
		`deploybot_stage_duration_seconds_count{service="web",stage="fetch"} 2`,
		`deploybot_stage_duration_seconds_sum{service="web",stage="fetch"} 0.4`,
		`deploybot_group_duration_seconds_count{group="canary",service="web"} 1`,
		`deploybot_host_failures_total{reason="check",service="web"} 1`,
		`deploybot_host_failures_total{reason="other",service="web"} 1`,
		`deploybot_prompts_total{kind="canary_failed",service="web"} 1`,
		`deploybot_prompt_answers_total{answer="rollback",by="operator",kind="canary_failed",service="web"} 1`,
		`deploybot_prompt_answers_total{answer="rollback",by="timeout",kind="canary_failed",service="web"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %s in:\n%s", want, grepDeploybot(out))
		}
	}
}

func TestBotFigures(t *testing.T) {
	m := New()
	connected, queued, depth, depthErr := true, 7, 3, error(nil)
	m.WatchIRC(func() bool { return connected }, func() int { return queued })
	m.WatchSpool(func() (int, error) { return depth, depthErr })
	m.SALAppend("irc", SALStored)
	m.SALAppend("irc", SALStored)
	m.SALAppend("deploy", SALSpooled)
	m.SpoolFlushed(2)
	m.SpoolFlushed(0)
	m.Reconnected()
	m.LineSent()
	m.LineSent()
	m.LineSent()
	out := scrape(t, m)
	for _, want := range []string{
		`deploybot_sal_appends_total{result="stored",source="irc"} 2`,
		`deploybot_sal_appends_total{result="spooled",source="deploy"} 1`,
		`deploybot_sal_spool_flushed_total 2`,
		`deploybot_sal_spool_depth 3`,
		`deploybot_irc_connected 1`,
		`deploybot_irc_output_queue_depth 7`,
		`deploybot_irc_reconnects_total 1`,
		`deploybot_irc_lines_sent_total 3`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %s in:\n%s", want, grepDeploybot(out))
		}
	}
	// Gauges are read at scrape time.
	connected, depthErr = false, errors.New("unreadable")
	out = scrape(t, m)
	for _, want := range []string{`deploybot_irc_connected 0`, `deploybot_sal_spool_depth -1`} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %s in:\n%s", want, grepDeploybot(out))
		}
	}
}

// A nil *Metrics (metrics off) takes every call.
func TestNil(t *testing.T) {
	var m *Metrics
	m.Observe(deployer.Event{Type: deployer.EventFinished})
	m.SALAppend("irc", SALStored)
	m.SpoolFlushed(1)
	m.Reconnected()
	m.LineSent()
	m.WatchIRC(func() bool { return true }, func() int { return 0 })
	m.WatchSpool(func() (int, error) { return 0, nil })
}

func grepDeploybot(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "deploybot_") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
