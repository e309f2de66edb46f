// Package pgsql starts a real, throwaway PostgreSQL server on this machine
// for deploybot's tests: a fresh cluster (initdb) in a temporary directory,
// a postmaster listening on 127.0.0.1 at a free port with its Unix socket in
// that directory, and a new database per test.
//
// It runs Debian's PostgreSQL binaries (package postgresql, in
// /usr/lib/postgresql/<version>/bin; Missing names what is not there) as
// the postgres user when the test runs as root (PostgreSQL refuses to run
// as root), as the test's own user otherwise. Authentication is "trust":
// the server is reachable from this machine only, and lives as long as the
// test. Close stops it by PID and removes its directory; a server whose
// test process died is stopped by the kernel (parent-death signal) and its
// directory removed by the next Start.
//
// Nothing here is used by the product.
package pgsql

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server.
type Server struct {
	// Dir is the cluster's data directory; it also holds the Unix socket.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
	log  *lockedBuffer
	once sync.Once
	err  error
	n    atomic.Int64 // databases created
}

// dirPrefix names the temporary directories of servers.
const dirPrefix = "deploybot-pgsql-"

// binDir returns the directory of the newest PostgreSQL server binaries
// installed, preferring version 15.
func binDir() string {
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/postgres"); err == nil {
		return "/usr/lib/postgresql/15/bin"
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return "/usr/lib/postgresql/15/bin"
}

// Missing returns what Start needs and does not find (the binaries, the
// postgres user when running as root), "" when nothing is missing.
func Missing() string {
	var missing []string
	dir := binDir()
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing = append(missing, filepath.Join(dir, b))
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			missing = append(missing, "the postgres user")
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return strings.Join(missing, ", ") + " (Debian package postgresql; scripts/install-deps.sh installs it)"
}

// StartT starts a server for t and stops it when t ends. When PostgreSQL
// is missing it fails t in CI (CI set) naming what is missing, and skips
// t elsewhere; in -short mode it skips.
func StartT(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("real PostgreSQL server: skipped in -short mode")
	}
	if m := Missing(); m != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is missing: %s", m)
		}
		t.Skipf("PostgreSQL is missing: %s [skipped: CI is not set]", m)
	}
	s, err := Start()
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return s
}

// Start initializes a cluster in a new temporary directory and starts a
// server on it, returning once it accepts connections.
func Start() (*Server, error) {
	if m := Missing(); m != "" {
		return nil, fmt.Errorf("PostgreSQL is missing: %s", m)
	}
	reapStale()
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(binDir(), "initdb"), "-D", dir, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--no-locale", "--no-sync")
	prepare(initdb, cred, dir)
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken by someone else before the server binds it:
	// try a few.
	for attempt := 0; ; attempt++ {
		s, err := start(dir, cred)
		if err == nil {
			return s, nil
		}
		if attempt == 4 || !strings.Contains(err.Error(), "could not create listen socket") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func start(dir string, cred *syscall.Credential) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Port: port, log: &lockedBuffer{}}
	if err := s.launch(cred); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart stops the server (fast shutdown: every session ends) and starts
// it again on the same data directory and port, returning once it accepts
// connections.
func (s *Server) Restart() error {
	s.stop()
	cred, err := credential()
	if err != nil {
		return err
	}
	return s.launch(cred)
}

// launch starts the postmaster on s.Dir and s.Port and waits until it
// accepts connections.
func (s *Server) launch(cred *syscall.Credential) error {
	dir, port := s.Dir, s.Port
	s.done = make(chan struct{})
	s.cmd = exec.Command(filepath.Join(binDir(), "postgres"), "-D", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "shared_buffers=64MB", "-c", "max_connections=200", "-c", "synchronous_commit=on")
	prepare(s.cmd, cred, dir)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	cmd, done := s.cmd, s.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited: %v\n%s", cmd.ProcessState, s.log.String())
		case <-ctx.Done():
			s.stop()
			return fmt.Errorf("postgres not ready after 60s: %v\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// credential returns who the server runs as: the postgres user when we are
// root, nil (ourselves) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func prepare(cmd *exec.Cmd, cred *syscall.Credential, dir string) {
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// If the test process dies, the server goes too (immediate
		// shutdown; its backends follow).
		Pdeathsig: syscall.SIGQUIT,
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// CreateDatabase creates a new, empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.n.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// DatabaseT creates a new, empty database for t and returns its URL; it
// is dropped when t ends (after what t opened on it is closed, since
// cleanups run last-registered first).
func (s *Server) DatabaseT(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	url, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("creating a database: %v", err)
	}
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return // the server is gone; so is the database
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return url
}

// Log is what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Close stops the server (fast shutdown, then SIGKILL after 10 s) and
// removes its directory.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.stop()
		s.err = os.RemoveAll(s.Dir)
	})
	return s.err
}

func (s *Server) stop() {
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// reapStale removes the directories of servers whose test process died:
// no live postmaster, and older than a minute (so as not to race a Start
// in another process that has not started its server yet).
func reapStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if pid := postmasterPID(dir); pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		os.RemoveAll(dir)
	}
}

func postmasterPID(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Freeze stops the server and every backend with SIGSTOP: connections
// hang instead of failing, as with a database that stopped answering.
// Thaw (SIGCONT) undoes it.
func (s *Server) Freeze() { s.signalAll(syscall.SIGSTOP) }

// Thaw lets a frozen server go on.
func (s *Server) Thaw() { s.signalAll(syscall.SIGCONT) }

// signalAll sends sig to the postmaster and each of its children.
func (s *Server) signalAll(sig syscall.Signal) {
	pid := s.cmd.Process.Pid
	pids := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: the comm may hold spaces.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
}
