package remote

// Helpers of the tests of processes on targets: scripts run on this
// machine as sshd would run them, process groups watched through /proc
// (the fleet's hosts share this machine's process ids), files on fleet
// hosts.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// runLocal runs script with /bin/sh as sshd runs it: the leader of a
// process group of its own, its stdin open (and empty) until it has ended.
// It returns its output (stdout and stderr).
func runLocal(script string) ([]byte, error) {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	cmd.Stdin = r
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	r.Close()
	if err == nil {
		err = cmd.Wait()
	}
	return out.Bytes(), err
}

// localProc is a script started by startLocal.
type localProc struct {
	pgid  int
	stdin *os.File      // close it: the session is lost
	done  chan struct{} // closed when the script has ended (and is reaped)
	err   error         // how it ended, once done is closed
	out   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for one writer and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitOutput waits until the script has printed s.
func (p *localProc) waitOutput(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(scale.D(30 * time.Second)); !strings.Contains(p.out.String(), s); time.Sleep(scale.D(10 * time.Millisecond)) {
		if time.Now().After(deadline) {
			t.Fatalf("script did not print %q: %q", s, p.out.String())
		}
	}
}

// startLocal starts script (after runHeader) with /bin/sh as sshd would:
// a process group of its own, reaped as soon as it ends, its stdin an open
// pipe that the test can close as a lost session would.
func startLocal(t *testing.T, script string) *localProc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", runHeader+script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &localProc{stdin: w, done: make(chan struct{}), out: &syncBuffer{}}
	cmd.Stdin = r
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	p.pgid = cmd.Process.Pid
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		w.Close()
		syscall.Kill(-p.pgid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// wait waits for the script's end.
func (p *localProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("script still running after 30 s")
		return nil
	}
}

// groupAlive reports whether process group pgid has a process that is not
// a zombie.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// waitGone waits up to within for process group pgid to be gone.
func waitGone(pgid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(scale.D(20 * time.Millisecond)) {
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// hostPath is where path (under /srv/deployment on h) is in this
// machine's filesystem.
func hostPath(h *fleet.Host, path string) string {
	return filepath.Join(h.Root, strings.TrimPrefix(path, fleet.DeployPath))
}

// waitFor waits until the file at p (on this machine) contains s, and
// returns its content.
func waitFor(t *testing.T, p, s string) string {
	t.Helper()
	for deadline := time.Now().Add(scale.D(20 * time.Second)); ; time.Sleep(scale.D(20 * time.Millisecond)) {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), s) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after 20 s: %q", p, s, b)
		}
	}
}

// opFileGroup waits for the operation file of tg on h to name op and
// returns the process group it names.
func opFileGroup(t *testing.T, h *fleet.Host, tg Target, op string) int {
	t.Helper()
	line := waitFor(t, hostPath(h, tg.Dir+"-cache/"+OpFile), op+" ")
	f := strings.Fields(line)
	pgid, err := strconv.Atoi(f[1])
	if len(f) != 4 || f[0] != op || err != nil {
		t.Fatalf("operation file %q", line)
	}
	return pgid
}

func noFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v)", p, err)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// procGroup returns the process group of pid, 0 if it is gone (or a
// zombie).
func procGroup(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 3 || f[0] == "Z" {
		return 0
	}
	return atoi(f[2])
}

// snapshot describes the tree under dir: every path with its symlink
// target or file content.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "cache/") || strings.Contains(rel, "/.git/") {
			return nil // git's own files: fetch is what would change them
		}
		b.WriteString(rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			b.WriteString(" -> " + l)
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			b.WriteString(" = " + strconv.Quote(string(c)))
		}
		b.WriteString("; ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
