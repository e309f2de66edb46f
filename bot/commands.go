package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"deploybot/bot/metrics"
	"deploybot/config"
	"deploybot/sal"
)

// right is what a sender must have for a command to run.
type right int

const (
	// anyone may run the command, anywhere the bot listens.
	anyone right = iota
	// inSALChannel: the command works only in a channel with a SAL project.
	inSALChannel
	// serviceDeployer: the sender is a deployer of the service named by the
	// first argument (by services account, or hostmask as a fallback).
	serviceDeployer
)

// command is one row of the command table. Argument counts and rights are
// checked once, centrally, in dispatch; handlers see valid requests only.
type command struct {
	name    string
	args    string // usage after the name, e.g. "<message>"
	help    string // one line
	minArgs int
	// maxArgs is the most words the arguments may have; 0 = no limit (the
	// last argument is free text).
	maxArgs int
	missing string // the reply when arguments are missing; default: the usage
	right   right
	// engine: the command needs the deployment engine.
	engine bool
	// mutates: the command changes the service named by its first
	// argument. Such commands run one at a time per service, in the
	// order they came, and never wait behind other commands (fair.go).
	// The others only read, and run side by side.
	mutates bool
	run     func(ctx context.Context, b *Bot, r *request)
}

// commands is the table of every command the bot knows. !help is built
// from it.
var commands = map[string]*command{}

func init() {
	for _, c := range []*command{
		{name: "help", args: "[<command>]", help: "list the commands, or show how to use one", maxArgs: 1, run: cmdHelp},
		{name: "log", args: "<message>", help: "append <message> to the Server Admin Log", minArgs: 1, missing: msgMissing, right: inSALChannel, run: cmdLog},
		{name: "deploy", args: "<service> [<sha1>] [<message…>]", help: "deploy the upstream head (or <sha1>) of a service: canary, then the groups", minArgs: 1, right: serviceDeployer, engine: true, mutates: true, run: cmdDeploy},
		{name: "revert", args: "<service> [<sha1>]", help: "deploy an earlier revision (default: the one live before the current one), then lock the service", minArgs: 1, maxArgs: 2, right: serviceDeployer, engine: true, mutates: true, run: cmdRevert},
		{name: "rollback", args: "<service>", help: "answer the open question of a deploy: roll back (or roll back an interrupted deploy)", minArgs: 1, maxArgs: 1, right: serviceDeployer, engine: true, mutates: true, run: cmdRollback},
		{name: "continue", args: "<service>", help: "answer the open question of a deploy: go on (or finish an interrupted deploy)", minArgs: 1, maxArgs: 1, right: serviceDeployer, engine: true, mutates: true, run: cmdContinue},
		{name: "abort", args: "<service>", help: "stop a running deploy once the hosts in flight finish, then ask whether to roll back", minArgs: 1, maxArgs: 1, right: serviceDeployer, engine: true, mutates: true, run: cmdAbort},
		{name: "lock", args: "<service> <reason…>", help: "hold a service: deploys are refused until !unlock", minArgs: 2, right: serviceDeployer, engine: true, mutates: true, run: cmdLock},
		{name: "unlock", args: "<service>", help: "release a service held by !lock or !revert", minArgs: 1, maxArgs: 1, right: serviceDeployer, engine: true, mutates: true, run: cmdUnlock},
		{name: "status", args: "[<service>]", help: "running deploys, locks and the live revision of each service", maxArgs: 1, engine: true, run: cmdStatus},
		{name: "deploylog", args: "<service> [<n>]", help: "summary of the last (or n-th last) deploy of a service", minArgs: 1, maxArgs: 2, engine: true, run: cmdDeploylog},
	} {
		commands[c.name] = c
	}
}

// request is one command as received.
type request struct {
	nick, user, host string
	account          string // services account from account-tag; "" when none
	channel          string // "" for a private message
	replyTo          string // the channel, or the sender's nick
	name             string // command name, lower case
	args             []string
	rest             string // everything after the command name, trimmed
	// svc is the service named by the first argument, for commands with
	// the serviceDeployer right (resolved by dispatch).
	svc *config.Service
	// deployer: the sender is a deployer of some service (set when the
	// command arrives); answers to them go first.
	deployer bool
}

// usage is the command written out, with the bot's prefix.
func (c *command) usage(prefix string) string {
	if c.args == "" {
		return prefix + c.name
	}
	return prefix + c.name + " " + c.args
}

