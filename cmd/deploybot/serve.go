package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"deploybot/bot"
	"deploybot/bot/metrics"
	"deploybot/config"
	"deploybot/deployer"
	"deploybot/sal"
	salweb "deploybot/sal/web"
)

func runServe(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "serve")
	path := configFlag(fs)
	debug := fs.Bool("debug", false, "log debug details")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(e.stderr, "%v\n", err)
		return exitFailed
	}
	logWarnings(logger, cfg)
	store, err := sal.Open(cfg.SAL.Database)
	if err != nil {
		logger.Error("cannot open the Server Admin Log", "err", err)
		return exitFailed
	}
	defer store.Close()

	spool, err := sal.OpenSpool(cfg.SAL.Spool, logger)
	if err != nil {
		logger.Error("cannot open the SAL spool", "err", err)
		return exitFailed
	}
	b, err := bot.New(cfg, store, spool, logger)
	if err != nil {
		logger.Error("cannot start the bot", "err", err)
		return exitFailed
	}
	var m *metrics.Metrics
	if cfg.Metrics.Serve {
		m = metrics.New()
		b.SetMetrics(m)
	}
	logger.Info("starting", "version", versionString(), "config", cfg.Path)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var eng *deployer.Engine
	if len(cfg.Services) > 0 {
		eng, err = deployer.New(cfg, logger)
		if err != nil {
			logger.Error("cannot start the deployment engine", "err", err)
			return exitFailed
		}
		defer eng.Close()
		if m != nil {
			eng.SetObserver(m)
		}
		b.SetDeployer(eng)
		if cfg.Deploy.Serve != "" {
			go func() {
				if err := eng.Serve(ctx); err != nil {
					logger.Error("cannot serve the deploy repositories to the targets", "listen", cfg.Deploy.Serve, "err", err)
					cancel()
				}
			}()
		}
	}
	// The deploy logs: with the SAL web pages, on a server of their own
	// (deploy.logs_listen), or nowhere (deploy.serve_logs: false).
	logs := eng != nil && cfg.Deploy.ServeLogs
	logsApart := logs && cfg.Deploy.LogsListen != ""
	// The metrics: on a server of their own (metrics.listen), with the SAL
	// web pages, or nowhere (metrics.serve: false).
	var salMetrics http.Handler
	if m != nil && cfg.Metrics.Listen == "" {
		salMetrics = m.Handler()
	}
	var servers []*webServer
	if cfg.SAL.Listen != "" {
		var deploys http.Handler
		if logs && !logsApart {
			deploys = eng.LogHandler("/deploys/")
		}
		srv := newWebServer(cfg, store, deploys, salMetrics, logger)
		ws, err := startWeb(srv, cfg.SAL.Listen, "SAL web", logger, cancel)
		if err != nil {
			logger.Error("cannot serve the SAL web pages", "err", err)
			return exitFailed
		}
		logger.Info("SAL web pages", "listen", ws.addr, "url", cfg.SAL.PublicURL)
		servers = append(servers, ws)
	}
	if logsApart {
		ws, err := startWeb(newLogsServer(eng.LogHandler("/deploys/"), logger), cfg.Deploy.LogsListen, "deploy logs web", logger, cancel)
		if err != nil {
			logger.Error("cannot serve the deploy logs", "err", err)
			shutdownWeb(servers)
			return exitFailed
		}
		logger.Info("deploy logs", "listen", ws.addr, "url", cfg.Deploy.LogsPublicURL)
		servers = append(servers, ws)
	}
	if m != nil && cfg.Metrics.Listen != "" {
		ws, err := startWeb(newServerOf("/metrics", m.Handler(), logger), cfg.Metrics.Listen, "metrics web", logger, cancel)
		if err != nil {
			logger.Error("cannot serve the metrics", "err", err)
			shutdownWeb(servers)
			return exitFailed
		}
		logger.Info("metrics", "listen", ws.addr, "path", "/metrics")
		servers = append(servers, ws)
	}

	code := exitOK
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		logger.Error("bot stopped", "err", err)
		code = exitFailed
	}
	if !shutdownWeb(servers) {
		code = exitFailed
	}
	logger.Info("stopped")
	return code
}

// webServer is an HTTP server started by startWeb.
type webServer struct {
	srv  *http.Server
	addr string     // the address it listens on
	done chan error // Serve's result
}

// startWeb serves srv on addr, on salweb.Listener, until shutdownWeb. If
// it stops by itself, it calls cancel.
func startWeb(srv *http.Server, addr, what string, logger *slog.Logger, cancel func()) (*webServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ws := &webServer{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() {
		err := srv.Serve(salweb.Listener(ln))
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error(what+" server stopped", "err", err)
			cancel()
		}
		ws.done <- err
	}()
	return ws, nil
}

// shutdownWeb shuts the servers down, each within 5 s; it reports whether
// each had run until then.
func shutdownWeb(servers []*webServer) bool {
	ok := true
	for _, ws := range servers {
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		ws.srv.Shutdown(shutdown)
		done()
		if err := <-ws.done; !errors.Is(err, http.ErrServerClosed) {
			ok = false
		}
	}
	return ok
}

// newWebServer is the server of sal.listen: the SAL web pages, the
// deploy logs under /deploys/ when deploys is set (there is a deployment
// engine, deploy.serve_logs is on and deploy.logs_listen is not set), and
// metricsHandler at /metrics when it is not nil. Its timeouts and header limit
// are sal/web's (see salweb.NewServer); serve it on salweb.Listener.
func newWebServer(cfg *config.Config, store sal.Store, deploys, metricsHandler http.Handler, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/", salweb.New(salweb.Options{
		Store:     store,
		PublicURL: cfg.SAL.PublicURL,
		TaskURL:   cfg.SAL.TaskURL,
		Log:       logger,
	}))
	if deploys != nil {
		// The full log of each deploy, linked from the channel.
		mux.Handle("/deploys/", deploys)
	}
	if metricsHandler != nil {
		mux.Handle("/metrics", metricsHandler)
	}
	srv := salweb.NewServer(mux)
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	return srv
}

// newLogsServer is the server of deploy.logs_listen: the deploy logs under
// /deploys/ and nothing else, with the same timeouts and header limit as
// the SAL web server (salweb.NewServer); serve it on salweb.Listener.
func newLogsServer(deploys http.Handler, logger *slog.Logger) *http.Server {
	return newServerOf("/deploys/", deploys, logger)
}

// newServerOf is a server of h at pattern and nothing else, with the same
// timeouts and header limit as the SAL web server (salweb.NewServer);
// serve it on salweb.Listener.
func newServerOf(pattern string, h http.Handler, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	srv := salweb.NewServer(mux)
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	return srv
}

// logWarnings logs what the configuration allows but is unsafe (see
// config.Config.Warnings).
func logWarnings(logger *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		logger.Warn("unsafe configuration", "file", w.File, "line", w.Line, "key", w.Key, "problem", w.Msg)
	}
}
