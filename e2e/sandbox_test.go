package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
	"deploybot/e2e/scale"
)

// TestSandboxHangup: `make demo`'s terminal closed (SIGHUP to its process
// group) stops the sandbox as Ctrl-C does: the fleet's namespaces and
// bridge, its processes and its temporary directories are gone.
func TestSandboxHangup(t *testing.T) {
	cfg := sandboxConfig(t)
	sb := startSandbox(t, cfg)
	fp := sb.footprint(t)
	if err := syscall.Kill(-sb.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := sb.wait(t); err != nil {
		t.Errorf("the sandbox exited with %v after SIGHUP, want 0\n%s", err, sb.out.String())
	}
	if !strings.Contains(sb.out.String(), "deploybot-sandbox: stopped") {
		t.Errorf("no \"stopped\" line after SIGHUP:\n%s", sb.out.String())
	}
	fp.checkGone(t, "after SIGHUP")
}

// TestSandboxAfterKill: a sandbox SIGKILLed (it cannot clean up) leaves
// its fleet behind; the next one on the same data directory removes it
// before starting, and SIGTERM stops that one cleanly.
func TestSandboxAfterKill(t *testing.T) {
	cfg := sandboxConfig(t)
	first := startSandbox(t, cfg)
	fp := first.footprint(t)
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	for _, d := range fp.dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("after SIGKILL, %s is already gone (%v): the test would not show that the next start removes it", d, err)
		}
	}

	second := startSandbox(t, cfg)
	if !strings.Contains(second.out.String(), "removing what the previous sandbox left behind") {
		t.Errorf("the second sandbox did not say it removed the first's leftovers:\n%s", second.out.String())
	}
	fp.checkGone(t, "after the second start")

	fp2 := second.footprint(t)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(t); err != nil {
		t.Errorf("the second sandbox exited with %v after SIGTERM, want 0\n%s", err, second.out.String())
	}
	fp2.checkGone(t, "after SIGTERM")
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "sandbox-data", "sandbox.state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state file is still there after a clean stop (%v)", err)
	}
}

var sandboxBin struct {
	once sync.Once
	path string
	err  error
}

// sandboxConfig writes examples/sandbox.yaml with free ports (and its SASL
// secret) into a fresh directory and returns the configuration's path; the
// sandbox's data directory is sandbox-data next to it.
func sandboxConfig(t *testing.T) string {
	t.Helper()
	shared.Get(t) // skips or fails as every IRC test does when InspIRCd is missing
	if err := fleet.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v [skipped: CI is not set]", err)
	}
	sandboxBin.once.Do(func() {
		sandboxBin.path = filepath.Join(filepath.Dir(binary), "deploybot-sandbox")
		out, err := exec.Command("go", "build", "-o", sandboxBin.path, "deploybot/cmd/deploybot-sandbox").CombinedOutput()
		if err != nil {
			sandboxBin.err = fmt.Errorf("building deploybot-sandbox: %v\n%s", err, out)
		}
	})
	if sandboxBin.err != nil {
		t.Fatal(sandboxBin.err)
	}
	raw, err := os.ReadFile("../examples/sandbox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile("../examples/sandbox-sasl.secret")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, addr := range []string{"127.0.0.1:16667", "127.0.0.1:19200", "127.0.0.1:18080"} {
		if !strings.Contains(cfg, addr) {
			t.Fatalf("examples/sandbox.yaml no longer listens on %s: update this test", addr)
		}
		cfg = strings.ReplaceAll(cfg, addr, freeAddr(t))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sandbox-sasl.secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sandbox.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sandboxRun is a running deploybot-sandbox, in a process group of its
// own as under a terminal.
type sandboxRun struct {
	cmd  *exec.Cmd
	out  *harness.LockedBuffer
	done chan error
}

func startSandbox(t *testing.T, cfg string) *sandboxRun {
	t.Helper()
	sb := &sandboxRun{out: &harness.LockedBuffer{}, done: make(chan error, 1)}
	sb.cmd = exec.Command(sandboxBin.path, "-c", cfg, "-bin", binary)
	sb.cmd.Stdout, sb.cmd.Stderr = sb.out, sb.out
	sb.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sb.done <- sb.cmd.Wait() }()
	t.Cleanup(func() {
		if sb.cmd.ProcessState == nil {
			syscall.Kill(-sb.cmd.Process.Pid, syscall.SIGTERM)
			sb.wait(t)
		}
		if t.Failed() {
			t.Logf("deploybot-sandbox output:\n%s", sb.out.String())
		}
	})
	deadline := time.Now().Add(scale.D(3 * time.Minute))
	// The last of the instructions it prints once everything runs.
	for !strings.Contains(sb.out.String(), "the next start does.") {
		select {
		case err := <-sb.done:
			sb.done <- err
			t.Fatalf("deploybot-sandbox exited (%v) before it was up:\n%s", err, sb.out.String())
		case <-time.After(scale.D(100 * time.Millisecond)):
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploybot-sandbox not up after %v:\n%s", scale.D(3*time.Minute), sb.out.String())
		}
	}
	return sb
}

