package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"deploybot/config"
	"deploybot/sal"
	salweb "deploybot/sal/web"
)

// salUsage lists the sal subcommands.
const salUsage = `Usage: deploybot sal <list|search|add|wikitext> [flags] [args]

  list      the newest entries (filters: -project, -channel, -d, -before, -n)
  search    entries matching words: deploybot sal search [flags] <words…>
  add       append an entry: deploybot sal add [-project P] [-nick N] <message…>
  wikitext  days of the log in the wikitech SAL format (-d, -days)

Every subcommand takes -c FILE; list and search take -json (one JSON object
per line). Run 'deploybot sal <subcommand> -h' for its flags.
`

func runSAL(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, salUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, salUsage)
		return exitOK
	case "list", "search":
		return runSALList(ctx, e, args[0], args[1:])
	case "add":
		return runSALAdd(ctx, e, args[1:])
	case "wikitext":
		return runSALWikitext(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "deploybot sal: unknown subcommand %q\n\n%s", args[0], salUsage)
	return exitUsage
}

// salFlags is a flag set for "sal <sub>" with -c.
func salFlags(e *env, sub, usage string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("deploybot sal "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: deploybot sal %s %s\n\nFlags:\n", sub, usage)
		fs.PrintDefaults()
	}
	return fs, configFlag(fs)
}

// openSAL loads the configuration at path and opens its store.
func openSAL(e *env, path string) (*config.Config, sal.Store, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, nil, false
	}
	store, err := sal.Open(cfg.SAL.Database)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
		return nil, nil, false
	}
	return cfg, store, true
}

// parseDay parses YYYY-MM-DD as a UTC day.
func parseDay(s string) (time.Time, error) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid day %q: want YYYY-MM-DD", s)
	}
	return d, nil
}

func runSALList(ctx context.Context, e *env, sub string, args []string) int {
	usage := "[flags]"
	if sub == "search" {
		usage = "[flags] <words…>"
	}
	fs, path := salFlags(e, sub, usage)
	project := fs.String("project", "", "only entries of this `project`")
	channel := fs.String("channel", "", "only entries logged in this `channel`")
	day := fs.String("d", "", "only entries on or before this UTC `day` (YYYY-MM-DD)")
	before := fs.Int64("before", 0, "only entries with an id below this (the cursor of the next page)")
	n := fs.Int("n", 20, "at most this many entries (1–1000)")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	q := sal.Query{Project: *project, Channel: *channel, Before: *before, Limit: *n}
	if sub == "search" {
		q.Search = strings.Join(fs.Args(), " ")
		if strings.TrimSpace(q.Search) == "" {
			fmt.Fprintln(e.stderr, "deploybot sal search: give the words to search for")
			fs.Usage()
			return exitUsage
		}
	} else if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "deploybot sal list: unexpected argument %q (did you mean sal search?)\n", fs.Arg(0))
		return exitUsage
	}
	if *n < 1 || *n > 1000 {
		fmt.Fprintln(e.stderr, "deploybot sal: -n must be between 1 and 1000")
		return exitUsage
	}
	if *day != "" {
		d, err := parseDay(*day)
		if err != nil {
			fmt.Fprintln(e.stderr, "deploybot sal:", err)
			return exitUsage
		}
		q.Until = d.AddDate(0, 0, 1)
	}
	_, store, ok := openSAL(e, *path)
	if !ok {
		return exitFailed
	}
	defer store.Close()
	entries, err := store.List(ctx, q)
	if err != nil {
		fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, en := range entries {
			enc.Encode(en)
		}
		return exitOK
	}
	printEntries(e.stdout, entries)
	return exitOK
}

// printEntries writes entries one per line for people.
func printEntries(w io.Writer, entries []sal.Entry) {
	for _, en := range entries {
		where := en.Project
		if en.Channel != "" {
			where = en.Channel
		}
		fmt.Fprintf(w, "%6d  %s  %-12s %s: %s\n", en.ID, en.Time.Format("2006-01-02 15:04"), where, en.Nick, en.Message)
	}
}

func runSALAdd(ctx context.Context, e *env, args []string) int {
	fs, path := salFlags(e, "add", "[flags] <message…>")
	project := fs.String("project", "", "the SAL `project` (default: the project of the first configured channel)")
	nick := fs.String("nick", "", "who the entry is attributed to (default: $SUDO_USER, else the login name)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	msg := strings.Join(fs.Args(), " ")
	if strings.TrimSpace(msg) == "" {
		fmt.Fprintln(e.stderr, "deploybot sal add: message missing. Nothing logged.")
		return exitUsage
	}
	cfg, store, ok := openSAL(e, *path)
	if !ok {
		return exitFailed
	}
	defer store.Close()
	en := &sal.Entry{Nick: *nick, Project: *project, Message: msg, Source: sal.SourceCLI}
	if en.Nick == "" {
		en.Nick = os.Getenv("SUDO_USER")
	}
	if en.Nick == "" {
		if u, err := user.Current(); err == nil {
			en.Nick = u.Username
		}
	}
	if en.Project == "" && len(cfg.IRC.Channels) > 0 {
		en.Project, _ = cfg.Project(cfg.IRC.Channels[0])
	}
	if err := store.Append(ctx, en); err != nil {
		fmt.Fprintf(e.stderr, "deploybot: %v. Nothing logged.\n", err)
		return exitFailed
	}
	link := fmt.Sprintf("entry %d", en.ID)
	if cfg.SAL.PublicURL != "" {
		link = sal.Permalink(cfg.SAL.PublicURL, en.ID)
	}
	fmt.Fprintf(e.stdout, "Logged the message at %s\n", link)
	return exitOK
}

func runSALWikitext(ctx context.Context, e *env, args []string) int {
	fs, path := salFlags(e, "wikitext", "[flags]")
	day := fs.String("d", "", "the newest UTC `day` to print (YYYY-MM-DD; default today)")
	days := fs.Int("days", 1, "how many days, going back from -d (1–31)")
	project := fs.String("project", "", "only entries of this `project`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	last := time.Now().UTC().Truncate(24 * time.Hour)
	if *day != "" {
		d, err := parseDay(*day)
		if err != nil {
			fmt.Fprintln(e.stderr, "deploybot sal:", err)
			return exitUsage
		}
		last = d
	}
	if *days < 1 || *days > 31 {
		fmt.Fprintln(e.stderr, "deploybot sal: -days must be between 1 and 31")
		return exitUsage
	}
	_, store, ok := openSAL(e, *path)
	if !ok {
		return exitFailed
	}
	defer store.Close()
	q := sal.Query{Project: *project, Since: last.AddDate(0, 0, 1-*days), Until: last.AddDate(0, 0, 1), Limit: 1000}
	var all []sal.Entry
	for {
		page, err := store.List(ctx, q)
		if err != nil {
			fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
			return exitFailed
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	if err := salweb.Wikitext(e.stdout, all); err != nil {
		fmt.Fprintf(e.stderr, "deploybot: %v\n", err)
		return exitFailed
	}
	return exitOK
}
