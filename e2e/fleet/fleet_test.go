package fleet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// helperEnv switches the test binary into a helper process (see
// TestHelperProcess): a listener or dialer run on a host through SSH, or a
// separate process owning a fleet.
const helperEnv = "FLEET_TEST_HELPER"

func sshRun(t testing.TB, c *ssh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%q: %v: %s", cmd, err, out)
	}
	return string(out)
}

func dial(t testing.TB, f *Fleet, h *Host) *ssh.Client {
	t.Helper()
	c, err := f.Dial(h)
	if err != nil {
		t.Fatalf("dial %s (%s): %v", h.Name, h.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSeparateHosts: every host has its own /srv/deployment, host key
// (verified), login user and network namespace.
func TestSeparateHosts(t *testing.T) {
	f := StartT(t, Options{Hosts: 3})
	if len(f.Hosts) != 3 {
		t.Fatalf("got %d hosts", len(f.Hosts))
	}
	for _, h := range f.Hosts {
		c := dial(t, f, h)
		out := sshRun(t, c, "printf %s "+h.Name+" > /srv/deployment/x && id -un && stat -c %U /srv/deployment")
		if want := f.User + "\n" + f.User + "\n"; out != want {
			t.Errorf("%s: id/owner = %q, want %q", h.Name, out, want)
		}
	}
	for _, h := range f.Hosts {
		b, err := os.ReadFile(filepath.Join(h.Root, "x"))
		if err != nil || string(b) != h.Name {
			t.Errorf("%s: Root/x = %q, %v; want %q", h.Name, b, err, h.Name)
		}
		out, err := h.Exec("cat /srv/deployment/x; echo; id -un; cat /proc/sys/kernel/hostname")
		if err != nil {
			t.Fatal(err)
		}
		if want := h.Name + "\n" + f.User + "\n" + h.Name + "\n"; out != want {
			t.Errorf("%s: Exec = %q, want %q", h.Name, out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(DeployPath, "x")); err == nil {
		t.Errorf("%s/x exists in the root namespace", DeployPath)
	}
	// The key file is usable by OpenSSH clients.
	if st, err := os.Stat(f.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("KeyFile mode: %v %v", st.Mode(), err)
	}
	if out, err := exec.Command("ssh-keygen", "-y", "-f", f.KeyFile).Output(); err == nil {
		got := strings.Join(strings.Fields(string(out))[:2], " ")
		if want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.Signer.PublicKey()))); got != want {
			t.Errorf("ssh-keygen -y = %q, want %q", out, want)
		}
	}
}

// copyHelper puts the test binary on h, at /srv/deployment/fleet.test.
func copyHelper(t *testing.T, f *Fleet, h *Host) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(h.Root, "fleet.test")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, f.uid, f.gid); err != nil {
		t.Fatal(err)
	}
	return DeployPath + "/fleet.test"
}