// wait waits for the sandbox to exit and returns its exit error.
func (sb *sandboxRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-sb.done:
		sb.done <- err
		return err
	case <-time.After(scale.D(2 * time.Minute)):
		syscall.Kill(-sb.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("deploybot-sandbox did not exit within %v", scale.D(2*time.Minute))
		return nil
	}
}

// footprint is what a running sandbox has on the machine.
type footprint struct {
	netns  map[string]syscall.Stat_t // /run/netns/<name> → its namespace
	bridge string
	ifidx  string         // the bridge's ifindex
	procs  map[int]string // the sandbox's children: pid → start time
	dirs   []string       // its temporary directories
}

var (
	subnetRE  = regexp.MustCompile(`sshd hosts on 10\.200\.(\d+)\.0/24`)
	scratchRE = regexp.MustCompile(`(?m)^scratch\s+(\S+) \(IRC servers\), (\S+) \(fleet\)$`)
)

// footprint reads the sandbox's fleet slot and directories from what it
// printed, and records its namespaces, bridge and child processes.
func (sb *sandboxRun) footprint(t *testing.T) *footprint {
	t.Helper()
	out := sb.out.String()
	m, d := subnetRE.FindStringSubmatch(out), scratchRE.FindStringSubmatch(out)
	if m == nil || d == nil {
		t.Fatalf("the sandbox did not print its fleet subnet and scratch directories:\n%s", out)
	}
	fp := &footprint{netns: map[string]syscall.Stat_t{}, bridge: "dbt" + m[1] + "b", procs: map[int]string{}, dirs: d[1:]}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		var st syscall.Stat_t
		if strings.HasPrefix(e.Name(), "dbt"+m[1]+"-") && syscall.Stat("/run/netns/"+e.Name(), &st) == nil {
			fp.netns[e.Name()] = st
		}
	}
	idx, err := os.ReadFile("/sys/class/net/" + fp.bridge + "/ifindex")
	if err != nil {
		t.Fatalf("the fleet's bridge %s: %v", fp.bridge, err)
	}
	fp.ifidx = strings.TrimSpace(string(idx))
	for _, pid := range childrenOf(sb.cmd.Process.Pid) {
		fp.procs[pid] = fleet.ProcStart(pid)
	}
	// 3 hosts; the IRC servers, `deploybot serve` and a reaper per host.
	if len(fp.netns) != 3 || len(fp.procs) < 6 {
		t.Fatalf("the sandbox runs %d namespaces (want 3) and %d child processes (want at least 6)", len(fp.netns), len(fp.procs))
	}
	return fp
}

// checkGone fails the test for everything of fp still on the machine. A
// namespace or bridge of the same name made since (a fleet reusing the
// slot) is another one: it is told apart by inode or ifindex.
func (fp *footprint) checkGone(t *testing.T, when string) {
	t.Helper()
	for name, was := range fp.netns {
		var st syscall.Stat_t
		if syscall.Stat("/run/netns/"+name, &st) == nil && st.Dev == was.Dev && st.Ino == was.Ino {
			t.Errorf("%s: network namespace %s is still there", when, name)
		}
	}
	if idx, err := os.ReadFile("/sys/class/net/" + fp.bridge + "/ifindex"); err == nil && strings.TrimSpace(string(idx)) == fp.ifidx {
		t.Errorf("%s: bridge %s is still there", when, fp.bridge)
	}
	for pid, start := range fp.procs {
		if start != "" && fleet.ProcStart(pid) == start {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			t.Errorf("%s: process %d (%s) is still running", when, pid, strings.TrimSpace(string(comm)))
		}
	}
	for _, d := range fp.dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: directory %s is still there (%v)", when, d, err)
		}
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
				if p, _ := strconv.Atoi(strings.TrimSpace(v)); p == pid {
					kids = append(kids, n)
				}
				break
			}
		}
		f.Close()
	}
	return kids
}
