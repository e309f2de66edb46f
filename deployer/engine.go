package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// Engine runs deploys of the configured services. It is safe for concurrent
// use: deploys of different services may run at once (the same service is
// refused by the deploy lock).
type Engine struct {
	cfg    *config.Config
	dialer Dialer
	log    *slog.Logger
	// store holds the deploy locks, manual locks and journals.
	store journal.Store

	mu      sync.Mutex
	running map[string]*run // service → deploy running in this process
	srv     *http.Server    // the git server started by this engine
	repoMu  map[string]*sync.Mutex

	// dialSlots bounds SSH dials in flight (deploy.ssh.max_connections);
	// nil = no bound.
	dialSlots chan struct{}

	// watcher sees every event of every deploy (SetObserver).
	watcher atomic.Pointer[Observer]
}

// SetObserver makes o see every event of every deploy this engine runs
// (after the deploy's own observer), e.g. to count them: a front end's
// observer reports one deploy, o reports them all. Call it before the
// first deploy; o must return quickly.
func (e *Engine) SetObserver(o Observer) { e.watcher.Store(&o) }

func (e *Engine) observer() Observer {
	if p := e.watcher.Load(); p != nil {
		return *p
	}
	return nil
}

// New returns an engine for cfg that reaches its targets over SSH. It
// reads the SSH key and known_hosts.
func New(cfg *config.Config, logger *slog.Logger) (*Engine, error) {
	d, err := remote.NewDialer(cfg.Deploy.SSH)
	if err != nil {
		return nil, err
	}
	st, err := openStore(cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	return NewWithStore(cfg, logger, sshDialer{d}, st), nil
}

// NewWithDialer returns an engine for cfg that reaches its targets through
// d (an in-memory fleet in tests), its state in deploy.journal_dir.
func NewWithDialer(cfg *config.Config, logger *slog.Logger, d Dialer) *Engine {
	return NewWithStore(cfg, logger, d, journal.NewFiles(cfg.Deploy.JournalDir))
}

// NewWithStore returns an engine for cfg that reaches its targets through
// d and keeps its state in st, which Close closes.
func NewWithStore(cfg *config.Config, logger *slog.Logger, d Dialer, st journal.Store) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, dialer: d, log: logger, store: st, running: map[string]*run{}, repoMu: map[string]*sync.Mutex{}}
	if n := cfg.Deploy.SSH.MaxConnections; n > 0 {
		e.dialSlots = make(chan struct{}, n)
	}
	return e
}

// Close stops the git server started by the engine, if any, and closes the
// dialer.
func (e *Engine) Close() error {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	err := e.store.Close()
	if e.dialer != nil {
		err = errors.Join(e.dialer.Close(), err)
	}
	return err
}

// ServeHandler is the read-only git server of deploy.deploy_dir: the
// configured services' deploy repositories only.
func (e *Engine) ServeHandler() http.Handler {
	repos := make([]string, 0, len(e.cfg.Services))
	for _, s := range e.cfg.Services {
		repos = append(repos, s.Repo)
	}
	if len(repos) == 0 {
		repos = append(repos, "") // none configured: serve nothing
	}
	return gitrepo.Handler(e.cfg.Deploy.DeployDir, repos...)
}

