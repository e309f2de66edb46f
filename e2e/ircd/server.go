package ircd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"github.com/ergochat/irc-go/ircfmt"
	"github.com/ergochat/irc-go/ircmsg"
	"golang.org/x/sys/unix"
)

// Paths of the Debian packages (dpkg -L anope). anopeModulesDir is what
// Anope's --modulesdir wants: the directory that holds modules/.
const (
	anopeModulesDir = "/usr/lib/anope"
	anopeLocaleDir  = "/usr/share/anope/locale"
)

// ControlNick is the nick of the harness's own connection to the server:
// an oper that Register, Kill and OperCommand use, and that sends the
// ticker's empty lines. It is invisible (+i) and joins no channel.
const ControlNick = "e2e-ctl"

// startTimeout bounds each of Start's and Resume's waits.
var startTimeout = scale.D(20 * time.Second)

// ErrAccountExists is wrapped by Register's error when the account (nick)
// is already registered with services.
var ErrAccountExists = errors.New("account already registered")

// MissingError reports that something the harness needs is not installed.
// StartT skips the test on it (or fails it when CI is set).
type MissingError struct {
	What string // e.g. "inspircd"
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("ircd: %s is not installed (Debian packages inspircd and anope; scripts/install-deps.sh installs them)", e.What)
}

// Options configure Start.
type Options struct {
	// Port is the plaintext client port on 127.0.0.1; 0 picks a free port.
	Port int
	// TLS adds a TLS client listener on TLSPort with a self-signed
	// certificate made in Go (Server.CACert). Only then is InspIRCd's
	// ssl_gnutls module loaded: InspIRCd 3.15 can crash on shutdown with it,
	// so core dumps of the server are switched off.
	TLS bool
	// TLSPort is the TLS client port when TLS is set; 0 picks a free port.
	TLSPort int
	// FloodProtection keeps InspIRCd's default flood protection (1 line/s
	// after a burst of about 10, fakelag), for tests of a client's own
	// pacing. false turns it off so tests run fast.
	FloodProtection bool
	// Dir is the working directory for configs, logs and Anope's database.
	// "" makes a temporary directory that Close removes; a given Dir is
	// kept (so a demo's accounts survive), and every directory above it
	// must be searchable by the user irc that Anope runs as.
	Dir string
	// Log, when set, receives the servers' stdout and stderr, each line
	// prefixed "inspircd: " or "anope: ". Without it (and without the
	// environment variable E2E_IRCD_LOG set, which sends them to stderr),
	// only the last lines are kept, for error messages.
	Log io.Writer
	// HistoryChannels are permanent channels (they exist before anyone
	// joins and are recreated by a Restart) that replay their last 100
	// messages of the hour to whoever joins (InspIRCd's chanhistory): a
	// client back after a restart sees what was said before it rejoined.
	HistoryChannels []string
	// NoTicker turns off the ticker: the control connection's empty line
	// right after each change of the wall-clock second, which makes
	// InspIRCd complete pending registrations at once instead of up to a
	// second later (see the package documentation).
	NoTicker bool
}

// Server is a running InspIRCd with Anope linked to it, on loopback.
type Server struct {
	// Addr is the plaintext client address, 127.0.0.1:port.
	Addr string
	// TLSAddr is the TLS client address when Options.TLS is set.
	TLSAddr string
	// CACert is the PEM of the TLS listener's self-signed certificate
	// (when Options.TLS is set); a client trusts the server by adding it to
	// its RootCAs (see ClientTLSConfig).
	CACert []byte
	// Dir is the working directory: inspircd/ (inspircd.conf, inspircd.log,
	// written when InspIRCd exits) and anope/ (conf, db, log).
	Dir string
	// Ready is how long the last Start, Resume or Restart took from
	// launching InspIRCd to services answering.
	Ready time.Duration

	opts                  Options
	ownDir                bool
	ircdDir, anopeDir     string
	inspircdBin, anopeBin string
	cred                  *syscall.Credential // Anope's user, when running as root
	operName, operPass    string
	out                   *logSink

	mu       sync.Mutex        // serializes every method below
	accounts map[string]string // folded account → password, registered here
	ircd     *proc
	anope    *proc
	ctl      *Client
	tickStop chan struct{}
	tickDone chan struct{}
	closed   bool
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start writes the configurations, starts InspIRCd, then Anope, and returns
// when a client can register and NickServ answers. On any error it stops
// whatever it started. A missing binary gives a *MissingError.
func Start(opts Options) (*Server, error) {
	s := &Server{opts: opts}
	if err := s.init(); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.startDaemons(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// StartT is Start for tests: it registers Close with t.Cleanup. When
// InspIRCd or Anope is not installed it fails the test naming what is
// missing if the environment variable CI is set, and skips it otherwise;
// any other error fails the test.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	s, err := Start(opts)
	var missing *MissingError
	if errors.As(err, &missing) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatalf("ircd.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("ircd: Close: %v", err)
		}
	})
	return s
}

