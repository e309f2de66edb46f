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
	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
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
	var web *http.Server
	webDone := make(chan error, 1)
	if cfg.SAL.Listen != "" {
		ln, err := net.Listen("tcp", cfg.SAL.Listen)
		if err != nil {
			logger.Error("cannot serve the SAL web pages", "err", err)
			return exitFailed
		}
		web = newWebServer(cfg, store, eng != nil, logger)
		logger.Info("SAL web pages", "listen", ln.Addr().String(), "url", cfg.SAL.PublicURL)
		go func() {
			err := web.Serve(salweb.Listener(ln))
			if !errors.Is(err, http.ErrServerClosed) {
				logger.Error("SAL web server stopped", "err", err)
				cancel()
			}
			webDone <- err
		}()
	}

	code := exitOK
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		logger.Error("bot stopped", "err", err)
		code = exitFailed
	}
	if web != nil {
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		web.Shutdown(shutdown)
		done()
		if err := <-webDone; !errors.Is(err, http.ErrServerClosed) {
			code = exitFailed
		}
	}
	logger.Info("stopped")
	return code
}

// newWebServer is the server of sal.listen: the SAL web pages, and the
// deploy logs under /deploys/ when there is a deployment engine. Its
// timeouts and header limit are sal/web's (see salweb.NewServer); serve it
// on salweb.Listener.
func newWebServer(cfg *config.Config, store sal.Store, deploys bool, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/", salweb.New(salweb.Options{
		Store:     store,
		PublicURL: cfg.SAL.PublicURL,
		TaskURL:   cfg.SAL.TaskURL,
		Log:       logger,
	}))
	if deploys {
		// The full log of each deploy, linked from the channel.
		mux.Handle("/deploys/", journal.Handler(cfg.Deploy.JournalDir, "/deploys/"))
	}
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
