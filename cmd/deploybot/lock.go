package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"deploybot/deployer"
	"deploybot/deployer/journal"
)

func runLock(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "lock")
	conf := configFlag(fs)
	why := fs.String("m", "", "the `reason` (required)")
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 1 || (len(pos) == 1 && *why == "") {
		if len(pos) == 1 {
			fmt.Fprintln(e.stderr, "deploybot lock: -m reason is required")
		}
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig(e, *conf)
	if !ok {
		return exitFailed
	}
	if len(pos) == 0 && *why != "" { // inside a deploy repository
		svc, code := needServiceHere(e, "lock", *conf)
		if code >= 0 {
			return code
		}
		pos = append(pos, svc)
	}
	eng, err := deployer.Open(cfg, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot lock: %v\n", err)
		return exitFailed
	}
	defer eng.Close()
	if len(pos) == 0 { // list
		locks, err := eng.Locks()
		if err != nil {
			fmt.Fprintf(e.stderr, "deploybot lock: %v\n", err)
			return exitFailed
		}
		if len(locks) == 0 {
			fmt.Fprintln(e.stdout, "No service is locked.")
		}
		for _, l := range locks {
			if l.Manual != nil {
				fmt.Fprintf(e.stdout, "%s: locked by %s since %s: %s\n", l.Service, l.Manual.Who, l.Manual.Since.UTC().Format(time.RFC3339), l.Manual.Why)
			}
			if l.Deploy != nil {
				fmt.Fprintf(e.stdout, "%s: deploy %s running by %s since %s\n", l.Service, l.Deploy.DeployID, l.Deploy.Who, l.Deploy.Since.UTC().Format(time.RFC3339))
			}
		}
		return exitOK
	}
	service := pos[0]
	if _, ok := cfg.Service(service); !ok {
		fmt.Fprintf(e.stderr, "deploybot lock: unknown service %q\n", service)
		return exitFailed
	}
	if err := eng.Lock(service, deployer.Holder{Who: operator(), Why: *why}); err != nil {
		fmt.Fprintf(e.stderr, "deploybot lock: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "%s locked: %s\n", service, *why)
	return exitOK
}

func runUnlock(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "unlock")
	conf := configFlag(fs)
	service, given, code := parseOptionalArg(fs, args)
	if code >= 0 {
		return code
	}
	cfg, ok := loadConfig(e, *conf)
	if !ok {
		return exitFailed
	}
	if !given { // inside a deploy repository
		if service, code = needServiceHere(e, "unlock", *conf); code >= 0 {
			return code
		}
	}
	if err := journal.ValidService(service); err != nil {
		fmt.Fprintf(e.stderr, "deploybot unlock: %v\n", err)
		return exitUsage
	}
	eng, err := deployer.Open(cfg, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot unlock: %v\n", err)
		return exitFailed
	}
	defer eng.Close()
	h, err := eng.Unlock(service, operator())
	if err != nil {
		if errors.Is(err, journal.ErrNotLocked) {
			fmt.Fprintf(e.stderr, "deploybot unlock: %s is not locked\n", service)
		} else {
			fmt.Fprintf(e.stderr, "deploybot unlock: %v\n", err)
		}
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "%s unlocked (was locked by %s: %s)\n", service, h.Who, h.Why)
	return exitOK
}
