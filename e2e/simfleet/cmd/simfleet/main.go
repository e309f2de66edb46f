// Command simfleet serves a simulated fleet of deploy targets (package
// deploybot/e2e/simfleet) until it is sent SIGTERM or SIGINT, so that a
// benchmark measures the deploybot's CPU apart from the fleet's. It
// writes the hosts' addresses, one a line, to -list, then "ready" on
// stdout.
//
//	simfleet -hosts 1000 -host-key KEY -client-key KEY.pub -list FILE
//	  [-addr 127.0.0.1] [-stage-latency 0s] [-finalize-latency 0s] [-fail-every 0]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"deploybot/e2e/simfleet"
)

func main() {
	var cfg simfleet.Config
	hostKey := flag.String("host-key", "", "the hosts' private key (PEM)")
	clientKey := flag.String("client-key", "", "the one client key accepted (authorized_keys line)")
	list := flag.String("list", "", "file to write the hosts' addresses to")
	flag.IntVar(&cfg.Hosts, "hosts", 10, "how many hosts")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1", "listen address (one port per host)")
	flag.DurationVar(&cfg.StageLatency, "stage-latency", 0, "added to every deploy stage")
	flag.DurationVar(&cfg.FinalizeLatency, "finalize-latency", 0, "added to finalize and rollback")
	flag.IntVar(&cfg.FailEvery, "fail-every", 0, "every n-th host fails its restart (0: none)")
	flag.Parse()
	if err := run(cfg, *hostKey, *clientKey, *list); err != nil {
		fmt.Fprintln(os.Stderr, "simfleet:", err)
		os.Exit(1)
	}
}

func run(cfg simfleet.Config, hostKey, clientKey, list string) error {
	b, err := os.ReadFile(hostKey)
	if err != nil {
		return err
	}
	if cfg.HostKey, err = ssh.ParsePrivateKey(b); err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	if b, err = os.ReadFile(clientKey); err != nil {
		return err
	}
	if cfg.ClientKey, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
		return fmt.Errorf("client key: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	f, err := simfleet.Start(cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	var addrs []string
	for _, h := range f.Hosts() {
		addrs = append(addrs, h.Addr)
	}
	if err := os.WriteFile(list, []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Println("ready")
	<-sig
	return nil
}
