// Command deploybot-sandbox runs deploybot on a local sandbox for `make
// demo`: it starts a real InspIRCd + Anope on the address the sandbox
// configuration names, registers the bot's services account and a user
// account to try it with, then runs the bot until interrupted, and tears
// everything down.
//
// It wires the test harnesses of e2e/ to the bot; it is not meant for
// production.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"deploybot/bot"
	"deploybot/config"
	"deploybot/e2e/ircd"
	"deploybot/sal"
)

func main() {
	path := flag.String("c", "examples/sandbox.yaml", "sandbox configuration `file`")
	user := flag.String("user", "alice", "services account to register for you")
	pass := flag.String("password", "sandbox-alice", "its password")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *path, *user, *pass); err != nil {
		fmt.Fprintln(os.Stderr, "deploybot-sandbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path, user, pass string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	_, portStr, err := net.SplitHostPort(cfg.IRC.Server)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	fmt.Printf("starting InspIRCd + Anope on %s …\n", cfg.IRC.Server)
	srv, err := ircd.Start(ircd.Options{Port: port})
	if err != nil {
		return err
	}
	defer srv.Close()
	if cfg.IRC.SASL != nil {
		if err := srv.Register(cfg.IRC.SASL.Account, cfg.IRC.SASL.Password.Reveal()); err != nil {
			return fmt.Errorf("registering the bot's account: %w", err)
		}
	}
	if err := srv.Register(user, pass); err != nil {
		return fmt.Errorf("registering %s: %w", user, err)
	}
	store, err := sal.Open(cfg.SAL.Database)
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Printf(`
The sandbox is up. Connect an IRC client to %s (plain text), e.g.

    irssi -c 127.0.0.1 -p %d -n %s -w %s

(or log in with SASL PLAIN as %s / %s), join %s and try:

    !help
    !log restarted citoid

Entries go to %s. Ctrl-C stops everything.

`, srv.Addr, port, user, pass, user, pass, cfg.IRC.Channels[0], cfg.SAL.Database)

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := bot.New(cfg, store, logger)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
