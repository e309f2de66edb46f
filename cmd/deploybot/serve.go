package main

import (
	"context"
	"fmt"
	"log/slog"

	"deploybot/bot"
	"deploybot/config"
	"deploybot/sal"
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

	b, err := bot.New(cfg, store, logger)
	if err != nil {
		logger.Error("cannot start the bot", "err", err)
		return exitFailed
	}
	logger.Info("starting", "version", versionString(), "config", cfg.Path)
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		logger.Error("bot stopped", "err", err)
		return exitFailed
	}
	logger.Info("stopped")
	return exitOK
}
