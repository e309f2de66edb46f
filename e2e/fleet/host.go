package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
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
	"time"

	"deploybot/e2e/scale"

	"golang.org/x/crypto/ssh"
)

// proc is one reaper (and the sshd under it) started by StartSSHD.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// writeFiles creates the host's directory, srv/ (owned by the deploy
// user), host key, authorized_keys and sshd_config.
func (h *Host) writeFiles() error {
	f := h.f
	if err := os.MkdirAll(h.Root, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(h.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(h.Root, f.uid, f.gid); err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, h.Name)
	if err != nil {
		return err
	}
	h.HostKey = signer.PublicKey()
	h.keyFile = filepath.Join(h.Dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(h.keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(h.keyFile+".pub", ssh.MarshalAuthorizedKey(h.HostKey), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(f.Signer.PublicKey()), 0o644); err != nil {
		return err
	}
	h.config = filepath.Join(h.Dir, "sshd_config")
	return os.WriteFile(h.config, []byte(h.sshdConfig()), 0o644)
}

func (h *Host) sshdConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# deploybot e2e fleet host %s (netns %s)\n", h.Name, h.NetNS)
	fmt.Fprintf(&b, "ListenAddress %s:22\nListenAddress 127.0.0.1:22\n", h.IP)
	fmt.Fprintf(&b, "HostKey %s\nPidFile %s\n", h.keyFile, filepath.Join(h.Dir, "sshd.pid"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\nAllowUsers %s\n", filepath.Join(h.Dir, "authorized_keys"), h.f.User)
	b.WriteString(`PermitRootLogin no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
MaxStartups 200:30:400
MaxSessions 50
MaxAuthTries 10
LoginGraceTime 30
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp internal-sftp
LogLevel INFO
`)
	if tools.sshdMajor > 9 || (tools.sshdMajor == 9 && tools.sshdMinor >= 8) {
		// OpenSSH 9.8+ would lock the gateway address out after failed
		// logins, which tests provoke on purpose.
		b.WriteString("PerSourcePenalties no\n")
	}
	return b.String()
}

// liveProcs returns the host's reapers that have not exited, dropping the
// others. h.mu must be held.
func (h *Host) liveProcs() []*proc {
	live := h.procs[:0]
	for _, p := range h.procs {
		if !p.exited() {
			live = append(live, p)
		}
	}
	h.procs = live
	return live
}

// endReapers waits for the host's reapers to exit (they do once their
// children are gone) and kills those that do not. h.mu must be held.
func (h *Host) endReapers() {
	for _, p := range h.procs {
		select {
		case <-p.done:
		case <-time.After(scale.D(5 * time.Second)):
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	h.procs = nil
}

// sshdPids returns the sshd processes (listener and connections) in the
// host's network namespace.
func (h *Host) sshdPids() []int {
	var pids []int
	for _, pid := range netnsPids(netnsIDs([]string{h.NetNS})) {
		if procComm(pid) == "sshd" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// inHost returns the command line that runs argv on the host: in its
// network namespace, and in new mount and UTS namespaces where Root is
// mounted on /srv/deployment and the hostname is Name. Mount propagation
// is "slave", so that namespaces deleted in the root namespace are
// unmounted here too (with "private" every host would keep every other
// fleet's netns alive until it died).
func (h *Host) inHost(argv ...string) []string {
	// Options.Binds follow the root, as "source target" pairs ended by "--".
	args := []string{h.Name, h.Root}
	for _, b := range h.f.opts.Binds {
		args = append(args, b.Source, b.Target)
	}
	args = append(args, "--")
	return append(append([]string{tools.ip, "netns", "exec", h.NetNS,
		tools.unshare, "--mount", "--uts", "--propagation", "slave",
		tools.sh, "-c", `echo "$1" > /proc/sys/kernel/hostname && mount --bind "$2" ` + DeployPath + ` && shift 2 &&
while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit; shift 2; done; shift; exec "$@"`,
		"sh"}, args...), argv...)
}

// StartSSHD starts the host's sshd (in fresh mount and UTS namespaces in
// the host's network namespace, same key and config) and returns once it
// listens on Addr. It fails if an sshd is already running on the host.
func (h *Host) StartSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pids := h.sshdPids(); len(pids) > 0 {
		return fmt.Errorf("fleet: %s: sshd already running (pids %v)", h.Name, pids)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := h.inHost(self, tools.sshd, "-D", "-e", "-f", h.config)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + stdPath, "LC_ALL=C", reaperEnv + "=1", "GOMAXPROCS=1"}
	lw := newLineLog(h.Name+" sshd: ", h.f.opts.Log)
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = scale.D(time.Second)
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("fleet: %s: start sshd: %w", h.Name, err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	h.procs = append(h.procs, p)
	h.lastLog = lw

	deadline := time.Now().Add(scale.D(20 * time.Second))
	for !listening(p.pid, h.IP, 22) {
		if p.exited() {
			return fmt.Errorf("fleet: %s: sshd exited: %v: %s", h.Name, p.err, lw.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: %s: sshd not listening on %s after 20s: %s", h.Name, h.Addr, lw.tail())
		}
		time.Sleep(scale.D(2 * time.Millisecond))
	}
	return nil
}

// listening reports whether a TCP socket listens on ip:port in the network
// namespace of pid (read from /proc/PID/net/tcp: no connection is made).
func listening(pid int, ip string, port int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/tcp")
	if err != nil {
		return false
	}
	ip4 := net.ParseIP(ip).To4()
	if ip4 == nil {
		return false
	}
	want := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip4), port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" { // 0A = LISTEN
			return true
		}
	}
	return false
}

// SSHDLog returns the last lines the host's most recently started sshd
// logged (sshd -e), for failure messages.
func (h *Host) SSHDLog() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastLog == nil {
		return ""
	}
	return h.lastLog.tail()
}

// PID returns the pid of the host's sshd listener (from its pid file), or
// 0 if it is not running.
func (h *Host) PID() int {
	b, err := os.ReadFile(filepath.Join(h.Dir, "sshd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || ProcStart(pid) == "" || procComm(pid) != "sshd" {
		return 0
	}
	// A stale pid file's number may belong to another host's sshd by now.
	id, ok1 := statNS("/proc/" + strconv.Itoa(pid) + "/ns/net")
	own, ok2 := statNS("/run/netns/" + h.NetNS)
	if !ok1 || !ok2 || id != own {
		return 0
	}
	return pid
}

// StopSSHD kills (SIGKILL) the host's sshd: the listener and every
// connection process, so new dials are refused and open connections drop,
// as when the host's sshd dies mid-deploy. Commands that SSH sessions
// started may keep running (see KillAll). Stopping a stopped sshd is not
// an error.
func (h *Host) StopSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := killNetns([]string{h.NetNS}, func(pid int) bool { return procComm(pid) != "sshd" }, nil, scale.D(5*time.Second))
	h.liveProcs()
	return err
}

// KillAll kills every process in the host's network namespace (sshd and
// whatever runs on the host), as a host crash would. StartSSHD brings sshd
// back; the host's files in Root stay.
func (h *Host) KillAll() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	reapers := map[int]bool{}
	for _, p := range h.liveProcs() {
		reapers[p.pid] = true
	}
	err := killNetns([]string{h.NetNS}, nil, reapers, scale.D(5*time.Second))
	h.endReapers()
	if err2 := killNetns([]string{h.NetNS}, nil, nil, scale.D(5*time.Second)); err == nil {
		err = err2
	}
	return err
}

// Exec runs command with /bin/sh -c on the host, as the deploy user, in the
// host's network namespace and mount and UTS namespaces like sshd's (Root
// on /srv/deployment, hostname Name), in the user's home directory. It does not use SSH, so
// it works while sshd is stopped or the host is blackholed. It returns the
// command's stdout; a non-zero exit is an error that includes stderr. Do
// not start long-running services with it (use an SSH session): the harness
// waits for the command and kills it only through the context.
func (h *Host) Exec(command string) (string, error) {
	return h.ExecContext(context.Background(), command)
}

// ExecContext is Exec with a context that kills the command when done.
func (h *Host) ExecContext(ctx context.Context, command string) (string, error) {
	f := h.f
	argv := h.inHost(tools.setpriv, "--reuid="+strconv.Itoa(f.uid), "--regid="+strconv.Itoa(f.gid), "--init-groups", "--", "/bin/sh", "-c", command)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{
		"HOME=" + f.home, "USER=" + f.User, "LOGNAME=" + f.User, "SHELL=/bin/sh",
		"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C",
	}
	if st, err := os.Stat(f.home); err == nil && st.IsDir() {
		cmd.Dir = f.home
	}
	cmd.WaitDelay = scale.D(2 * time.Second)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("fleet: %s: %q: %w: %s", h.Name, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// blackholeMAC is a locally administered address no interface has: frames
// to it go nowhere.
const blackholeMAC = "02:00:00:de:ad:01"

// Blackhole makes the host unreachable without telling anyone: its veth
// goes down (so it reaches nothing either) and the root namespace resolves
// its address to a MAC no interface has, so dials from the deployment host
// time out instead of failing fast and open connections stall. Processes
// on the host keep running.
func (h *Host) Blackhole() error {
	return ipBatch("", false, []string{
		"neigh replace " + h.IP + " lladdr " + blackholeMAC + " dev " + h.f.Bridge + " nud permanent",
		"link set " + h.Veth + " down",
	})
}

// Unblackhole undoes Blackhole.
func (h *Host) Unblackhole() error {
	_ = ipBatch("", false, []string{"neigh del " + h.IP + " dev " + h.f.Bridge})
	return ipBatch("", false, []string{"link set " + h.Veth + " up"})
}

// lineLog copies a process's output, line by line with a prefix, to an
// optional writer and keeps the last lines for error messages.
type lineLog struct {
	prefix string
	out    io.Writer

	mu      sync.Mutex
	partial []byte
	last    []string
}

func newLineLog(prefix string, out io.Writer) *lineLog {
	return &lineLog{prefix: prefix, out: out}
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.partial[:i]), "\r")
		l.partial = l.partial[i+1:]
		if l.out != nil {
			fmt.Fprintf(l.out, "%s%s\n", l.prefix, line)
		}
		l.last = append(l.last, line)
		if len(l.last) > 50 {
			l.last = l.last[1:]
		}
	}
	return len(p), nil
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(append(l.last, string(l.partial)), "\n")
}
