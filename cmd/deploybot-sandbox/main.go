// Command deploybot-sandbox runs deploybot on a local sandbox for `make
// demo`: it starts a real InspIRCd + Anope on the address the sandbox
// configuration names, registers the bot's services account and a user
// account to try it with, then runs `deploybot serve` (the binary named by
// -bin) on that configuration until interrupted, and tears everything down.
//
// It wires the test harnesses of e2e/ to the bot; it is not meant for
// production.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"deploybot/config"
	"deploybot/e2e/ircd"
)

func main() {
	path := flag.String("c", "examples/sandbox.yaml", "sandbox configuration `file`")
	user := flag.String("user", "alice", "services account to register for you")
	pass := flag.String("password", "sandbox-alice", "its password")
	bin := flag.String("bin", "bin/deploybot", "the deploybot `binary` to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *path, *user, *pass); err != nil {
		fmt.Fprintln(os.Stderr, "deploybot-sandbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, path, user, pass string) error {
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
	fmt.Printf(`
The sandbox is up. Connect an IRC client to %s (plain text), e.g.

    irssi -c 127.0.0.1 -p %d -n %s

then identify to services with /msg NickServ IDENTIFY %s %s (or log in
with SASL PLAIN as that account), join %s and try:

    !help
    !log restarted citoid

Entries go to %s; the log's pages are at %s.
Ctrl-C stops everything.

`, srv.Addr, port, user, user, pass, cfg.IRC.Channels[0], cfg.SAL.Database, cfg.SAL.PublicURL)

	serve := exec.Command(bin, "serve", "-c", path)
	serve.Stdout, serve.Stderr = os.Stdout, os.Stderr
	if err := serve.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("deploybot serve stopped: %v", err)
	case <-ctx.Done():
		serve.Process.Signal(os.Interrupt)
		return <-done
	}
}