// dispatch runs r if it names a known command and passes its checks, and
// answers in every case.
func (b *Bot) dispatch(ctx context.Context, r *request) {
	prefix := b.cfg.IRC.Prefix
	c, ok := commands[r.name]
	if !ok {
		b.reply(r, fmt.Sprintf("unknown command %s%s. %shelp lists the commands.", prefix, r.name, prefix))
		return
	}
	switch c.right {
	case inSALChannel:
		if _, ok := b.cfg.Project(r.channel); r.channel == "" || !ok {
			b.reply(r, fmt.Sprintf("%s%s works only in a channel with a Server Admin Log: %s.", prefix, c.name, strings.Join(b.salChannels(), ", ")))
			b.log.Info("refused", "command", c.name, "nick", r.nick, "account", r.account, "why", "not a SAL channel", "where", r.replyTo)
			return
		}
	}
	if len(r.args) < c.minArgs {
		if c.missing != "" {
			b.reply(r, c.missing)
			return
		}
		b.reply(r, fmt.Sprintf("missing argument. Usage: %s", c.usage(prefix)))
		return
	}
	if c.maxArgs > 0 && len(r.args) > c.maxArgs {
		b.reply(r, fmt.Sprintf("too many arguments. Usage: %s", c.usage(prefix)))
		return
	}
	if c.engine && (b.dep.eng == nil || b.dep.ctx == nil) {
		b.reply(r, "deploys are not enabled in this bot.")
		return
	}
	if c.right == serviceDeployer {
		s, ok := b.checkDeployer(c, r)
		if !ok {
			return
		}
		r.svc = s
	}
	if c.mutates && r.svc != nil {
		mu := b.serviceLock(r.svc.Name)
		mu.Lock()
		defer mu.Unlock()
	}
	c.run(ctx, b, r)
}

// serviceLock is held while a command changes the service. The service's
// lane already runs its commands one at a time; the lock holds even for a
// command that reached another lane (its sender's rights changed on the
// way).
func (b *Bot) serviceLock(service string) *sync.Mutex {
	b.svcMu.Lock()
	defer b.svcMu.Unlock()
	if b.svcLocks == nil {
		b.svcLocks = map[string]*sync.Mutex{}
	}
	mu := b.svcLocks[service]
	if mu == nil {
		mu = &sync.Mutex{}
		b.svcLocks[service] = mu
	}
	return mu
}

func (b *Bot) salChannels() []string {
	var out []string
	for ch := range b.cfg.SAL.Projects {
		out = append(out, ch)
	}
	sort.Strings(out)
	return out
}

func cmdHelp(_ context.Context, b *Bot, r *request) {
	prefix := b.cfg.IRC.Prefix
	if len(r.args) > 0 {
		name := strings.ToLower(strings.TrimPrefix(r.args[0], prefix))
		c, ok := commands[name]
		if !ok {
			b.reply(r, fmt.Sprintf("unknown command %s%s. %shelp lists the commands.", prefix, name, prefix))
			return
		}
		b.reply(r, fmt.Sprintf("%s — %s", c.usage(prefix), c.help))
		return
	}
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, prefix+name)
	}
	sort.Strings(names)
	b.reply(r, fmt.Sprintf("commands: %s. %shelp <command> shows its usage.", strings.Join(names, " "), prefix))
}

const msgMissing = "Message missing. Nothing logged."

// relayedAuthor is the user@host a relay's !log starts with.
var relayedAuthor = regexp.MustCompile(`^[^\s@!]{1,64}@[^\s@!]{1,255}$`)

func cmdLog(ctx context.Context, b *Bot, r *request) {
	project, _ := b.cfg.Project(r.channel)
	e := &sal.Entry{
		Nick:    r.nick,
		Account: r.account,
		Channel: r.channel,
		Project: project,
		Message: r.rest,
		Source:  sal.SourceIRC,
	}
	if b.relayOf(r) && attributeRelayed(e) {
		e.Sender = r.sender()
	}
	res := b.appendSAL(ctx, e)
	switch {
	case errors.Is(res.err, sal.ErrEmptyMessage):
		b.reply(r, msgMissing)
	case errors.Is(res.err, sal.ErrTooLong):
		b.reply(r, fmt.Sprintf("Message too long (at most %d bytes). Nothing logged.", sal.MaxMessageBytes))
	case res.err != nil && b.spool == nil:
		b.reply(r, fmt.Sprintf("Failed to log the message: %v", res.err))
	case res.err != nil && !res.queued:
		b.reply(r, fmt.Sprintf("Failed to log the message: %v (and it could not be queued: %v). Nothing logged.", res.err, res.spoolErr))
	case res.err != nil:
		b.reply(r, fmt.Sprintf("Failed to log the message: %v. It is queued and will be logged as soon as the log is back.", res.err))
	default:
		b.post(r, "", "Logged the message at "+b.permalink(e.ID))
	}
}

