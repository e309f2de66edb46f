// Command deploybot-sandbox runs deploybot on a local sandbox for `make
// demo`, a playground where `!deploy demo` really deploys. It starts:
//
//   - a real InspIRCd + Anope on the address the sandbox configuration
//     names, with the bot's services account and a user account (-user,
//     -password) to try it with;
//   - a fleet of real sshd hosts (e2e/fleet), one for every host the
//     configuration's service lists, canary and groups in order;
//   - the demo service (e2e/testdata/svc, built here) and its upstream
//     git repository, with two good revisions on main and a bad one (its
//     health check answers 500) on the branch "bad";
//
// then writes a runtime copy of the configuration with the fleet's values
// (sandbox-data/sandbox.runtime.yaml, see examples/sandbox.yaml), runs
// `deploybot serve` (the binary named by -bin) on it until interrupted,
// and tears everything down.
//
// Everything it creates lives in the data directory (-data, default
// sandbox-data next to the configuration), but for the IRC servers' and
// (when the data directory is not searchable by the fleet's user) the
// fleet's temporary directories; the fleet, the upstream, the deploy
// repository and the deploy journals are made anew at every start, the SAL
// is kept. It needs root, like the servers it starts.
//
// SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) all stop it
// the same way: `deploybot serve` first, then the fleet and the IRC
// servers, removing what they created. One sandbox runs per data
// directory; a sandbox that was killed (SIGKILL) leaves its network
// namespaces, bridge, processes and temporary directories, and the next
// start on the same data directory removes them first (leftovers.go).
//
// It wires the test harnesses of e2e/ to the bot; it is not meant for
// production.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"deploybot/config"
	"deploybot/e2e/fleet"
	"deploybot/e2e/ircd"
)

func main() {
	path := flag.String("c", "examples/sandbox.yaml", "sandbox configuration `file`")
	data := flag.String("data", "", "`directory` for everything the sandbox creates (default: sandbox-data next to the configuration)")
	user := flag.String("user", "alice", "services account to register for you (made a deployer)")
	pass := flag.String("password", "sandbox-alice", "its password")
	bin := flag.String("bin", "bin/deploybot", "the deploybot `binary` to run")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *data == "" {
		*data = filepath.Join(filepath.Dir(*path), "sandbox-data")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	s := &sandbox{path: *path, data: *data, user: *user, pass: *pass, bin: *bin}
	err := s.run(ctx)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "deploybot-sandbox:", err)
		os.Exit(1)
	}
	fmt.Println("deploybot-sandbox: stopped")
}

type sandbox struct {
	path, data, user, pass, bin string

	cfg      *config.Config
	service  string
	runtime  string // the runtime configuration's path
	irc      *ircd.Server
	fleet    *fleet.Fleet
	upstream *upstream
	serve    string   // deploy.serve
	fresh    []string // what is made anew at every start
	lock     *os.File // the data directory's lock, held while running
	state    state    // what outlives the sandbox if it dies
}

