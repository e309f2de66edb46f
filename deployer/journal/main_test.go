package journal

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

// The test binary doubles as the "other process": with JOURNAL_TEST_CHILD
// set it runs childMain instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("JOURNAL_TEST_CHILD"); mode != "" {
		childMain(mode)
		return
	}
	os.Exit(m.Run())
}

// childMain holds a deploy lock ("hold"), or runs half a deploy and stops
// in the middle ("deploy"), then says READY and waits to be killed (or for
// its stdin to close, should the test binary die first).
func childMain(mode string) {
	dir, service := os.Getenv("JT_DIR"), os.Getenv("JT_SERVICE")
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	lock, err := AcquireDeploy(dir, service, Holder{
		Who: os.Getenv("JT_WHO"), Why: os.Getenv("JT_WHY"), DeployID: os.Getenv("JT_ID"),
	})
	if err != nil {
		fail(err)
	}
	defer lock.Release()
	switch mode {
	case "hold":
	case "deploy":
		if err := halfDeploy(dir, service, os.Getenv("JT_ID")); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

const (
	revOld = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	revNew = "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
)

var testHosts = map[string][]string{
	"canary": {"scb1001.eqiad.wmnet"},
	"eqiad":  {"scb1002.eqiad.wmnet", "scb1003.eqiad.wmnet", "scb1004.eqiad.wmnet", "scb1005.eqiad.wmnet"},
}

// halfDeploy writes the journal of a deploy that is interrupted while
// promoting scb1004: canary done, scb1002 done, scb1003 failed at fetch,
// scb1004 in the middle of promote, scb1005 not reached.
func halfDeploy(dir, service, id string) error {
	w, err := Create(dir, service, Meta{ID: id, Who: "alice", Rev: revNew, FromRev: revOld,
		Message: "Fix T12345", Hosts: testHosts, GroupOrder: []string{"canary", "eqiad"}, Source: "cli"})
	if err != nil {
		return err
	}
	evs := []Event{
		{Type: TypeGroupStarted, Group: "canary", Message: "1 host"},
		{Type: TypeStageStarted, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StageFetch, Command: "git fetch"},
		{Type: TypeStage, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StageFetch, Command: "git fetch", ExitCode: Code(0), Duration: 1200 * time.Millisecond},
		{Type: TypeStage, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StagePromote, Command: "ln -sfn", ExitCode: Code(0), Rev: revNew},
		{Type: TypeCheck, Group: "canary", Host: "scb1001.eqiad.wmnet", Check: &CheckRecord{Name: "info", Kind: "http", Target: "GET /_info", OK: true, Status: 200, Latency: 35 * time.Millisecond}},
		{Type: TypeHostDone, Group: "canary", Host: "scb1001.eqiad.wmnet", Rev: revNew},
		{Type: TypeGroupFinished, Group: "canary", Outcome: OutcomeSuccess, Message: "1/1 ok"},
		{Type: TypeGroupStarted, Group: "eqiad", Message: "4 hosts"},
		{Type: TypeStage, Group: "eqiad", Host: "scb1002.eqiad.wmnet", Stage: StageFetch, ExitCode: Code(0)},
		{Type: TypeStage, Group: "eqiad", Host: "scb1002.eqiad.wmnet", Stage: StagePromote, ExitCode: Code(0), Rev: revNew},
		{Type: TypeHostDone, Group: "eqiad", Host: "scb1002.eqiad.wmnet"},
		{Type: TypeStage, Group: "eqiad", Host: "scb1003.eqiad.wmnet", Stage: StageFetch, Command: "git fetch", ExitCode: Code(128), Output: "fatal: unable to access\n"},
		{Type: TypeHostFailed, Group: "eqiad", Host: "scb1003.eqiad.wmnet", Stage: StageFetch, Err: "fetch: exit 128"},
		{Type: TypeStage, Group: "eqiad", Host: "scb1004.eqiad.wmnet", Stage: StageFetch, ExitCode: Code(0)},
		{Type: TypeStageStarted, Group: "eqiad", Host: "scb1004.eqiad.wmnet", Stage: StagePromote, Command: "sudo -n systemctl restart citoid"},
	}
	for _, ev := range evs {
		if err := w.Append(ev); err != nil {
			return err
		}
	}
	return nil // the writer is left open, as in a crash
}

type child struct {
	cmd    *exec.Cmd
	stderr *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild runs the test binary in mode and waits until it says READY.
func startChild(t *testing.T, mode, dir, service string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_CHILD="+mode, "JT_DIR="+dir, "JT_SERVICE="+service)
	cmd.Env = append(cmd.Env, env...)
	stderr := &lockedBuf{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil { // kept open until the child is reaped
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: stderr}
	t.Cleanup(func() { c.kill() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "READY"
		ready <- ok
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("child %s did not get ready: %s", mode, stderr.String())
		}
	case <-time.After(scale.D(20 * time.Second)):
		t.Fatalf("child %s: timeout; stderr: %s", mode, stderr.String())
	}
	return c
}

// kill SIGKILLs the child — no deferred function, no Release runs — and
// reaps it.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}
