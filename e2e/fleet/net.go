package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"deploybot/e2e/scale"
)

// Names. Every interface and namespace a fleet creates starts with
// namePrefix followed by the fleet's slot number:
//
//	bridge      dbt<slot>b          e.g. dbt7b
//	veth        dbt<slot>h<i>       e.g. dbt7h12 (root side; eth0 inside)
//	netns       dbt<slot>-hostNN    e.g. dbt7-host12
//
// and the fleet's subnet is 10.200.<slot>.0/24 with the gateway at .1.
const namePrefix = "dbt"

// linkGroup is the interface group (ip link … group) of a slot's bridge
// and veths, so that they can be deleted at once. Never 0, the default
// group of every other interface.
func linkGroup(slot int) string { return strconv.Itoa(0x44420000 + slot) }

// stateDir holds the lock file and one file per allocated slot.
const stateDir = "/run/deploybot-fleet"

var (
	linkRe  = regexp.MustCompile(`^` + namePrefix + `(\d+)(b|h\d+)$`)
	netnsRe = regexp.MustCompile(`^` + namePrefix + `(\d+)-`)
)

// tools are the absolute paths of the programs a fleet runs.
type toolPaths struct {
	ip, unshare, setpriv, sshd, useradd, usermod, sh string
	ipv6                                             bool // /proc/sys/net/ipv6 exists
	sshdMajor, sshdMinor                             int
}

var (
	toolsOnce sync.Once
	tools     toolPaths
	toolsErr  error
)

// stdPath is PATH for every command the harness starts.
const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range filepath.SplitList(stdPath) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// Check reports why this machine cannot run a fleet: not root, missing
// CAP_SYS_ADMIN or CAP_NET_ADMIN, or a missing program (sshd at
// /usr/sbin/sshd from openssh-server; ip from iproute2; unshare, setpriv and
// mount from util-linux; useradd and usermod from passwd; /bin/sh). It
// returns nil when everything is there. scripts/install-deps.sh installs
// the packages.
func Check() error {
	toolsOnce.Do(func() { tools, toolsErr = findTools() })
	return toolsErr
}

func findTools() (toolPaths, error) {
	var t toolPaths
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root privileges (running as uid "+itoa(os.Geteuid())+")")
	} else if caps, err := effectiveCaps(); err == nil {
		const capNetAdmin, capSysAdmin = 12, 21
		if caps&(1<<capNetAdmin) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if caps&(1<<capSysAdmin) == 0 {
			missing = append(missing, "CAP_SYS_ADMIN")
		}
	}
	find := func(dst *string, name, pkg string) {
		p, err := lookTool(name)
		if err != nil {
			missing = append(missing, name+" (package "+pkg+")")
			return
		}
		*dst = p
	}
	if st, err := os.Stat("/usr/sbin/sshd"); err == nil && st.Mode().IsRegular() {
		t.sshd = "/usr/sbin/sshd"
	} else {
		find(&t.sshd, "sshd", "openssh-server")
	}
	find(&t.ip, "ip", "iproute2")
	find(&t.unshare, "unshare", "util-linux")
	find(&t.setpriv, "setpriv", "util-linux")
	var mount string
	find(&mount, "mount", "mount")
	find(&t.useradd, "useradd", "passwd")
	find(&t.usermod, "usermod", "passwd")
	find(&t.sh, "sh", "dash")
	if t.sh != "" {
		t.sh = "/bin/sh"
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("fleet: needs %s (scripts/install-deps.sh installs the packages; run the tests as root)", strings.Join(missing, ", "))
	}
	_, err := os.Stat("/proc/sys/net/ipv6")
	t.ipv6 = err == nil
	t.sshdMajor, t.sshdMinor = sshdVersion(t.sshd)
	return t, nil
}

func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff")
}

var sshdVersionRe = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// sshdVersion runs `sshd -V` (it prints the version and exits non-zero).
func sshdVersion(path string) (major, minor int) {
	out, _ := exec.Command(path, "-V").CombinedOutput()
	m := sshdVersionRe.FindSubmatch(out)
	if m == nil {
		return 0, 0
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	return major, minor
}

func commandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + stdPath, "LC_ALL=C"}
	cmd.WaitDelay = scale.D(2 * time.Second)
	return cmd
}