// Serve serves the deploy repositories read-only on deploy.serve until ctx
// is done (for the bot, which serves all the time).
func (e *Engine) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.cfg.Deploy.Serve)
	if err != nil {
		return err
	}
	srv := gitrepo.NewServer(e.ServeHandler())
	e.mu.Lock()
	if e.srv != nil {
		e.mu.Unlock()
		ln.Close()
		return errors.New("deployer: already serving")
	}
	e.srv = srv
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(gitrepo.Listener(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ensureServing makes sure targets can fetch repo from deploy.serve_url:
// the engine's own server, started now if needed, or the one another
// process (the bot) runs on that address.
func (e *Engine) ensureServing(ctx context.Context, repo string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		ln, err := net.Listen("tcp", e.cfg.Deploy.Serve)
		switch {
		case err == nil:
			srv := gitrepo.NewServer(e.ServeHandler())
			e.srv = srv
			go func() { _ = srv.Serve(gitrepo.Listener(ln)) }()
		case errors.Is(err, syscall.EADDRINUSE):
			// Another process serves: check it serves this deploy_dir.
			u := strings.TrimSuffix(e.cfg.Deploy.ServeURL, "/") + "/" + repo + "/.git/HEAD"
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
			resp, herr := http.DefaultClient.Do(req)
			if herr != nil {
				return fmt.Errorf("deploy.serve %s is in use and %s does not answer: %v", e.cfg.Deploy.Serve, u, herr)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("deploy.serve %s is in use and %s answers %s", e.cfg.Deploy.Serve, u, resp.Status)
			}
			return nil
		default:
			return fmt.Errorf("serving the deploy repositories on %s: %w", e.cfg.Deploy.Serve, err)
		}
	}
	return nil
}

func (e *Engine) service(name string) (*config.Service, error) {
	if err := journal.ValidService(name); err != nil {
		return nil, fmt.Errorf("unknown service %q", name)
	}
	s, ok := e.cfg.Service(name)
	if !ok {
		return nil, fmt.Errorf("unknown service %q (configured: %s)", name, strings.Join(e.cfg.ServiceNames(), ", "))
	}
	return s, nil
}

// openRepo opens and updates the deploy repository of s, one update per
// repository at a time in this process.
func (e *Engine) openRepo(ctx context.Context, s *config.Service) (*gitrepo.Repo, error) {
	e.mu.Lock()
	m := e.repoMu[s.Repo]
	if m == nil {
		m = &sync.Mutex{}
		e.repoMu[s.Repo] = m
	}
	e.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	r, err := gitrepo.Open(ctx, gitrepo.Options{
		Dir:           filepath.Join(e.cfg.Deploy.DeployDir, filepath.FromSlash(s.Repo)),
		Upstream:      s.Upstream,
		Branch:        s.Branch,
		Submodules:    s.Submodules,
		SubmoduleURLs: s.SubmoduleURLs,
	})
	if err != nil {
		return nil, fmt.Errorf("deploy repository: %w", err)
	}
	if err := r.Update(ctx); err != nil {
		return nil, fmt.Errorf("updating the deploy repository: %w", err)
	}
	return r, nil
}

// Plan resolves what a deploy of req would do: the revision, the commit
// range from the revision deployed last, and the hosts per group. It
// updates the deploy repository on the deployment host and touches no
// target.
func (e *Engine) Plan(ctx context.Context, req Request) (*Plan, error) {
	s, err := e.service(req.Service)
	if err != nil {
		return nil, err
	}
	if err := gitrepo.ValidateRev(req.Rev); err != nil {
		return nil, err
	}
	repo, err := e.openRepo(ctx, s)
	if err != nil {
		return nil, err
	}
	return e.plan(s, repo, req.Rev)
}

func (e *Engine) plan(s *config.Service, repo *gitrepo.Repo, rev string) (*Plan, error) {
	sha, err := repo.Resolve(rev)
	if err != nil {
		return nil, err
	}
	from := e.lastGood(s.Name)
	if from != "" {
		if _, err := repo.Resolve(from); err != nil {
			from = "" // no longer in the repository: treat as a first deploy
		}
	}
	rg, err := repo.Range(from, sha)
	if err != nil {
		return nil, err
	}
	p := &Plan{Service: s.Name, From: from, To: sha, Range: rg}
	for _, g := range s.Rollout() {
		pg := PlanGroup{Name: g.Name, Parallel: g.Parallel, FailureLimit: g.FailureLimit.Allowed(len(g.Hosts)), Pause: g.Pause}
		for _, h := range g.Hosts {
			pg.Hosts = append(pg.Hosts, h.String())
		}
		p.Groups = append(p.Groups, pg)
	}
	return p, nil
}

// short is the 7-character form of a revision.
func short(sha string) string { return journal.ShortRev(sha) }

// oneLine squeezes s onto one line of at most 300 bytes.
func oneLine(s string) string { return journal.Clip(journal.OneLine(s), 300) }
