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
	store, err := sal.Open(cfg.SAL.Database)
	if err != nil {
		logger.Error("cannot open the Server Admin Log", "err", err)
		return exitFailed
	}
	defer store.Close()

	spool, err := sal.OpenSpool(cfg.SAL.Spool)
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
	var web *http.Server
	webDone := make(chan error, 1)
	if cfg.SAL.Listen != "" {
		ln, err := net.Listen("tcp", cfg.SAL.Listen)
		if err != nil {
			logger.Error("cannot serve the SAL web pages", "err", err)
			return exitFailed
		}
		web = &http.Server{
			Handler: salweb.New(salweb.Options{
				Store:     store,
				PublicURL: cfg.SAL.PublicURL,
				TaskURL:   cfg.SAL.TaskURL,
				Log:       logger,
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		logger.Info("SAL web pages", "listen", ln.Addr().String(), "url", cfg.SAL.PublicURL)
		go func() {
			err := web.Serve(ln)
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
