package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"deploybot/deployer"
	"deploybot/deployer/journal"
)

const deployLogHelp = `
Without <service>, the service is the one whose deploy repository holds
the current directory, if any. Without --latest, -f or --id: lists the
newest deploys (of <service>, or of every service), one line each. --latest (or --id) prints the newest deploy's
log: first where every host ended (the summary the web page shows), then its
events — groups, failures with their output, prompts, answers and outcome.
Commands and checks that passed, and the remote scripts, are printed with
--level debug. -f prints the events and follows them until the deploy
finishes. --host and --level filter the events.
`

func runDeployLog(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "deploy-log")
	conf := configFlag(fs)
	latest := fs.Bool("latest", false, "print the newest deploy's journal")
	follow := fs.Bool("f", false, "follow the newest deploy (or --id) live until it finishes")
	id := fs.String("id", "", "print the journal of deploy `id`")
	host := fs.String("host", "", "only the lines about hosts matching `glob` (plus the deploy's own)")
	level := fs.String("level", "", "lowest `level` printed: debug, info, warn, error (default info)")
	output := fs.Bool("output", false, "print the output of successful commands too")
	n := fs.Int("n", 20, "how many deploys to list")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(fs.Output(), deployLogHelp) }
	service, given, code := parseOptionalArg(fs, args)
	if code >= 0 {
		return code
	}
	if given {
		if err := journal.ValidService(service); err != nil {
			fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
			return exitUsage
		}
	}
	opts := journal.FormatOptions{HostGlob: *host, Level: *level, Output: *output}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
		return exitUsage
	}
	cfg, ok := loadConfig(e, *conf)
	if !ok {
		return exitFailed
	}
	if service == "" && *id == "" {
		service = serviceHere(cfg) // inside a deploy repository, as with Scap3
	}
	eng, err := deployer.Open(cfg, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
		return exitFailed
	}
	defer eng.Close()
	if !*latest && !*follow && *id == "" {
		list, err := eng.Deploys(service, *n)
		if err != nil {
			fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
			return exitFailed
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "No deploys recorded.")
		}
		for _, s := range list {
			journal.FormatSummary(e.stdout, s)
		}
		return exitOK
	}
	which := *id
	if which != "" {
		if _, _, perr := journal.ParseID(which); perr != nil {
			fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", perr)
			return exitUsage
		}
	} else {
		which, err = eng.LatestDeploy(service)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
		return exitFailed
	}
	print := func(ev journal.Event) error { return journal.Format(e.stdout, ev, opts) }
	if *follow {
		// A deploy that holds its lock but is still updating its
		// repository has no journal yet: wait for it.
		for *id != "" {
			if _, err := eng.ReadDeploy(which); err == nil {
				break
			}
			h, _ := eng.Running(svcOf(*id))
			if h == nil || h.DeployID != *id {
				break
			}
			select {
			case <-ctx.Done():
				return exitFailed
			case <-time.After(100 * time.Millisecond):
			}
		}
		err := eng.Follow(ctx, which, print)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, journal.ErrInterrupted):
			fmt.Fprintf(e.stderr, "deploybot deploy-log: %v (see 'deploybot recover')\n", err)
		default:
			fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
		}
		return exitFailed
	}
	d, err := eng.ReadDeploy(which)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot deploy-log: %v\n", err)
		return exitFailed
	}
	if err := journal.WriteLog(e.stdout, d, opts); err != nil {
		return exitFailed
	}
	return exitOK
}

// svcOf returns the service of a (valid) deploy id.
func svcOf(id string) string {
	s, _, _ := journal.ParseID(id)
	return s
}