// ipBatch runs `ip [-n NS] [-force] -batch -` with the given lines.
func ipBatch(netns string, force bool, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	var args []string
	if netns != "" {
		args = append(args, "-n", netns)
	}
	if force {
		args = append(args, "-force")
	}
	args = append(args, "-batch", "-")
	_, err := run(context.Background(), strings.Join(lines, "\n")+"\n", tools.ip, args...)
	return err
}

// The machine-wide lock: an in-process mutex plus flock on a file in
// stateDir, so fleets in separate test processes allocate slots one at a
// time.
var lockMu sync.Mutex

func withLock(fn func() error) error {
	lockMu.Lock()
	defer lockMu.Unlock()
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("fleet: lock %s: %w", lf.Name(), err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return fn()
}

func slotFile(slot int) string { return filepath.Join(stateDir, "slot-"+itoa(slot)) }

// slotInfo is what a slot file records about the fleet owning the slot.
type slotInfo struct {
	pid     int
	start   string // the owner's start time (/proc/PID/stat field 22)
	dir     string
	ownsDir bool
}

func readSlot(slot int) (slotInfo, error) {
	var si slotInfo
	b, err := os.ReadFile(slotFile(slot))
	if err != nil {
		return si, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "pid":
			si.pid, _ = strconv.Atoi(v)
		case "start":
			si.start = v
		case "dir":
			si.dir = v
		case "ownsdir":
			si.ownsDir = v == "1"
		}
	}
	return si, nil
}

// ProcStart returns a process's start time in clock ticks since boot, or
// "" if it does not exist (or is a zombie). A pid with the start time it had
// is the same process: pids are reused, start times are not.
func ProcStart(pid int) string {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return f[19]
}

func (si slotInfo) ownerAlive() bool {
	return si.pid > 0 && si.start != "" && ProcStart(si.pid) == si.start
}

// allocate, under the lock: removes stale fleets, makes sure the deploy
// user exists, picks a free slot, records it and creates the bridge.
func (f *Fleet) allocate() error {
	return withLock(func() error {
		if err := reapStaleLocked(f.opts.Log); err != nil {
			f.logf("reaping stale fleets: %v", err)
		}
		uid, gid, home, err := ensureUser(f.User)
		if err != nil {
			return err
		}
		f.uid, f.gid, f.home = uid, gid, home
		slot, err := pickSlot()
		if err != nil {
			return err
		}
		own := "0"
		if f.ownsDir {
			own = "1"
		}
		me := os.Getpid()
		content := fmt.Sprintf("pid=%d\nstart=%s\ndir=%s\nownsdir=%s\n", me, ProcStart(me), f.Dir, own)
		if err := os.WriteFile(slotFile(slot), []byte(content), 0o644); err != nil {
			return err
		}
		f.Slot = slot
		f.Subnet = fmt.Sprintf("10.200.%d.0/24", slot)
		f.GatewayIP = fmt.Sprintf("10.200.%d.1", slot)
		f.Bridge = fmt.Sprintf("%s%db", namePrefix, slot)
		if err := ipBatch("", false, []string{"link add " + f.Bridge + " mtu 65535 type bridge"}); err != nil {
			return err
		}
		disableIPv6(f.Bridge)
		return ipBatch("", false, []string{
			"link set " + f.Bridge + " group " + linkGroup(slot) + " up",
			"addr add " + f.GatewayIP + "/24 dev " + f.Bridge,
		})
	})
}

// disableIPv6 keeps a root-namespace link from sending IPv6 link-local
// traffic (router solicitations, DAD) onto the fleet bridge.
func disableIPv6(link string) {
	if tools.ipv6 {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+link+"/disable_ipv6", []byte("1"), 0o644)
	}
}

// createLinks creates every host's namespace and veth pair, with the root
// side on the bridge and eth0 (address, MTU 65535) and lo up inside.
func (f *Fleet) createLinks() error {
	var lines []string
	for _, h := range f.Hosts {
		lines = append(lines,
			"netns add "+h.NetNS,
			"link add "+h.Veth+" mtu 65535 type veth peer name eth0 mtu 65535 netns "+h.NetNS)
	}
	// `ip netns add` prepares /run/netns the first time it runs on a
	// machine; racing that across processes stacks mounts, so hold the lock.
	if err := withLock(func() error { return ipBatch("", false, lines) }); err != nil {
		return err
	}
	lines = lines[:0]
	for _, h := range f.Hosts {
		disableIPv6(h.Veth)
		lines = append(lines, "link set "+h.Veth+" group "+linkGroup(f.Slot)+" master "+f.Bridge+" up")
	}
	if err := ipBatch("", false, lines); err != nil {
		return err
	}
	return parallel(len(f.Hosts), func(i int) error {
		h := f.Hosts[i]
		in := []string{"link set lo up", "addr add " + h.IP + "/24 dev eth0"}
		if tools.ipv6 {
			in = append(in, "link set eth0 addrgenmode none")
		}
		in = append(in, "link set eth0 up")
		return ipBatch(h.NetNS, false, in)
	})
}