func (s *Server) init() error {
	var err error
	if s.inspircdBin, err = findBinary("inspircd"); err != nil {
		return err
	}
	if s.anopeBin, err = findBinary("anope"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(anopeModulesDir, "modules", "inspircd3.so")); err != nil {
		return &MissingError{What: "Anope's inspircd3 protocol module (" + anopeModulesDir + "/modules/inspircd3.so)"}
	}

	logw := s.opts.Log
	if logw == nil && os.Getenv("E2E_IRCD_LOG") != "" {
		logw = os.Stderr
	}
	s.out = &logSink{w: logw}

	// Anope refuses to run as root without a pause: run it as irc.
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("irc"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		}
	}

	// Working directory.
	if s.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "deploybot-ircd-")
		if err != nil {
			return err
		}
		s.Dir, s.ownDir = dir, true
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	} else {
		dir, err := filepath.Abs(s.opts.Dir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		s.Dir = dir
	}
	if s.cred != nil {
		if err := checkSearchable(s.Dir, s.cred.Uid); err != nil {
			return err
		}
	}
	s.ircdDir = filepath.Join(s.Dir, "inspircd")
	s.anopeDir = filepath.Join(s.Dir, "anope")
	for _, d := range []string{s.ircdDir, s.anopeDir, filepath.Join(s.anopeDir, "conf"), filepath.Join(s.anopeDir, "db"), filepath.Join(s.anopeDir, "db", "backups"), filepath.Join(s.anopeDir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	// Ports.
	port, tlsPort := s.opts.Port, s.opts.TLSPort
	want := 1 // link port
	if port == 0 {
		want++
	}
	if s.opts.TLS && tlsPort == 0 {
		want++
	}
	for _, p := range []int{port, tlsPort} {
		if p != 0 {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				return fmt.Errorf("ircd: port %d is not free: %w", p, err)
			}
			l.Close()
		}
	}
	ports, err := freePorts(want)
	if err != nil {
		return err
	}
	linkPort := ports[0]
	ports = ports[1:]
	if port == 0 {
		port, ports = ports[0], ports[1:]
	}
	if s.opts.TLS && tlsPort == 0 {
		tlsPort = ports[0]
	}
	if !s.opts.TLS {
		tlsPort = 0
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// TLS certificate.
	if s.opts.TLS {
		s.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		cert, key, err := selfSigned()
		if err != nil {
			return err
		}
		s.CACert = cert
		if err := os.WriteFile(filepath.Join(s.ircdDir, "cert.pem"), cert, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.ircdDir, "key.pem"), key, 0o600); err != nil {
			return err
		}
	}

	// Configurations.
	linkPass := randomHex(12)
	s.operName, s.operPass = "e2eadmin", randomHex(12)
	ic := inspircdConfig{
		dir: s.ircdDir, port: port, tlsPort: tlsPort, linkPort: linkPort,
		linkPassword: linkPass, operName: s.operName, operPassword: s.operPass,
		flood:   s.opts.FloodProtection,
		history: s.opts.HistoryChannels,
	}
	if err := os.WriteFile(filepath.Join(s.ircdDir, "inspircd.conf"), []byte(ic.render()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.ircdDir, "motd.txt"), []byte("deploybot e2e test server on loopback\n"), 0o644); err != nil {
		return err
	}
	seed, _ := rand.Int(rand.Reader, big.NewInt(9000000))
	ac := anopeConfig{
		confDir: filepath.Join(s.anopeDir, "conf"), dbDir: filepath.Join(s.anopeDir, "db"),
		linkPort: linkPort, linkPassword: linkPass, seed: int(seed.Int64()) + 1000000,
	}
	if err := os.WriteFile(filepath.Join(ac.confDir, "services.conf"), []byte(ac.render()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ac.confDir, "services.motd"), []byte("deploybot e2e services\n"), 0o644); err != nil {
		return err
	}
	if s.cred != nil {
		uid, gid := int(s.cred.Uid), int(s.cred.Gid)
		err := filepath.WalkDir(s.anopeDir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// startDaemons starts InspIRCd, Anope and the control connection, and
// waits until services answer.
func (s *Server) startDaemons() (err error) {
	defer func() {
		if err != nil {
			s.stopDaemons()
		}
	}()
	t0 := time.Now()
	deadline := t0.Add(startTimeout)

	args := []string{"--config", filepath.Join(s.ircdDir, "inspircd.conf"), "--nofork"}
	if os.Geteuid() == 0 {
		args = append(args, "--runasroot")
	}
	if s.ircd, err = s.spawn("inspircd", s.inspircdBin, args, s.ircdDir, nil); err != nil {
		return err
	}
	if err := s.waitListening(deadline); err != nil {
		return err
	}

	args = []string{
		"--confdir=" + filepath.Join(s.anopeDir, "conf"),
		"--dbdir=" + filepath.Join(s.anopeDir, "db"),
		"--logdir=" + filepath.Join(s.anopeDir, "log"),
		"--modulesdir=" + anopeModulesDir,
		"--localedir=" + anopeLocaleDir,
		"--nofork",
	}
	if s.anope, err = s.spawn("anope", s.anopeBin, args, s.anopeDir, s.cred); err != nil {
		return err
	}

	// The control connection registers while Anope links.
	ctl, err := Dial(s.Addr, ClientOptions{Nick: ControlNick, User: "e2ectl", CapReq: []string{}, Timeout: time.Until(deadline)})
	if err != nil {
		return fmt.Errorf("control connection: %w%s", err, s.out.tail())
	}
	s.ctl = ctl
	msgs, err := ctl.roundTrip(deadline, "OPER "+s.operName+" "+s.operPass, "MODE "+ControlNick+" +i")
	if err != nil {
		return fmt.Errorf("control connection: OPER: %w", err)
	}
	opered := false
	for _, m := range msgs {
		if m.Command == "381" {
			opered = true
		}
	}
	if !opered {
		return fmt.Errorf("control connection: OPER failed: %s", describe(msgs))
	}
	if !s.opts.NoTicker {
		s.tickStop, s.tickDone = make(chan struct{}), make(chan struct{})
		go ticker(ctl, s.tickStop, s.tickDone)
	}

	if err := s.waitServices(deadline); err != nil {
		return err
	}
	s.Ready = time.Since(t0)
	return nil
}

// waitListening waits until InspIRCd accepts TCP connections.
func (s *Server) waitListening(deadline time.Time) error {
	for {
		c, err := net.DialTimeout("tcp", s.Addr, scale.D(100*time.Millisecond))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.ircd.done:
			return fmt.Errorf("inspircd exited (%v) before listening on %s%s", s.ircd.err, s.Addr, s.out.tail())
		case <-time.After(scale.D(5 * time.Millisecond)):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("inspircd does not listen on %s after %v: %v%s", s.Addr, startTimeout, err, s.out.tail())
		}
	}
}

// waitServices asks NickServ about the control nick until it answers (one
// NOTICE line, "Nick e2e-ctl isn't registered."): then Anope is linked and
// has finished its burst, and SASL works.
func (s *Server) waitServices(deadline time.Time) error {
	for {
		seq := s.ctl.next()
		if err := s.ctl.Raw("PRIVMSG NickServ :INFO " + ControlNick); err != nil {
			return err
		}
		m, err := s.ctl.await(&seq, deadline, Or(IsNoticeFrom("NickServ", ControlNick), IsCommand("401")))
		if err != nil {
			return fmt.Errorf("waiting for NickServ: %w%s", err, s.out.tail())
		}
		if m.Command == "NOTICE" {
			return nil
		}
		select {
		case <-s.anope.done:
			return fmt.Errorf("anope exited (%v) before linking%s", s.anope.err, s.out.tail())
		case <-time.After(scale.D(10 * time.Millisecond)):
		}
	}
}

// ticker sends an empty line right after each change of the wall-clock
// second. InspIRCd's main loop completes registrations (and decays flood
// penalties) only in its first pass of a new second, and it sleeps up to a
// second when idle: the line wakes it, so a registration finishes at the
// next second boundary instead of up to a second after it. The server
// ignores empty lines; nothing is answered.
func ticker(ctl *Client, stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-ctl.Done():
			return
		case <-time.After(untilNextSecond()):
		}
		if ctl.Raw("") != nil {
			return
		}
	}
}

// stopDaemons stops the ticker, the control connection, Anope (which saves
// its database) and InspIRCd.
func (s *Server) stopDaemons() {
	if s.tickStop != nil {
		close(s.tickStop)
		<-s.tickDone
		s.tickStop, s.tickDone = nil, nil
	}
	if s.ctl != nil {
		s.ctl.Close()
		s.ctl = nil
	}
	terminate(s.anope)
	s.anope = nil
	terminate(s.ircd)
	s.ircd = nil
}

// Close stops both servers (by process group: SIGTERM, then SIGKILL after
// 5 s), waits for them, and removes the working directory if Start made
// it. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.cleanup()
}