// startHelper starts the test binary in helper mode over an SSH session
// and waits for its first output line.
func startHelper(t *testing.T, c *ssh.Client, bin, mode string) (*ssh.Session, io.WriteCloser, string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	s.Stderr = os.Stderr
	if err := s.Start(fmt.Sprintf("%s=%s exec %s -test.run='^TestHelperProcess$'", helperEnv, mode, bin)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	return s, stdin, strings.TrimSpace(line)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLoopbackIsPerHost: a service on host01's 127.0.0.1 is reachable
// through host01's SSH connection only; hosts reach the gateway; KillAll
// ends the service and StartSSHD brings the host back.
func TestLoopbackIsPerHost(t *testing.T) {
	f := StartT(t, Options{Hosts: 2})
	h1, h2 := f.Hosts[0], f.Hosts[1]
	for _, h := range f.Hosts {
		if err := os.WriteFile(filepath.Join(h.Root, "x"), []byte(h.Name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := copyHelper(t, f, h1)
	c1, c2 := dial(t, f, h1), dial(t, f, h2)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s, stdin, ready := startHelper(t, c1, bin, "listen:"+addr)
	defer s.Close()
	if ready != "ready" {
		t.Fatalf("helper said %q", ready)
	}

	conn, err := c1.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s through %s: %v", addr, h1.Name, err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if want := "hello from host01\n"; string(got) != want {
		t.Errorf("through host01: %q, want %q", got, want)
	}
	if conn, err := c2.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s reachable through %s", addr, h2.Name)
	}
	if conn, err := net.DialTimeout("tcp", addr, scale.D(time.Second)); err == nil {
		conn.Close()
		t.Errorf("%s reachable from the root namespace", addr)
	}

	// The host reaches the deployment host at GatewayIP.
	l, err := net.Listen("tcp", net.JoinHostPort(f.GatewayIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got2 := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got2 <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got2 <- string(b) + " from " + c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	out := sshRun(t, c1, fmt.Sprintf("%s=dial:%s exec %s -test.run='^TestHelperProcess$'", helperEnv, l.Addr(), bin))
	select {
	case g := <-got2:
		if want := "host01 from " + h1.IP; g != want {
			t.Errorf("gateway got %q, want %q (helper: %s)", g, want, out)
		}
	case <-time.After(scale.D(10 * time.Second)):
		t.Fatal("gateway got nothing")
	}

	// KillAll ends the service (and sshd); StartSSHD restores the host.
	if err := h1.KillAll(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if out, err := h1.Exec("cat /proc/net/tcp | awk 'NR>1 && $4==\"0A\"' | wc -l"); err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("listeners left on %s after KillAll: %q %v", h1.Name, out, err)
	}
	if _, err := f.Dial(h1); err == nil {
		t.Error("dial after KillAll succeeded")
	}
	if err := h1.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	c1 = dial(t, f, h1)
	if out := sshRun(t, c1, "cat /srv/deployment/x"); out != "host01" {
		t.Errorf("after restart: %q", out)
	}
	if _, err := c1.Dial("tcp", addr); err == nil {
		t.Error("service survived KillAll")
	}
}

// TestHostKeyVerified: a wrong or missing known_hosts entry fails the
// handshake with a knownhosts.KeyError.
func TestHostKeyVerified(t *testing.T) {
	f := StartT(t, Options{Hosts: 2})
	h1, h2 := f.Hosts[0], f.Hosts[1]
	dir := t.TempDir()
	wrong := filepath.Join(dir, "known_hosts")
	// host01's address with host02's key.
	if err := os.WriteFile(wrong, []byte(knownhosts.Line([]string{h1.Addr}, h2.HostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(wrong)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.ClientConfig()
	cfg.HostKeyCallback = cb
	_, err = ssh.Dial("tcp", h1.Addr, cfg)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		t.Fatalf("dial with wrong key: %v, want a knownhosts key mismatch", err)
	}
	t.Logf("wrong key: %v", err)
	// host02 is not in that file at all.
	_, err = ssh.Dial("tcp", h2.Addr, cfg)
	if !errors.As(err, &ke) || len(ke.Want) != 0 {
		t.Fatalf("dial unknown host: %v, want a knownhosts unknown-key error", err)
	}
	// The fleet's own file is right, and so is its key for OpenSSH's format.
	dial(t, f, h1).Close()
	b, _ := os.ReadFile(f.KnownHostsFile)
	if !strings.HasPrefix(string(b), h1.IP+" ssh-ed25519 ") {
		t.Errorf("known_hosts starts %q", b)
	}
}

// TestStopStartSSHD: StopSSHD refuses new dials and drops open
// connections; StartSSHD restores the same host (key, files).
func TestStopStartSSHD(t *testing.T) {
	f := StartT(t, Options{Hosts: 2})
	h := f.Hosts[0]
	c := dial(t, f, h)
	sshRun(t, c, "echo kept > /srv/deployment/kept; nohup sleep 1000 >/dev/null 2>&1 & echo $! > /srv/deployment/svc.pid")
	if h.PID() == 0 {
		t.Error("PID() = 0 while running")
	}
	if err := h.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	if h.PID() != 0 {
		t.Error("PID() != 0 after StopSSHD")
	}
	if _, err := f.Dial(h); err == nil {
		t.Fatal("dial after StopSSHD succeeded")
	} else {
		t.Logf("dial after StopSSHD: %v", err)
	}
	if s, err := c.NewSession(); err == nil {
		s.Close()
		t.Error("open connection survived StopSSHD")
	}
	if err := h.StopSSHD(); err != nil {
		t.Errorf("second StopSSHD: %v", err)
	}
	// What the session started still runs.
	if _, err := h.Exec("kill -0 $(cat /srv/deployment/svc.pid)"); err != nil {
		t.Errorf("service died with sshd: %v", err)
	}
	// The other host is unaffected.
	sshRun(t, dial(t, f, f.Hosts[1]), "true")
	if err := h.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	if err := h.StartSSHD(); err == nil {
		t.Error("StartSSHD while running succeeded")
	}
	if out := sshRun(t, dial(t, f, h), "cat /srv/deployment/kept"); out != "kept\n" {
		t.Errorf("after restart: %q", out)
	}
}

// TestBlackhole: dials to a blackholed host time out; Unblackhole
// restores it.
func TestBlackhole(t *testing.T) {
	f := StartT(t, Options{Hosts: 2})
	h := f.Hosts[0]
	dial(t, f, h).Close()
	if err := h.Blackhole(); err != nil {
		t.Fatal(err)
	}
	cfg := f.ClientConfig()
	cfg.Timeout = scale.D(500 * time.Millisecond)
	start := time.Now()
	_, err := ssh.Dial("tcp", h.Addr, cfg)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial blackholed host: %v (after %v), want a timeout", err, time.Since(start))
	}
	sshRun(t, dial(t, f, f.Hosts[1]), "true")
	if err := h.Unblackhole(); err != nil {
		t.Fatal(err)
	}
	sshRun(t, dial(t, f, h), "true")
}

// TestTwentyHosts starts a 20-host fleet, runs a command on every host at
// once and reports how long starting and closing took (not asserted:
// timing claims live in benchmarks).
func TestTwentyHosts(t *testing.T) {
	if err := Check(); err != nil {
		StartT(t, Options{Hosts: 1}) // skips or fails as appropriate
	}
	start := time.Now()
	f, err := Start(Options{Hosts: 20, Log: harnessLines{tlogWriter{t}}})
	if err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	defer f.Close()
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(f.Hosts))
	for _, h := range f.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.Dial(h)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			s, err := c.NewSession()
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			if out, err := s.Output("hostname > /srv/deployment/n; cat /srv/deployment/n"); err != nil || string(out) != h.Name+"\n" {
				errs <- fmt.Errorf("%s: %q %v", h.Name, out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fanout := time.Since(start)
	start = time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("20 hosts: start %v, dial+command on all %v, close %v", up.Round(time.Millisecond), fanout.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// leftovers lists what a closed fleet might have left behind.
func leftovers(slot int, pids []int) []string {
	var left []string
	if si, err := readSlot(slot); err != nil || si.pid == os.Getpid() || !si.ownerAlive() {
		// (Otherwise another test process has taken the slot since: the
		// names are its own.)
		links, netnss, _ := ownNames()
		left = append(left, links[slot]...)
		left = append(left, netnss[slot]...)
		if err == nil {
			left = append(left, slotFile(slot))
		}
	}
	for _, pid := range pids {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			left = append(left, "process "+strings.TrimSpace(string(b)))
		}
	}
	return left
}

// TestCloseLeavesNothing: after Close no namespace, link, process (not
// even a zombie), slot file or directory of the fleet is left, including a
// service an SSH session left running in the background.
func TestCloseLeavesNothing(t *testing.T) {
	StartT(t, Options{Hosts: 1}).Close() // skip/fail like the others
	f, err := Start(Options{Hosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range f.Hosts {
		c, err := f.Dial(h)
		if err != nil {
			t.Fatal(err)
		}
		sshRun(t, c, "nohup sleep 1000 >/dev/null 2>&1 & echo $! > /srv/deployment/svc.pid")
		// leave c open: Close must cope with live connections
	}
	var pids []int
	for _, h := range f.Hosts {
		ns := netnsPids(netnsIDs([]string{h.NetNS}))
		if len(ns) < 4 { // reaper, sshd, connection sshds, sleep
			t.Errorf("%s: only %d processes: %v", h.Name, len(ns), ns)
		}
		pids = append(pids, ns...)
	}
	slot, dir := f.Slot, f.Dir
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if left := leftovers(slot, pids); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s left behind", dir)
	}
	// A caller-given Dir keeps what was there, loses what Start made.
	given, err := os.MkdirTemp("", "fleet-given-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(given)
	os.WriteFile(filepath.Join(given, "mine"), nil, 0o644)
	f, err = Start(Options{Hosts: 1, Dir: given})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Dial(f.Hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	sshRun(t, c, "true")
	c.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(given)
	if len(ents) != 1 || ents[0].Name() != "mine" {
		t.Errorf("given Dir after Close: %v", ents)
	}
}

// TestParallelFleets: fleets started at once in one process and in
// separate processes get distinct slots, and closing one leaves no trace
// in another's hosts.
func TestParallelFleets(t *testing.T) {
	StartT(t, Options{Hosts: 1}).Close()
	var a, b *Fleet
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = Start(Options{Hosts: 2}) }()
	go func() { defer wg.Done(); b, errB = Start(Options{Hosts: 2}) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	defer a.Close()
	defer b.Close()
	if a.Subnet == b.Subnet || a.Bridge == b.Bridge || a.Hosts[0].NetNS == b.Hosts[0].NetNS {
		t.Fatalf("fleets collide: %s %s", a.Subnet, b.Subnet)
	}
	// Separate processes.
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		slot  chan int
	}
	var children []*child
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"=fleet:2")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ch := &child{cmd: cmd, stdin: stdin, slot: make(chan int, 1)}
		children = append(children, ch)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			var slot int
			fmt.Sscanf(line, "slot=%d", &slot)
			ch.slot <- slot
			io.Copy(io.Discard, stdout)
		}()
	}
	seen := map[int]bool{a.Slot: true, b.Slot: true}
	for _, ch := range children {
		var slot int
		select {
		case slot = <-ch.slot:
		case <-time.After(scale.D(60 * time.Second)):
		}
		if slot == 0 || seen[slot] {
			t.Errorf("child slot %d (seen %v)", slot, seen)
		}
		seen[slot] = true
	}
	for _, ch := range children {
		ch.stdin.Close()
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
	t.Logf("slots in use: %v", seen)
	// Closing b removes its namespaces from a's hosts' mount tables too.
	bslot := b.Slot
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range a.Hosts {
		mi, err := os.ReadFile("/proc/" + strconv.Itoa(h.PID()) + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if tag := fmt.Sprintf("/run/netns/%s%d-", namePrefix, bslot); strings.Contains(string(mi), tag) {
			t.Errorf("%s still mounts %s*", h.Name, tag)
		}
	}
}

// TestReapStale: a fleet whose process was killed (no Close) is removed by
// the next Start or ReapStale; its sshds died with the process.
func TestReapStale(t *testing.T) {
	StartT(t, Options{Hosts: 1}).Close()
	// The fleet's owner runs under a reaper of its own, so that what its
	// death orphans is reaped even where init does not reap.
	cmd := exec.Command(os.Args[0], os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=fleet:2", "FLEET_TEST_HANG=1", reaperEnv+"=1")
	cmd.Stdin = strings.NewReader("") // EOF at once; the helper then waits to be killed
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var slot, owner int
	var dir, pidlist string
	fmt.Sscanf(line, "slot=%d dir=%s pids=%s self=%d", &slot, &dir, &pidlist, &owner)
	var pids []int
	for _, p := range strings.Split(pidlist, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			pids = append(pids, n)
		}
	}
	if slot == 0 || len(pids) == 0 || owner == 0 {
		t.Fatalf("helper said %q", line)
	}
	syscall.Kill(owner, syscall.SIGKILL)
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err == nil {
		t.Error("killed owner exited 0")
	}
	if err := ReapStale(); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(slot, pids); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s left behind", dir)
	}
}

// TestStartErrors: bad options are refused before anything is created.
func TestStartErrors(t *testing.T) {
	for _, n := range []int{0, -1, MaxHosts + 1} {
		if _, err := Start(Options{Hosts: n}); err == nil {
			t.Errorf("Start(Hosts: %d) succeeded", n)
		}
	}
}

// TestHelperProcess is not a test: it is the test binary's helper mode.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "listen": // serve "hello from <contents of /srv/deployment/x>" until stdin closes
		l, err := net.Listen("tcp", arg)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			x, _ := os.ReadFile(DeployPath + "/x")
			fmt.Fprintf(c, "hello from %s\n", x)
			c.Close()
		}
	case "dial": // send the contents of /srv/deployment/x to arg
		c, err := net.DialTimeout("tcp", arg, scale.D(5*time.Second))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		x, _ := os.ReadFile(DeployPath + "/x")
		c.Write(x)
		c.Close()
		os.Exit(0)
	case "fleet": // own a fleet until stdin closes
		n, _ := strconv.Atoi(arg)
		f, err := Start(Options{Hosts: n})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		var pids []string
		for _, h := range f.Hosts {
			for _, pid := range netnsPids(netnsIDs([]string{h.NetNS})) {
				pids = append(pids, strconv.Itoa(pid))
			}
		}
		fmt.Printf("slot=%d dir=%s pids=%s self=%d\n", f.Slot, f.Dir, strings.Join(pids, ","), os.Getpid())
		io.Copy(io.Discard, os.Stdin)
		if os.Getenv("FLEET_TEST_HANG") != "" {
			select {} // wait to be killed
		}
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(2)
}

// BenchmarkStartClose3 and BenchmarkStartClose20 measure bringing a fleet
// up (every sshd listening) and tearing it down.
func BenchmarkStartClose3(b *testing.B)  { benchStartClose(b, 3) }
func BenchmarkStartClose20(b *testing.B) { benchStartClose(b, 20) }
func BenchmarkStartClose50(b *testing.B) { benchStartClose(b, 50) }

func benchStartClose(b *testing.B, n int) {
	StartT(b, Options{Hosts: 1}).Close()
	var up, down time.Duration
	for b.Loop() {
		t0 := time.Now()
		f, err := Start(Options{Hosts: n})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		up += t1.Sub(t0)
		down += time.Since(t1)
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "ms-start/op")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "ms-close/op")
}