// ownNames lists the root-namespace links and the namespaces with this
// package's names, by slot.
func ownNames() (links, netnss map[int][]string, err error) {
	links, netnss = map[int][]string{}, map[int][]string{}
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if m := linkRe.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			links[n] = append(links[n], e.Name())
		}
	}
	ents, err = os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for _, e := range ents {
		if m := netnsRe.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			netnss[n] = append(netnss[n], e.Name())
		}
	}
	return links, netnss, nil
}

// pickSlot returns the next slot 1..254 (round robin) with no slot file, no links or
// namespaces of ours, and whose subnet overlaps no address or route of
// this machine.
func pickSlot() (int, error) {
	links, netnss, err := ownNames()
	if err != nil {
		return 0, err
	}
	nets, err := usedNets()
	if err != nil {
		return 0, err
	}
	// Start after the slot allocated last, so that a slot just released
	// is not reused at once (clearer logs, no surprise for a test that
	// checks what a closed fleet left).
	lastFile := filepath.Join(stateDir, "last")
	last := 0
	if b, err := os.ReadFile(lastFile); err == nil {
		last, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	for i := 1; i <= 254; i++ {
		slot := (last+i-1)%254 + 1
		if _, err := os.Stat(slotFile(slot)); err == nil {
			continue
		}
		if len(links[slot]) > 0 || len(netnss[slot]) > 0 {
			continue
		}
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.200.%d.0/24", slot))
		if slices.ContainsFunc(nets, func(n *net.IPNet) bool { return n.Contains(cand.IP) || cand.Contains(n.IP) }) {
			continue
		}
		_ = os.WriteFile(lastFile, []byte(itoa(slot)+"\n"), 0o644)
		return slot, nil
	}
	return 0, errors.New("fleet: no free subnet in 10.200.0.0/16")
}

// usedNets returns the networks of this machine's IPv4 addresses and of
// its routes (except the default route and routes wider than /16, which
// the fleet's more specific /24 overrides locally).
func usedNets() ([]*net.IPNet, error) {
	var nets []*net.IPNet
	out, err := run(context.Background(), "", tools.ip, "-o", "-4", "addr", "show")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if _, n, err := net.ParseCIDR(f[i+1]); err == nil {
					nets = append(nets, n)
				}
			}
		}
	}
	out, err = run(context.Background(), "", tools.ip, "-4", "route", "show")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if _, n, err := net.ParseCIDR(dst); err == nil {
			if ones, _ := n.Mask.Size(); ones >= 16 {
				nets = append(nets, n)
			}
		}
	}
	return nets, nil
}

// ReapStale removes what fleets of processes that no longer exist left
// behind (a test binary killed by a timeout cannot run Close): processes
// in their namespaces, the namespaces, links, slot files and the temporary
// directories they created. Start calls it; fleets of live processes are
// never touched.
func ReapStale() error {
	if err := Check(); err != nil {
		return err
	}
	return withLock(func() error { return reapStaleLocked(nil) })
}