// sender is r's sender as a SAL entry records a relay: "nick!user@host
// (account)", without the account when there is none.
func (r *request) sender() string {
	s := r.nick + "!" + r.user + "@" + r.host
	if r.account != "" && r.account != "*" {
		s += " (" + r.account + ")"
	}
	return s
}

// attributeRelayed credits e to the user@host its message starts with, as
// relays (logmsgbot, tcpircbot) write "!log user@host message": it reports
// whether the message had one. Without one e is left as it is.
func attributeRelayed(e *sal.Entry) bool {
	words := strings.Fields(e.Message)
	if len(words) < 2 || !relayedAuthor.MatchString(words[0]) {
		return false
	}
	e.Nick = words[0]
	e.Account = ""
	e.Message = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(e.Message), words[0]))
	e.Source = sal.SourceRelay
	return true
}

// appendResult is what became of one SAL line.
type appendResult struct {
	err      error // the store's error; nil when the line is logged
	queued   bool  // err != nil but the line waits in the spool
	spoolErr error // why the line could not be queued
}

// salWait bounds what a command waits for the SAL store: flushing what
// waits in the spool, then its own append. A store that does not answer
// in time is treated as down: the line is queued.
var salWait = 5 * time.Second

// appendSAL writes e to the SAL after any lines queued earlier, and queues
// e in the spool (if there is one) when the store fails or does not answer
// in salWait. e gets its idempotency key before the first try, so a line
// whose commit was not acknowledged is stored once however often it is
// tried. Lines the store refuses as invalid (empty, too long) are never
// queued. It logs what happened.
func (b *Bot) appendSAL(ctx context.Context, e *sal.Entry) appendResult {
	if e.Key == "" {
		e.Key = sal.NewKey()
	}
	actx, cancel := context.WithTimeout(ctx, salWait)
	defer cancel()
	if b.spool != nil {
		// Lines queued earlier go first, so the log keeps their order.
		n, err := b.spool.Flush(actx, b.store)
		b.metrics.SpoolFlushed(n)
		if err != nil && (actx.Err() != nil || b.spoolHolds()) {
			// Earlier lines still wait: e waits behind them, even if the
			// store is back by the time e could be appended.
			return b.queueSAL(e, err)
		}
	}
	err := b.store.Append(actx, e)
	switch {
	case err == nil:
		b.metrics.SALAppend(string(e.Source), metrics.SALStored)
		b.log.Info("logged", "id", e.ID, "nick", e.Nick, "account", e.Account, "channel", e.Channel, "source", e.Source)
		return appendResult{}
	case errors.Is(err, sal.ErrEmptyMessage), errors.Is(err, sal.ErrTooLong):
		b.metrics.SALAppend(string(e.Source), metrics.SALRefused)
		return appendResult{err: err}
	}
	return b.queueSAL(e, err)
}

// spoolHolds reports whether lines wait in the spool; false if it cannot
// be read (then nothing queued can go first anyway).
func (b *Bot) spoolHolds() bool {
	p, err := b.spool.Pending()
	return err == nil && len(p) > 0
}

// queueSAL puts e in the spool after the store failed with err.
func (b *Bot) queueSAL(e *sal.Entry, err error) appendResult {
	b.log.Error("SAL append failed", "err", err, "nick", e.Nick, "channel", e.Channel)
	if b.spool == nil {
		return appendResult{err: err}
	}
	if serr := b.spool.Put(e); serr != nil {
		b.metrics.SALAppend(string(e.Source), metrics.SALLost)
		b.log.Error("SAL spool failed too; the line is lost", "err", serr, "nick", e.Nick, "message", e.Message)
		return appendResult{err: err, spoolErr: serr}
	}
	b.metrics.SALAppend(string(e.Source), metrics.SALSpooled)
	b.kickFlush()
	return appendResult{err: err, queued: true}
}

// logDeploy hands a deploy's SAL entry to the spool and returns at once:
// the flusher writes it (with its key, once), so a slow or stuck database
// never slows a deploy. Without a spool it is written in the background,
// within salWait.
func (b *Bot) logDeploy(e *sal.Entry) {
	if b.spool == nil {
		go b.appendSAL(context.Background(), e)
		return
	}
	if err := b.spool.Put(e); err != nil {
		b.log.Error("SAL spool failed; writing the deploy entry directly", "err", err, "message", e.Message)
		go b.appendSAL(context.Background(), e)
		return
	}
	b.metrics.SALAppend(string(e.Source), metrics.SALSpooled)
	b.kickFlush()
}
