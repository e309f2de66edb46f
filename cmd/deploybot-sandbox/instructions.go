package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"

	"deploybot/config"
)

// printInstructions tells the user what runs where and what to try.
func (s *sandbox) printInstructions(w io.Writer) {
	cfg, f, u := s.cfg, s.fleet, s.upstream
	svc := cfg.Services[s.service]
	name := s.service
	short := func(sha string) string { return sha[:7] }
	_, ircPort, _ := net.SplitHostPort(cfg.IRC.Server)
	ircHost, _, _ := net.SplitHostPort(cfg.IRC.Server)
	channel := cfg.IRC.Channels[0]
	cli := fmt.Sprintf("%s %%s -c %s", s.bin, shellQuote(s.runtime))

	// Which host is which.
	var layout []string
	i := 0
	next := func() string {
		h := f.Hosts[i]
		i++
		return fmt.Sprintf("%s (%s)", h.IP, h.Name)
	}
	var canary []string
	for range svc.Canary {
		canary = append(canary, next())
	}
	if len(canary) > 0 {
		layout = append(layout, "canary "+strings.Join(canary, ", "))
	}
	for _, g := range svc.Groups {
		var hs []string
		for range g.Hosts {
			hs = append(hs, next())
		}
		layout = append(layout, g.Name+" "+strings.Join(hs, ", "))
	}

	fmt.Fprintf(w, "\nThe sandbox is up.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "IRC\t%s (plain text), channel %s\n", cfg.IRC.Server, channel)
	fmt.Fprintf(tw, "you\t%s, password %s: services account, deployer\n", s.user, s.pass)
	fmt.Fprintf(tw, "fleet\t%d sshd hosts on %s: %s\n", len(f.Hosts), f.Subnet, strings.Join(layout, "; "))
	fmt.Fprintf(tw, "service\t%s: %s on each host, port %d, health %s\n", name, svc.TargetDir, svc.Port, checkURLs(svc))
	fmt.Fprintf(tw, "upstream\t%s\n", u.dir)
	fmt.Fprintf(tw, "  v1\t%s  on main: healthy\n", u.v1)
	fmt.Fprintf(tw, "  v2\t%s  on main (HEAD): healthy\n", u.v2)
	fmt.Fprintf(tw, "  v3\t%s  on branch %s: /health answers 500\n", u.bad, u.badBranch)
	fmt.Fprintf(tw, "SAL\t%s  (each deploy's log under /deploys/)\n", cfg.SAL.PublicURL)
	fmt.Fprintf(tw, "config\t%s\n", s.runtime)
	fmt.Fprintf(tw, "scratch\t%s (IRC servers), %s (fleet)\n", s.irc.Dir, f.Dir)
	tw.Flush()

	fmt.Fprintf(w, `
Connect an IRC client, e.g.

    irssi -c %s -p %s -n %s

identify with /msg NickServ IDENTIFY %s %s (or log in with SASL
PLAIN as that account), join %s and try, in this order:

    !help
    !log restarted citoid T12345      a SAL entry
    !deploy %s %s              v1: canary, then the group
    !deploy %s                      main's head: v2 (1 commit since v1)
    !status %s
    !deploylog %s
    !deploy %s %s              v3: the canary fails its health check and
                                      the bot asks
    !rollback %s                    …answer: roll the canary back to v2
    !revert %s                      back to v1, and %s is locked
    !status %s
    !unlock %s

From a shell (it announces in %s through the bot's relay listener, and
asks on the terminal where the bot would ask in the channel):

    %s
    %s
    %s      (the locks)

Make a new revision, then !deploy %s:

    echo v4 >%s/VERSION && git -C %s commit -qam 'demo v4'

What a host's service answers (here the canary's):

    ip netns exec %s %s -get http://127.0.0.1:%d/health

Ctrl-C (or SIGTERM, or closing the terminal) stops everything and
removes what the sandbox made; after a crash, the next start does.

`,
		ircHost, ircPort, s.user, s.user, s.pass, channel,
		name, short(u.v1), name, name, name, name, short(u.bad), name, name, name, name, name,
		channel,
		fmt.Sprintf(cli, "deploy "+name+" --rev "+short(u.v2)+" -m 'from the shell'"),
		fmt.Sprintf(cli, "deploy-log "+name+" --latest"),
		fmt.Sprintf(cli, "lock"),
		name, shellQuote(u.dir), shellQuote(u.dir),
		f.Hosts[0].NetNS, shellQuote(u.svcBin), svc.Port)
}

func checkURLs(svc *config.Service) string {
	var urls []string
	for _, c := range svc.Checks {
		if c.HTTP != "" {
			urls = append(urls, c.HTTP)
		}
	}
	if len(urls) == 0 {
		return "none"
	}
	return strings.Join(urls, ", ")
}
