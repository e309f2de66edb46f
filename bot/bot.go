// Package bot is deploybot's IRC side: it connects to the network, logs in
// with SASL, joins the configured channels, reads commands from one
// declarative table, checks arguments and rights centrally, runs them
// fairly (fair.go: per sender, and per service for the commands that
// change one), and answers in the channel, pacing and splitting every line
// it sends, deploy prompts first (sender.go).
//
// It wires the other packages to IRC: it writes to the Server Admin Log
// through a sal.Store. It holds no storage, deployment or configuration
// logic of its own, and nothing outside this package speaks IRC.
package bot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/bot/metrics"
	"deploybot/config"
	"deploybot/sal"
)

// Bot is one connection to an IRC network serving the configured channels.
type Bot struct {
	cfg   *config.Config
	store sal.Store
	spool *sal.Spool // where !log lines wait while store is down; nil = none
	log   *slog.Logger

	flushNow chan struct{}

	conn  *ircevent.Connection
	link  *link // reconnects, nick, rejoins, member accounts (conn.go)
	out   *sender
	sched *scheduler // runs commands fairly (fair.go)

	svcMu    sync.Mutex
	svcLocks map[string]*sync.Mutex // service → held while a command changes it

	mu          sync.Mutex
	accountTags bool // the server granted account-tag

	casemap atomic.Uint32 // caseMapping: the server's ISUPPORT CASEMAPPING

	dep deploys

	metrics *metrics.Metrics // nil: none (see SetMetrics)
}

// SetMetrics makes the bot report to m (call it before Run): SAL appends
// and spool flushes, reconnects, lines sent, and, read at every scrape,
// the connection state, the output queue and the spool depth.
func (b *Bot) SetMetrics(m *metrics.Metrics) {
	b.metrics = m
	b.out.sent = m.LineSent
	m.WatchIRC(b.conn.Connected, b.out.pending)
	if b.spool != nil {
		m.WatchSpool(func() (int, error) {
			entries, err := b.spool.Pending()
			return len(entries), err
		})
	}
}

// New returns a bot for cfg that logs to store, queueing lines in spool
// while store fails (spool may be nil). logger may be nil.
func New(cfg *config.Config, store sal.Store, spool *sal.Spool, logger *slog.Logger) (*Bot, error) {
	if logger == nil {
		logger = slog.Default()
	}
	b := &Bot{cfg: cfg, store: store, spool: spool, log: logger, flushNow: make(chan struct{}, 1)}
	b.sched = newScheduler(b.dispatch, b.slowDown)
	host, _, _ := net.SplitHostPort(cfg.IRC.Server)
	tlsConfig := &tls.Config{ServerName: host, InsecureSkipVerify: cfg.IRC.TLSInsecure, MinVersion: tls.VersionTLS12}
	if cfg.IRC.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.IRC.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("irc.tls_ca_file: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("irc.tls_ca_file: %s holds no PEM certificate", cfg.IRC.TLSCAFile)
		}
	}
	b.conn = &ircevent.Connection{
		Server:      cfg.IRC.Server,
		Nick:        cfg.IRC.Nick,
		User:        cfg.IRC.User,
		RealName:    cfg.IRC.RealName,
		UseTLS:      cfg.IRC.TLS,
		TLSConfig:   tlsConfig,
		RequestCaps: []string{"message-tags", "account-tag", "extended-join", "account-notify", "server-time", "multi-prefix"},
		QuitMessage: "deploybot stopping",
		Timeout:     30 * time.Second,
		KeepAlive:   60 * time.Second,
		Log:         log.New(logWriter{logger}, "", 0),
	}
	if s := cfg.IRC.SASL; s != nil {
		b.conn.UseSASL = true
		b.conn.SASLLogin = s.Account
		b.conn.SASLPassword = s.Password.Reveal()
	}
	b.link = newLink(b)
	b.conn.AddConnectCallback(b.onConnect)
	b.conn.AddCallback("PRIVMSG", b.onPrivmsg)
	b.out = newSender(ircWire{b}, cfg.IRC.Rate.PerSecond, cfg.IRC.Rate.Burst, logger)
	b.trackDelivery()
	return b, nil
}

