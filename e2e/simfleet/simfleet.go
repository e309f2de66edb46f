// Package simfleet is a simulated fleet of deploy targets for scale
// benchmarks: N SSH endpoints served by golang.org/x/crypto/ssh in one
// process, each on a loopback port of its own, that accept the engine's
// connections and answer the stage protocol of package deployer/remote the
// way a real target does — the deploy session fetches the revision from the
// deploy host's git server over dumb HTTP (every object it lacks, as git
// does), then prints the stage markers of fetch, checkout, promote and
// restart with their exit codes; finalize, rollback (with undo), status,
// command checks and stop keep and report the host's current, done and
// deploying revisions; port and HTTP checks are answered on the
// connection's direct-tcpip channels.
//
// It runs no shell and no git: a simulated host costs the machine a few
// kilobytes and no process, so a thousand of them fit beside the deploybot
// under test, whose CPU is then measured apart from the fleet's (the fleet
// runs as its own process: cmd/simfleet).
//
// What does not live here: real targets (e2e/fleet: sshd in network
// namespaces), and the engine's own in-memory fleet for table tests
// (deployer/fakefleet, no SSH at all).
package simfleet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"deploybot/e2e/scale"

	"golang.org/x/crypto/ssh"
)

// Config is how the fleet behaves.
type Config struct {
	// Hosts is how many endpoints to serve.
	Hosts int
	// Addr is the listen address without port ("127.0.0.1").
	Addr string
	// HostKey is the host key every endpoint presents.
	HostKey ssh.Signer
	// ClientKey is the only key accepted.
	ClientKey ssh.PublicKey
	// StageLatency is added to each stage of a deploy (as a target's git
	// and restart take time); FinalizeLatency to finalize and rollback.
	StageLatency, FinalizeLatency time.Duration
	// FailEvery: every FailEvery-th host (1-based index divisible by it)
	// fails its restart stage with exit 1; 0: none.
	FailEvery int
	// HTTPBody, when set, is what HTTP checks answer; "" answers
	// "rev <current>".
	HTTPBody string
}

// Fleet is a running simulated fleet.
type Fleet struct {
	cfg   Config
	srv   *ssh.ServerConfig
	hosts []*Host
	wg    sync.WaitGroup
}

// Host is one simulated target.
type Host struct {
	Index int    // 1-based
	Addr  string // host:port it listens on
	ln    net.Listener
	fail  bool

	mu                       sync.Mutex
	current, done, deploying string
	history                  []string
	have                     map[string]bool // git objects and packs fetched
	sessions                 int
}

// Start listens on cfg.Hosts loopback ports and serves them until Close.
func Start(cfg Config) (*Fleet, error) {
	if cfg.HostKey == nil || cfg.ClientKey == nil {
		return nil, errors.New("simfleet: host key and client key are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	want := string(cfg.ClientKey.Marshal())
	srv := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == want {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		ServerVersion: "SSH-2.0-simfleet",
	}
	srv.AddHostKey(cfg.HostKey)
	f := &Fleet{cfg: cfg, srv: srv}
	for i := 1; i <= cfg.Hosts; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Addr, "0"))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("simfleet: host %d: %w", i, err)
		}
		h := &Host{Index: i, Addr: ln.Addr().String(), ln: ln, have: map[string]bool{},
			fail: cfg.FailEvery > 0 && i%cfg.FailEvery == 0}
		f.hosts = append(f.hosts, h)
		f.wg.Go(func() { f.accept(h) })
	}
	return f, nil
}

// Hosts returns the fleet's hosts, in order.
func (f *Fleet) Hosts() []*Host { return f.hosts }

// Close stops listening; connections in progress end with the process.
func (f *Fleet) Close() {
	for _, h := range f.hosts {
		h.ln.Close()
	}
	f.wg.Wait()
}

// State returns the host's current, done and deploying revisions.
func (h *Host) State() (current, done, deploying string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current, h.done, h.deploying
}

// Sessions returns how many sessions the host has run.
func (h *Host) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions
}

func (f *Fleet) accept(h *Host) {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		go f.serveConn(h, c)
	}
}

func (f *Fleet) serveConn(h *Host, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(scale.D(30 * time.Second)))
	sc, chans, reqs, err := ssh.NewServerConn(c, f.srv)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // keepalives: answered "false", as OpenSSH does
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			go f.session(h, nc)
		case "direct-tcpip":
			go f.direct(h, nc)
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}