func (s *sandbox) run(ctx context.Context) (err error) {
	if err := s.prepare(); err != nil {
		return err
	}
	if err := s.claim(); err != nil {
		return err
	}
	defer s.release()
	cfg := s.cfg

	_, portStr, err := net.SplitHostPort(cfg.IRC.Server)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	fmt.Printf("starting InspIRCd + Anope on %s …\n", cfg.IRC.Server)
	s.irc, err = ircd.Start(ircd.Options{Port: port})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the IRC servers …")
		if cerr := s.irc.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	s.state.ircdDir = s.irc.Dir
	if err := s.saveState(); err != nil {
		return err
	}
	if cfg.IRC.SASL != nil {
		if err := s.irc.Register(cfg.IRC.SASL.Account, cfg.IRC.SASL.Password.Reveal()); err != nil {
			return fmt.Errorf("registering the bot's account: %w", err)
		}
	}
	if err := s.irc.Register(s.user, s.pass); err != nil {
		return fmt.Errorf("registering %s: %w", s.user, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	if err := s.clear(); err != nil {
		return err
	}
	if err := s.startFleet(); err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the fleet …")
		if cerr := s.fleet.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}

	svc := cfg.Services[s.service]
	s.upstream = &upstream{
		dir:       svc.Upstream,
		svcBin:    filepath.Join(s.fleet.Dir, "svc"),
		targetDir: svc.TargetDir,
		port:      svc.Port,
		gitName:   "Sandbox User",
		gitEmail:  "sandbox@example.org",
	}
	fmt.Printf("building the demo service and its upstream repository …\n")
	defer os.Remove(s.upstream.svcBin)
	if err := buildService(ctx, s.upstream.svcBin); err != nil {
		return err
	}
	if err := s.upstream.create(ctx); err != nil {
		return err
	}

	s.serve, err = freePort(s.fleet.GatewayIP)
	if err != nil {
		return err
	}
	var hosts []string
	for _, h := range s.fleet.Hosts {
		hosts = append(hosts, h.IP)
	}
	s.runtime = filepath.Join(s.data, "sandbox.runtime.yaml")
	rc := runtimeConfig{Serve: s.serve, User: s.fleet.User, KeyFile: s.fleet.KeyFile, KnownHosts: s.fleet.KnownHostsFile, Hosts: hosts, Deployer: s.user}
	if err := writeRuntimeConfig(s.path, cfg, s.service, rc, s.runtime); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	s.printInstructions(os.Stdout)

	return s.runServe(ctx)
}

// runServe runs `deploybot serve` until it stops or ctx is done, then stops
// it (SIGINT, SIGKILL after 30 s). It runs in its own process group, so a
// terminal's SIGINT or SIGHUP reaches only the sandbox, which stops it in
// order; if the sandbox dies, it gets SIGTERM (Pdeathsig).
func (s *sandbox) runServe(ctx context.Context) error {
	serve := exec.Command(s.bin, "serve", "-c", s.runtime)
	serve.Stdout, serve.Stderr = os.Stdout, os.Stderr
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := serve.Start(); err != nil {
		return err
	}
	s.state.servePid, s.state.serveStart = serve.Process.Pid, fleet.ProcStart(serve.Process.Pid)
	if err := s.saveState(); err != nil {
		fmt.Fprintln(os.Stderr, "deploybot-sandbox:", err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("deploybot serve stopped: %v", err)
	case <-ctx.Done():
	}
	fmt.Println("stopping deploybot serve …")
	_ = serve.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "deploybot serve:", err)
		}
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "deploybot serve did not stop in 30s: killing it")
		_ = serve.Process.Kill()
		<-done
	}
	return nil
}

// prepare loads the configuration and checks that everything the sandbox
// makes anew (see clear) lives in the data directory.
func (s *sandbox) prepare() error {
	cfg, err := config.Load(s.path)
	if err != nil {
		return err
	}
	s.cfg = cfg
	if len(cfg.Services) != 1 {
		return fmt.Errorf("%s: want exactly one service (the sandbox builds one fleet and one upstream), have %d", s.path, len(cfg.Services))
	}
	for name := range cfg.Services {
		s.service = name
	}
	if s.data, err = filepath.Abs(s.data); err != nil {
		return err
	}
	if err := os.MkdirAll(s.data, 0o755); err != nil {
		return err
	}
	// The fleet's user reads the fleet's files (and runs the service) in
	// there.
	if err := os.Chmod(s.data, 0o755); err != nil {
		return err
	}
	svc := cfg.Services[s.service]
	fresh := []string{cfg.Deploy.DeployDir, cfg.Deploy.JournalDir, svc.Upstream, filepath.Join(s.data, "fleet")}
	for _, p := range fresh {
		if !filepath.IsAbs(p) || !strings.HasPrefix(p, s.data+string(filepath.Separator)) {
			return fmt.Errorf("%s: %s is not in the sandbox's data directory %s: the sandbox makes deploy.deploy_dir, deploy.journal_dir and the upstream anew at every start, and removes nothing elsewhere", s.path, p, s.data)
		}
	}
	s.fresh = fresh
	return nil
}

// clear removes what the previous run left of what is made anew.
func (s *sandbox) clear() error {
	for _, p := range s.fresh {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// startFleet starts one host for every host the service lists, in
// data/fleet when every directory above it is searchable by the fleet's
// user, in a temporary directory otherwise.
func (s *sandbox) startFleet() error {
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	root, err := parseYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %v", s.path, err)
	}
	n := len(serviceHosts(root, s.service))
	dir := filepath.Join(s.data, "fleet")
	if !searchable(s.data) {
		dir = "" // a temporary directory
	}
	fmt.Printf("starting a fleet of %d sshd hosts …\n", n)
	s.fleet, err = fleet.Start(fleet.Options{Hosts: n, Dir: dir, Log: harnessLines{os.Stdout}})
	return err
}

// searchable reports whether dir and every directory above it can be
// searched by others.
func searchable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// harnessLines passes on the fleet harness's own lines, not sshd's logs.
type harnessLines struct{ w io.Writer }

func (h harnessLines) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "fleet: ") {
		return h.w.Write(p)
	}
	return len(p), nil
}
