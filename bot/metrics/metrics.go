// Package metrics holds deploybot's Prometheus collectors and the handler
// that serves them (/metrics, text format): what deploys did, how the
// Server Admin Log and the IRC connection are doing.
//
// Deploy figures come from the engine's events: *Metrics is a
// deployer.Observer (see deployer.Engine.SetObserver), so the engine knows
// nothing of Prometheus. The bot reports SAL appends, reconnects and lines
// sent through the methods below, and registers functions that read the
// spool depth, the connection state and the output queue at scrape time.
// Every method is safe on a nil *Metrics (metrics off), and for concurrent
// use.
//
// What does not live here: where /metrics is served (cmd/deploybot wires
// the handler to metrics.listen or sal.listen).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"deploybot/deployer"
)

// Namespace starts every metric name.
const Namespace = "deploybot"

// Results of a SAL append (SALAppend).
const (
	SALStored  = "stored"  // the store took it
	SALSpooled = "spooled" // queued in the spool, written later
	SALRefused = "refused" // invalid (empty, too long): never stored
	SALLost    = "lost"    // the store and the spool both failed
)

// Metrics is one set of collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	deploys        *prometheus.CounterVec
	deployDuration *prometheus.HistogramVec
	groupDuration  *prometheus.HistogramVec
	stageDuration  *prometheus.HistogramVec
	hostFailures   *prometheus.CounterVec
	prompts        *prometheus.CounterVec
	answers        *prometheus.CounterVec

	salAppends  *prometheus.CounterVec
	spoolFlushd prometheus.Counter

	reconnects prometheus.Counter
	linesSent  prometheus.Counter
}

// New returns a set of collectors, with the Go runtime's and the
// process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	m.deploys = counter("deploys_total", "Deploys that ended, by service and outcome (success, noop, rolled_back, failed, aborted, ended, interrupted).", "service", "outcome")
	m.deployDuration = histogram("deploy_duration_seconds", "How long deploys took, from the first host touched to the end.",
		prometheus.ExponentialBuckets(1, 2, 13), "service", "outcome")
	m.groupDuration = histogram("group_duration_seconds", "How long each group of a deploy took (the canary is a group).",
		prometheus.ExponentialBuckets(0.5, 2, 13), "service", "group")
	m.stageDuration = histogram("stage_duration_seconds", "How long each stage of a host's deploy took (fetch, checkout, promote, restart, noop).",
		prometheus.ExponentialBuckets(0.01, 2, 16), "service", "stage")
	m.hostFailures = counter("host_failures_total", "Hosts that failed in a deploy, by reason: the stage that failed, the connection failure, check, or stale.", "service", "reason")
	m.prompts = counter("prompts_total", "Questions asked of the operators, by kind (canary_failed, group_failed, pause, aborted).", "service", "kind")
	m.answers = counter("prompt_answers_total", "Answers to those questions: the answer, and by whom (operator, or timeout, default, canceled, missed when nobody answered).", "service", "kind", "answer", "by")
	m.salAppends = counter("sal_appends_total", "SAL entries handed to the store, by source (irc, relay, cli, deploy) and result (stored, spooled, refused, lost).", "source", "result")
	m.spoolFlushd = counter("sal_spool_flushed_total", "SAL entries written to the store from the spool.").WithLabelValues()
	m.reconnects = counter("irc_reconnects_total", "Registrations with the IRC server after the first one.").WithLabelValues()
	m.linesSent = counter("irc_lines_sent_total", "Lines (PRIVMSG) the bot sent.").WithLabelValues()
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe implements deployer.Observer: it counts and times what deploys
// report.
func (m *Metrics) Observe(ev deployer.Event) {
	if m == nil {
		return
	}
	switch ev.Type {
	case deployer.EventFinished:
		m.deploys.WithLabelValues(ev.Service, string(ev.Outcome)).Inc()
		m.deployDuration.WithLabelValues(ev.Service, string(ev.Outcome)).Observe(ev.Duration.Seconds())
	case deployer.EventGroupFinished:
		m.groupDuration.WithLabelValues(ev.Service, ev.Group).Observe(ev.Duration.Seconds())
	case deployer.EventStage:
		m.stageDuration.WithLabelValues(ev.Service, ev.Stage).Observe(ev.Duration.Seconds())
	case deployer.EventHostFailed:
		reason := ev.Cause
		if reason == "" {
			reason = deployer.CauseOther
		}
		m.hostFailures.WithLabelValues(ev.Service, reason).Inc()
	case deployer.EventPrompt:
		if ev.Prompt != nil {
			m.prompts.WithLabelValues(ev.Service, ev.Prompt.Kind).Inc()
		}
	case deployer.EventAnswer:
		kind := ""
		if ev.Prompt != nil {
			kind = ev.Prompt.Kind
		}
		m.answers.WithLabelValues(ev.Service, kind, string(ev.Answer), answeredBy(ev.Who)).Inc()
	}
}

// answeredBy is the "by" label: who is an operator unless it is one of
// the engine's words for nobody.
func answeredBy(who string) string {
	switch who {
	case deployer.AnsweredByTimeout, deployer.AnsweredByDefault, deployer.AnsweredByCanceled, deployer.AnsweredByMissed:
		return who
	}
	return "operator"
}

// SALAppend counts one SAL entry from source with result (SALStored, …).
func (m *Metrics) SALAppend(source, result string) {
	if m != nil {
		m.salAppends.WithLabelValues(source, result).Inc()
	}
}

// SpoolFlushed counts n entries written from the spool to the store.
func (m *Metrics) SpoolFlushed(n int) {
	if m != nil && n > 0 {
		m.spoolFlushd.Add(float64(n))
	}
}

// Reconnected counts a registration after the first.
func (m *Metrics) Reconnected() {
	if m != nil {
		m.reconnects.Inc()
	}
}

// LineSent counts a line sent to the IRC server.
func (m *Metrics) LineSent() {
	if m != nil {
		m.linesSent.Inc()
	}
}

// WatchIRC registers the connection state (deploybot_irc_connected, 1 or
// 0) and the output queue depth (deploybot_irc_output_queue_depth: lines
// waiting to be sent or for their echo), read at every scrape.
func (m *Metrics) WatchIRC(connected func() bool, queued func() int) {
	if m == nil {
		return
	}
	m.gauge("irc_connected", "1 while the bot is registered with its IRC server, else 0.", func() float64 {
		if connected() {
			return 1
		}
		return 0
	})
	m.gauge("irc_output_queue_depth", "Lines waiting to be sent, or sent and waiting for their echo.", func() float64 { return float64(queued()) })
}

// WatchSpool registers the SAL spool's depth (deploybot_sal_spool_depth:
// entries waiting for the store), read at every scrape; depth returns an
// error when the spool cannot be read (the gauge then shows -1).
func (m *Metrics) WatchSpool(depth func() (int, error)) {
	if m == nil {
		return
	}
	m.gauge("sal_spool_depth", "SAL entries waiting in the spool for the store (-1: the spool cannot be read).", func() float64 {
		n, err := depth()
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

func (m *Metrics) gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}