func (s *Server) cleanup() error {
	s.stopDaemons()
	if s.ownDir && s.Dir != "" {
		return os.RemoveAll(s.Dir)
	}
	return nil
}

// Stop stops InspIRCd and Anope but keeps the working directory, ports and
// accounts, so that Resume can start them again: clients see the server
// go away (for reconnect tests).
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ircd: server is closed")
	}
	s.stopDaemons()
	return nil
}

// Resume starts InspIRCd and Anope again after Stop, on the same ports and
// with the same accounts, and waits until they are ready.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ircd: server is closed")
	}
	if s.ircd != nil {
		return errors.New("ircd: server is running")
	}
	return s.startDaemons()
}

// Restart stops InspIRCd and Anope and starts them again on the same ports
// (accounts are kept: Anope saves its database on SIGTERM). Every client
// is disconnected; new ones can connect when Restart returns.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ircd: server is closed")
	}
	s.stopDaemons()
	return s.startDaemons()
}

// Register registers a services account with NickServ: the password is
// password, the e-mail address e2e@example.org, and the account is usable
// at once (no confirmation). It does so over the harness's control
// connection rather than a new one (a new connection costs up to a second
// in InspIRCd): NICK account, PRIVMSG NickServ :REGISTER, wait for
// NickServ's confirmation, LOGOUT, NICK back. account must therefore be a
// valid nick not in use. If the account exists, the error wraps
// ErrAccountExists — unless it was registered through this Server with
// the same password: then Register does nothing, so tests sharing a server
// can run more than once (go test -count).
func (s *Server) Register(account, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctl := s.ctl
	if ctl == nil {
		return errors.New("ircd: server is not running")
	}
	if pw, ok := s.accounts[FoldNick(account)]; ok && pw == password {
		return nil
	}
	deadline := time.Now().Add(scale.D(10 * time.Second))
	seq := ctl.next()
	if err := ctl.Raw("NICK " + account); err != nil {
		return err
	}
	m, err := ctl.await(&seq, deadline, func(m ircmsg.Message) bool {
		if m.Command == "NICK" && len(m.Params) > 0 && equalFold(m.Params[0], account) {
			return true
		}
		switch m.Command {
		case "431", "432", "433", "436", "437", "438":
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("ircd: register %q: NICK: %w", account, err)
	}
	if m.Command != "NICK" {
		return fmt.Errorf("ircd: register %q: cannot take the nick: %s %s", account, m.Command, strings.Join(m.Params, " "))
	}
	defer func() {
		seq := ctl.next()
		ctl.Raw("NICK " + ControlNick)
		ctl.await(&seq, time.Now().Add(scale.D(5*time.Second)), func(m ircmsg.Message) bool {
			return m.Command == "NICK" || m.Command == "433" || m.Command == "432"
		})
	}()

	if err := ctl.Raw("PRIVMSG NickServ :REGISTER " + password + " e2e@example.org"); err != nil {
		return err
	}
	m, err = ctl.await(&seq, deadline, IsNoticeFrom("NickServ", ""))
	if err != nil {
		return fmt.Errorf("ircd: register %q: waiting for NickServ: %w", account, err)
	}
	text := ircfmt.Strip(Text(m))
	lower := strings.ToLower(text)
	if !strings.HasPrefix(FoldNick(lower), FoldNick("nickname "+account+" registered")) {
		if strings.Contains(lower, "already registered") || strings.Contains(lower, "is registered") {
			return fmt.Errorf("ircd: register %q: NickServ: %s: %w", account, text, ErrAccountExists)
		}
		return fmt.Errorf("ircd: register %q: NickServ: %s", account, text)
	}

	if err := ctl.Raw("PRIVMSG NickServ :LOGOUT"); err != nil {
		return err
	}
	if _, err := ctl.await(&seq, deadline, And(IsNoticeFrom("NickServ", ""), TextContains("logged out"))); err != nil {
		return fmt.Errorf("ircd: register %q: LOGOUT: %w", account, err)
	}
	if s.accounts == nil {
		s.accounts = map[string]string{}
	}
	s.accounts[FoldNick(account)] = password
	return nil
}

// Oper returns the name and password of the generated <oper> block (all
// commands and privileges), for a test client's OPER command.
func (s *Server) Oper() (name, password string) { return s.operName, s.operPass }

// Kill disconnects nick with KILL from the harness's oper connection, as a
// network operator would. It returns an error if the server refused (for
// example 401 no such nick).
func (s *Server) Kill(nick, reason string) error {
	msgs, err := s.OperCommand("KILL " + nick + " :" + reason)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if isErrorNumeric(m.Command) {
			return fmt.Errorf("ircd: KILL %s: %s %s", nick, m.Command, strings.Join(m.Params, " "))
		}
	}
	return nil
}

// OperCommand sends line on the harness's oper connection (e.g.
// "SAMODE #chan +o deploybot", "SAJOIN nick #chan") and returns what the
// server answered to it: every message received until a PING round trip
// completes. Replies that pass through services are not waited for.
func (s *Server) OperCommand(line string) ([]ircmsg.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctl == nil {
		return nil, errors.New("ircd: server is not running")
	}
	return s.ctl.roundTrip(time.Now().Add(scale.D(10*time.Second)), line)
}

// Output returns the last lines the servers wrote to stdout and stderr.
func (s *Server) Output() string { return s.out.String() }

func isErrorNumeric(cmd string) bool {
	n, err := strconv.Atoi(cmd)
	return err == nil && n >= 400 && n < 600
}

func describe(msgs []ircmsg.Message) string {
	var parts []string
	for _, m := range msgs {
		parts = append(parts, m.Command+" "+strings.Join(m.Params, " "))
	}
	if len(parts) == 0 {
		return "no reply"
	}
	return strings.Join(parts, "; ")
}

func (s *Server) spawn(name, bin string, args []string, dir string, cred *syscall.Credential) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	w := s.out.prefixed(name)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: cred,
		// If the test binary dies without Close, so do the servers.
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.WaitDelay = scale.D(2 * time.Second)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// No core dumps (InspIRCd 3.15 may crash on shutdown with ssl_gnutls).
	unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil)
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		status := "exit status 0"
		if p.err != nil {
			status = p.err.Error()
		}
		s.out.add(name + ": (process " + strconv.Itoa(cmd.Process.Pid) + " ended: " + status + ")")
		close(p.done)
	}()
	return p, nil
}