func reapStaleLocked(log io.Writer) error {
	links, netnss, err := ownNames()
	if err != nil {
		return err
	}
	slots := map[int]bool{}
	for s := range links {
		slots[s] = true
	}
	for s := range netnss {
		slots[s] = true
	}
	ents, _ := os.ReadDir(stateDir)
	for _, e := range ents {
		if s, ok := strings.CutPrefix(e.Name(), "slot-"); ok {
			if n, err := strconv.Atoi(s); err == nil {
				slots[n] = true
			}
		}
	}
	var errs []error
	for slot := range slots {
		si, err := readSlot(slot)
		if err == nil && si.ownerAlive() {
			continue
		}
		if log != nil {
			fmt.Fprintf(log, "fleet: removing stale fleet in slot %d (owner pid %d gone)\n", slot, si.pid)
		}
		if err := killNetns(netnss[slot], nil, nil, scale.D(10*time.Second)); err != nil {
			errs = append(errs, err)
		}
		if err := removeSlotNet(slot); err != nil {
			errs = append(errs, err)
		}
		if si.ownsDir && strings.HasPrefix(filepath.Base(si.dir), "deploybot-fleet-") {
			if err := os.RemoveAll(si.dir); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(slotFile(slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeSlotNet deletes a slot's veths, namespaces and bridge and checks
// that none is left. Processes in the namespaces must be gone already.
func removeSlotNet(slot int) error {
	// One request deletes every link of the group with a single RCU grace
	// period; deleting veths one by one costs ~17 ms each.
	_ = ipBatch("", false, []string{"link del group " + linkGroup(slot)})
	links, netnss, err := ownNames()
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range links[slot] {
		if !strings.HasSuffix(l, "b") {
			lines = append(lines, "link del "+l)
		}
	}
	for _, n := range netnss[slot] {
		lines = append(lines, "netns del "+n)
	}
	for _, l := range links[slot] {
		if strings.HasSuffix(l, "b") {
			lines = append(lines, "link del "+l)
		}
	}
	batchErr := ipBatch("", true, lines)
	links, netnss, err = ownNames()
	if err != nil {
		return err
	}
	if left := append(links[slot], netnss[slot]...); len(left) > 0 {
		return fmt.Errorf("fleet: could not remove %s: %v", strings.Join(left, ", "), batchErr)
	}
	return nil
}

// nsID identifies a namespace by device and inode.
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	return nsID{uint64(st.Dev), st.Ino}, true
}

// netnsPids returns the live (non-zombie) processes in the given network
// namespaces, like `ip netns pids`.
func netnsPids(ids map[nsID]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if id, ok := statNS("/proc/" + e.Name() + "/ns/net"); ok && ids[id] {
			pids = append(pids, pid)
		}
	}
	return pids
}

func netnsIDs(names []string) map[nsID]bool {
	ids := map[nsID]bool{}
	for _, n := range names {
		if id, ok := statNS("/run/netns/" + n); ok {
			ids[id] = true
		}
	}
	return ids
}

// killNetns SIGKILLs every process in the named namespaces for which keep
// is nil or false, until none is left or the timeout passes. Processes in
// except are left alone (the hosts' reapers, which then reap the rest).
func killNetns(names []string, keep func(pid int) bool, except map[int]bool, timeout time.Duration) error {
	ids := netnsIDs(names)
	if len(ids) == 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range netnsPids(ids) {
			if except[pid] || (keep != nil && keep(pid)) {
				continue
			}
			left = append(left, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: processes %v in %v survive SIGKILL", left, names)
		}
		time.Sleep(scale.D(5 * time.Millisecond))
	}
}

func procComm(pid int) string {
	b, _ := os.ReadFile("/proc/" + itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// ensureUser creates the deploy user if missing (home directory, /bin/sh,
// password "*" so sshd without PAM accepts key logins) and returns its ids.
func ensureUser(name string) (uid, gid int, home string, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, "", err
		}
		if _, err := run(context.Background(), "", tools.useradd, "-m", "-s", "/bin/sh", name); err != nil {
			return 0, 0, "", err
		}
		if _, err := run(context.Background(), "", tools.usermod, "-p", "*", name); err != nil {
			return 0, 0, "", err
		}
		if u, err = user.Lookup(name); err != nil {
			return 0, 0, "", err
		}
	} else if locked, err := shadowLocked(name); err == nil && locked {
		// A locked account (useradd's default "!") is refused by sshd
		// without PAM even for key logins.
		if _, err := run(context.Background(), "", tools.usermod, "-p", "*", name); err != nil {
			return 0, 0, "", err
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if uid == 0 {
		return 0, 0, "", fmt.Errorf("fleet: deploy user %q is root; use an unprivileged user", name)
	}
	return uid, gid, u.HomeDir, nil
}

func shadowLocked(name string) (bool, error) {
	f, err := os.Open("/etc/shadow")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) >= 2 && fields[0] == name {
			return strings.HasPrefix(fields[1], "!"), nil
		}
	}
	return false, sc.Err()
}
