package faults

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/pgsql"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// TestPostgresRestartedUnderLog restarts the SAL's PostgreSQL (fast
// shutdown, two seconds down, same data and port) while alice sends a
// steady stream of !log lines. Every line is acknowledged — logged, or
// queued — once, and ends in the SAL exactly once, in the order sent; no
// entry is announced twice.
func TestPostgresRestartedUnderLog(t *testing.T) {
	pg := pgsql.StartT(t)
	url := pg.DatabaseT(t)
	e := newEnv(t, "pgrestart", 2, "30s")
	salBlock := fmt.Sprintf("sal:\n  database: %s/sal.db\n", e.Dir)
	if !strings.Contains(e.conf, salBlock) {
		t.Fatalf("the configuration changed shape:\n%s", e.conf)
	}
	e.conf = strings.Replace(e.conf, salBlock,
		fmt.Sprintf("sal:\n  database: %q\n  spool: %s\n", url, filepath.Join(e.Dir, "sal.spool")), 1)
	e.startBot()

	const lines, restartAt = 40, 10
	every := scale.D(200 * time.Millisecond)
	sent := make([]string, lines)
	acks := 0
	queued := 0
	before := pg.PID()
	for i := range lines {
		sent[i] = fmt.Sprintf("pg restart line %02d", i)
		e.say("!log " + sent[i])
		if i == restartAt {
			// The stream goes on while the server is down.
			done := make(chan error, 1)
			go func() { done <- pg.Restart(scale.D(2 * time.Second)) }()
			defer func() {
				if err := <-done; err != nil {
					t.Errorf("restarting PostgreSQL: %v", err)
				}
			}()
		}
		time.Sleep(every)
	}
	for acks < lines {
		reply := e.expectAny(30*time.Second, "Logged the message", "Failed to log the message")
		if !strings.Contains(reply, "Logged the message") && !strings.Contains(reply, "It is queued") {
			t.Fatalf("line not acknowledged: %q", reply)
		}
		if strings.Contains(reply, "It is queued") {
			queued++
		}
		acks++
	}
	t.Logf("%d lines acknowledged, %d of them queued", acks, queued)
	if pg.PID() == before {
		t.Fatal("PostgreSQL was not restarted")
	}
	if queued == 0 {
		t.Error("no line was queued: the restart did not happen under the traffic")
	}

	got := e.waitSAL(url, "pg restart line ", lines)
	if !slices.Equal(got, sent) {
		t.Errorf("the SAL holds, by id:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(sent, "\n"))
	}
	// By now every queued line was flushed: still one answer a line, and
	// no entry announced twice.
	answers, seen := 0, map[string]bool{}
	for _, l := range e.lines() {
		if strings.Contains(l, "Logged the message") || strings.Contains(l, "Failed to log the message") {
			answers++
		}
		if strings.Contains(l, "Logged the message at ") && seen[l] {
			t.Errorf("the bot announced twice: %q", l)
		}
		seen[l] = true
	}
	if answers != lines {
		t.Errorf("%d answers to %d lines", answers, lines)
	}
}

// waitSAL waits until the SAL at url holds n entries starting with
// prefix and, a moment later, returns the messages of those entries,
// oldest id first (a double would show by then).
func (e *env) waitSAL(url, prefix string, n int) []string {
	e.t.Helper()
	store, err := sal.Open(url)
	e.must(err)
	defer store.Close()
	read := func() []string {
		list, err := store.List(e.t.Context(), sal.Query{Limit: 1000})
		if err != nil {
			return nil
		}
		var out []string
		for _, en := range slices.Backward(list) {
			if strings.HasPrefix(en.Message, prefix) {
				out = append(out, en.Message)
			}
		}
		return out
	}
	deadline := time.Now().Add(scale.D(60 * time.Second))
	for len(read()) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(scale.D(time.Second))
	return read()
}