// terminate stops p's process group: SIGTERM, then SIGKILL after 5 s.
func terminate(p *proc) {
	if p == nil {
		return
	}
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(scale.D(5 * time.Second)):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingError{What: name}
}

// checkSearchable checks that user uid can reach dir: every directory from
// / down to dir must be searchable by it.
func checkSearchable(dir string, uid uint32) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		ok = ok && (st.Uid == uid && fi.Mode()&0o100 != 0 || fi.Mode()&0o001 != 0)
		if !ok {
			return fmt.Errorf("ircd: Anope runs as uid %d and cannot enter %s (mode %v): chmod o+x it or choose another Options.Dir", uid, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// logSink keeps the last lines of the servers' output and copies them to
// w when set.
type logSink struct {
	w     io.Writer
	mu    sync.Mutex
	lines []string
}

const logSinkLines = 60

func (l *logSink) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > logSinkLines {
		l.lines = l.lines[len(l.lines)-logSinkLines:]
	}
	if l.w != nil {
		io.WriteString(l.w, line+"\n")
	}
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// tail is String formatted for the end of an error message.
func (l *logSink) tail() string {
	s := l.String()
	if s == "" {
		return ""
	}
	return "\nserver output (last lines):\n" + s
}

func (l *logSink) prefixed(name string) io.Writer { return &prefixWriter{sink: l, prefix: name + ": "} }

type prefixWriter struct {
	sink   *logSink
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		p.sink.add(p.prefix + strings.TrimRight(string(p.buf[:i]), "\r"))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
