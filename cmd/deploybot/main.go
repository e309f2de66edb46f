// Command deploybot is the deploybot binary: the IRC bot and its servers
// (serve) and the operator's shell commands.
//
// This file and its siblings only wire packages to flags, signals and exit
// codes; the work is done in config, sal, bot and deployer.
//
// Exit codes: 0 success, 1 failure, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"deploybot/deployer"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	defaultConf = "/etc/deploybot/config.yaml"
)

// subcommand is one row of the CLI's command table.
type subcommand struct {
	name  string
	args  string
	short string
	run   func(ctx context.Context, env *env, args []string) int
}

// subcommands is the CLI's command table (filled in init: the commands'
// flag sets read their own usage from it).
var subcommands []*subcommand

func init() {
	subcommands = []*subcommand{
		{name: "serve", args: "[-c FILE]", short: "run the bot, the SAL web server and the deployment engine", run: runServe},
		{name: "check-config", args: "[-c FILE]", short: "validate a configuration file and summarize it", run: runCheckConfig},
		{name: "sal", args: "<list|search|add|wikitext> [flags]", short: "read and write the Server Admin Log from the shell", run: runSAL},
		{name: "deploy", args: "[<service>] [--rev SHA1] [-m MESSAGE] [--dry-run] [--force] [-c FILE]", short: "deploy a service to its canary and groups, asking on the terminal", run: runDeploy},
		{name: "deploy-log", args: "[<service>] [--latest] [-f] [--id ID] [--host GLOB] [--level LEVEL] [-c FILE]", short: "list deploys, print or follow a deploy's journal", run: runDeployLog},
		{name: "lock", args: "[[<service>] -m REASON] [-c FILE]", short: "lock a service against deploys (no service: list the locks)", run: runLock},
		{name: "unlock", args: "[<service>] [-c FILE]", short: "release a service's manual lock", run: runUnlock},
		{name: "revert", args: "[<service>] [<sha1>] [-m MESSAGE] [-c FILE]", short: "deploy an earlier revision (default: the last good one before the live one), then lock the service", run: runRevert},
		{name: "recover", args: "[<id>] [--rollback|--mark-ended] [-c FILE]", short: "list interrupted deploys, roll one back or mark it ended", run: runRecover},
		{name: "build", args: "<service> [--source-rev SHA1] [--review | --to BRANCH] [-c FILE]", short: "move the deploy repository's source submodule, run build_command, commit and push (for review)", run: runBuild},
		{name: "import-scap", args: "<deploy repo dir> [-environment ENV] [-name SERVICE] [-upstream URL] [-branch BRANCH]", short: "print a Scap3 service's settings as a deploybot services: entry", run: runImportScap},
		{name: "install-aliases", args: "[-force] [dir]", short: "create the deploy and deploy-log commands (links to this binary), as Scap3 has", run: runInstallAliases},
		{name: "version", short: "print the version", run: runVersion},
	}
}

// env is what a subcommand may touch: its output streams.
type env struct {
	stdout, stderr io.Writer
}

func main() {
	deployer.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{os.Stdout, os.Stderr}, aliasArgs(os.Args[0], os.Args[1:]))
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return exitOK
	}
	for _, c := range subcommands {
		if c.name == name {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "deploybot: unknown command %q\n\n", name)
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: deploybot <command> [flags]\n\nCommands:\n")
	cs := append([]*subcommand(nil), subcommands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'deploybot <command> -h' for a command's flags.\n")
}

// newFlags returns the flag set of subcommand name, printing its usage to
// e.stderr.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("deploybot "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c *subcommand
	for _, s := range subcommands {
		if s.name == name {
			c = s
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: deploybot %s %s\n\n%s.\n", name, c.args, strings.ToUpper(c.short[:1])+c.short[1:])
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args into fs and returns the exit code to stop with,
// or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

// configFlag adds the -c flag.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("DEPLOYBOT_CONFIG")
	if def == "" {
		def = defaultConf
	}
	return fs.String("c", def, "configuration `file` (default from $DEPLOYBOT_CONFIG)")
}