// Run connects and serves until ctx is done, then quits IRC. With
// irc.relay_listen set it also serves the relay listener (see relay.go).
func (b *Bot) Run(ctx context.Context) error {
	var relay net.Listener
	if b.cfg.IRC.RelayListen != "" {
		var err error
		if relay, err = b.listenRelay(); err != nil {
			return fmt.Errorf("irc.relay_listen: %w", err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { b.out.run(ctx) })
	b.dep.ctx = ctx
	defer b.dep.wg.Wait()
	b.sched.start(ctx)
	defer b.sched.wait()
	seen := b.postUnfinished()
	if b.dep.eng != nil && b.cfg.Deploy.State != "" {
		wg.Go(func() { b.watchUnfinished(ctx, seen) })
	}
	if b.spool != nil {
		wg.Go(func() { b.flusher(ctx) })
	}
	if relay != nil {
		wg.Go(func() {
			if err := b.serveRelay(ctx, relay); err != nil {
				b.log.Error("relay listener stopped", "err", err)
			}
		})
	}

	stopWaits := context.AfterFunc(ctx, b.link.shutdown)
	err := b.connect(ctx)
	stopWaits()
	if err != nil {
		return err
	}
	loopDone := make(chan struct{})
	go func() { b.conn.Loop(); close(loopDone) }()
	wg.Go(func() { b.link.watchNick(ctx) })
	<-ctx.Done()
	b.conn.Quit()
	b.link.shutdown() // after Quit: a reconnect it wakes sees the quit
	b.link.stopLoop(loopDone, 5*time.Second)
	return nil
}

// connect makes the first connection, retrying with exponential backoff
// and jitter (see link) until it succeeds or ctx is done. Loop makes the
// later ones, with the same backoff.
func (b *Bot) connect(ctx context.Context) error {
	for {
		err := b.conn.Connect()
		if err == nil {
			return nil
		}
		if errors.Is(err, ircevent.ClientHasQuit) {
			return err
		}
		if err := b.link.failed(ctx, err); err != nil {
			return err
		}
	}
}

func (b *Bot) onConnect(ircmsg.Message) {
	caps := b.conn.AcknowledgedCaps()
	_, hasAccountTag := caps["account-tag"]
	b.mu.Lock()
	b.accountTags = hasAccountTag
	b.mu.Unlock()
	if !hasAccountTag {
		b.log.Warn("the server did not grant account-tag: only hostmask rules can authorize")
	}
	// ISUPPORT (005) comes before the end of the MOTD, when this runs.
	token, ok := b.conn.ISupport()["CASEMAPPING"]
	cm := parseCaseMapping(token, ok)
	b.setCaseMapping(cm)
	if ok && !strings.EqualFold(token, cm.String()) {
		b.log.Info("the server's case mapping is compared as ascii", "casemapping", token)
	}
	b.log.Info("connected", "server", b.cfg.IRC.Server, "nick", b.conn.CurrentNick())
	b.link.connected()
	for _, ch := range b.cfg.IRC.Channels {
		b.conn.Join(ch)
	}
}

// spoolRetry is how often queued SAL lines are retried.
const spoolRetry = 5 * time.Second

// flusher moves spooled SAL lines to the store whenever it takes them.
func (b *Bot) flusher(ctx context.Context) {
	t := time.NewTicker(spoolRetry)
	defer t.Stop()
	for {
		n, err := b.spool.Flush(ctx, b.store)
		b.metrics.SpoolFlushed(n)
		if n > 0 {
			b.log.Info("queued SAL lines logged", "count", n)
		}
		if err != nil {
			b.log.Warn("queued SAL lines still waiting", "err", err, "spool", b.spool.Path())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.flushNow:
		}
	}
}

// kickFlush makes the flusher try soon (after its current wait).
func (b *Bot) kickFlush() {
	select {
	case b.flushNow <- struct{}{}:
	default:
	}
}

// holdsNick reports whether the bot has its configured nick. It acts on
// nothing otherwise, so a second copy of the bot never answers twice.
func (b *Bot) holdsNick() bool {
	return b.sameName(b.conn.CurrentNick(), b.cfg.IRC.Nick)
}

func (b *Bot) onPrivmsg(m ircmsg.Message) {
	if !b.holdsNick() {
		return
	}
	r := b.requestFrom(m, b.conn.CurrentNick())
	if r == nil {
		return
	}
	b.submit(r)
}

// submit hands r to the scheduler: in the lane of the service it changes
// when it is a mutating command from a deployer of that service, else in
// its sender's lane.
func (b *Bot) submit(r *request) bool {
	r.deployer = b.isDeployer(r)
	laneKey, control := "sender:"+r.who(), false
	if c, ok := commands[r.name]; ok && c.mutates && len(r.args) > 0 {
		if s, ok := b.cfg.Service(r.args[0]); ok && b.deployerOf(r, s) {
			laneKey, control = "service:"+s.Name, true
		}
	}
	if !b.sched.submit(r, laneKey, control) {
		b.log.Debug("command dropped: too many pending", "command", r.name, "nick", r.nick, "account", r.account, "host", r.user+"@"+r.host)
		return false
	}
	return true
}

// slowDown tells r's sender that their commands are dropped until their
// backlog clears.
func (b *Bot) slowDown(r *request) {
	b.log.Warn("sender over its pending-command bound; ignoring it until its backlog clears", "nick", r.nick, "account", r.account, "host", r.user+"@"+r.host)
	if r.anonymous() {
		b.reply(r, "slow down: too many commands; I am ignoring yours until you pause for a while.")
		return
	}
	b.reply(r, fmt.Sprintf("slow down: you have %d commands pending; I am ignoring your other commands until they are done.", maxPending))
}

// requestFrom turns m, a message the bot received while its nick was
// self, into a command request: nil unless m is a PRIVMSG from somebody
// else, to the bot or to a channel it listens on, that starts with the
// command prefix. The sender's account comes from m's account tag (see
// accountOf).
func (b *Bot) requestFrom(m ircmsg.Message, self string) *request {
	if m.Command != "PRIVMSG" || len(m.Params) < 2 {
		return nil
	}
	nuh, err := m.NUH()
	if err != nil || b.sameName(nuh.Name, self) {
		return nil
	}
	target, text := m.Params[0], m.Params[1]
	r := &request{nick: nuh.Name, user: nuh.User, host: nuh.Host}
	if isChannel(target) {
		if !b.listensOn(target) {
			return nil
		}
		r.channel, r.replyTo = target, target
	} else {
		r.replyTo = nuh.Name
	}
	r.account = b.accountOf(m)
	if !parseCommand(b.cfg.IRC.Prefix, text, r) {
		return nil
	}
	return r
}

// parseCommand fills r's name, args and rest from text when text starts
// with prefix, and reports whether it did.
func parseCommand(prefix, text string, r *request) bool {
	if !strings.HasPrefix(text, prefix) {
		return false
	}
	body := strings.TrimPrefix(text, prefix)
	name, rest, _ := strings.Cut(body, " ")
	if name == "" || strings.ContainsAny(name[:1], " \t") {
		return false
	}
	r.name = strings.ToLower(name)
	r.rest = strings.TrimSpace(rest)
	r.args = strings.Fields(r.rest)
	return true
}

func (b *Bot) listensOn(channel string) bool {
	for _, ch := range b.cfg.IRC.Channels {
		if b.sameName(ch, channel) {
			return true
		}
	}
	return false
}

// priority is the class of the lines answering r: replies to deployers
// go before replies to anybody else.
func (b *Bot) priority(r *request) Priority {
	if r.deployer {
		return PriorityDeploy
	}
	return PriorityNormal
}

// reply answers r's sender, addressing them by nick in a channel.
func (b *Bot) reply(r *request, text string) { b.replyKeyed(r, "", text) }

// replyKeyed is reply for a line that describes state: with a key, it
// replaces an answer with the same key still waiting for r's sender.
func (b *Bot) replyKeyed(r *request, key, text string) {
	if r.channel != "" {
		text = r.nick + ": " + text
	}
	b.post(r, key, text)
}

// replyFunc is replyKeyed for an answer computed when it is about to be
// sent; fn must be quick (see sender.sayFunc).
func (b *Bot) replyFunc(r *request, key string, fn func() string) {
	f := fn
	if r.channel != "" {
		f = func() string { return r.nick + ": " + fn() }
	}
	b.out.put(line{target: r.replyTo, prio: b.priority(r), origin: r.who(), key: replyKey(r, key), fn: f})
}

// post answers r where it came from without addressing its sender; with
// a key, it replaces a waiting answer to r's sender with the same key.
func (b *Bot) post(r *request, key, text string) {
	b.out.put(line{target: r.replyTo, prio: b.priority(r), origin: r.who(), key: replyKey(r, key), text: text})
}

// replyKey makes key one of r's sender's: another's answer is not theirs
// to replace.
func replyKey(r *request, key string) string {
	if key == "" {
		return ""
	}
	return r.who() + "\x00" + key
}

// say sends text to target at priority p, paced and split.
func (b *Bot) say(target string, p Priority, text string) { b.out.say(target, p, text) }

// permalink is the public URL of SAL entry id.
func (b *Bot) permalink(id int64) string {
	if b.cfg.SAL.PublicURL == "" {
		return "entry #" + strconv.FormatInt(id, 10)
	}
	return sal.Permalink(b.cfg.SAL.PublicURL, id)
}

// logWriter turns the IRC library's log lines into structured logs.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Info(strings.TrimSpace(string(p)), "from", "irc")
	return len(p), nil
}
