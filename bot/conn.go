package bot

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/config"
)

// Timing of the connection's life. Every delay gets jitter, so that many
// bots (or many restarts) do not act in step.
const (
	// reconnectMin and reconnectMax bound the reconnect backoff.
	reconnectMin = time.Second
	reconnectMax = 2 * time.Minute
	// stableAfter is how long a connection must have lived for the
	// reconnect backoff to start again from reconnectMin.
	stableAfter = time.Minute

	// rejoinDelay is the wait before rejoining a channel after a KICK;
	// up to rejoinJitter more is added.
	rejoinDelay  = 5 * time.Second
	rejoinJitter = time.Second
	// rejoinMin and rejoinMax bound the backoff of rejoins the server
	// refused (banned, invite only, full, bad key).
	rejoinMin = 10 * time.Second
	rejoinMax = 5 * time.Minute

	// nickCheckEvery is how often, give or take a quarter, the bot checks
	// who holds its primary nick while it does not.
	nickCheckEvery = time.Minute
	// whoisTimeout is how long a WHOIS of the primary nick may go
	// unanswered before another is sent.
	whoisTimeout = 15 * time.Second
	// recoverEvery is the shortest interval between two NickServ RECOVERs.
	recoverEvery = 30 * time.Second
	// nickAfterRecover is how long after a RECOVER the bot sends NICK
	// itself, in case services did not change its nick.
	nickAfterRecover = 3 * time.Second
)

// backoff yields exponentially growing delays with jitter: each delay is
// drawn uniformly from [base/2, base], and base doubles after each delay,
// from min up to max. The zero value is not usable; set min and max.
type backoff struct {
	min, max time.Duration
	base     time.Duration // 0 means min
}

// next returns the next delay and doubles the base.
func (b *backoff) next() time.Duration {
	if b.base < b.min {
		b.base = b.min
	}
	d := b.base/2 + rand.N(b.base/2+1)
	b.base = min(b.base*2, b.max)
	return d
}

// reset makes the next delay start from min again.
func (b *backoff) reset() { b.base = b.min }

// jitter returns d plus a random duration in [0, j).
func jitter(d, j time.Duration) time.Duration {
	if j <= 0 {
		return d
	}
	return d + rand.N(j)
}

// link is what the bot knows about its connection to the IRC network
// beyond one TCP connection: the reconnect backoff, the nick it holds and
// whether it held the primary nick before, pending rejoins, and the
// services accounts of channel members.
//
// Reconnecting: irc-go's Loop reconnects every ReconnectFreq. The bot
// keeps Loop (and all its protocol handling) but waits its own backoff at
// the moment a connection attempt ends, on the goroutine that makes the
// attempts: in dial when the dial fails, and in the Close of the socket
// it handed out otherwise (irc-go closes the socket of an ended
// connection before it reconnects). ReconnectFreq is set below the
// shortest backoff delay, so Loop adds no wait of its own.
type link struct {
	b      *Bot
	dialer net.Dialer

	stop     chan struct{} // closed when the bot shuts down
	stopOnce sync.Once

	members memberTable

	mu           sync.Mutex
	reconnect    backoff
	waited       bool      // the current attempt's end has been waited for
	registeredAt time.Time // when the current connection registered; zero if not
	nick         string    // the bot's nick on the current connection
	held         bool      // the bot holds its primary nick now
	heldBefore   bool      // it held it when its previous connection ended
	yielded      bool      // NickServ recovered the nick from this connection
	whois        *whoisReply
	lastRecover  time.Time
	rejoins      map[string]*rejoin // folded channel name → pending rejoin
	registered   int                // connections registered so far
}

// whoisReply collects the answer to a WHOIS of the primary nick.
type whoisReply struct {
	sent    time.Time
	found   bool   // 311: somebody has the nick
	account string // 330: the services account they are logged in to
}

// rejoin is a pending JOIN of a channel the bot was kicked from or could
// not join.
type rejoin struct {
	channel string
	retry   backoff
	timer   *time.Timer
}

// newLink returns the connection state of b and hooks it into b.conn:
// its dialer, its reconnect timing and the callbacks that follow nicks,
// channels and members.
func newLink(b *Bot) *link {
	l := &link{
		b:         b,
		dialer:    net.Dialer{},
		stop:      make(chan struct{}),
		reconnect: backoff{min: reconnectMin, max: reconnectMax},
		rejoins:   make(map[string]*rejoin),
	}
	l.members.init()
	c := b.conn
	c.DialContext = l.dial
	c.ReconnectFreq = reconnectMin / 4
	c.AddDisconnectCallback(l.onDisconnect)
	c.AddCallback("NICK", l.onNick)
	c.AddCallback("QUIT", l.onQuit)
	for _, cmd := range []string{"JOIN", "PART", "KICK", "QUIT", "NICK", "ACCOUNT", "354", "315"} {
		c.AddCallback(cmd, l.onMembers)
	}
	c.AddCallback("KICK", l.onKick)
	c.AddCallback("JOIN", l.onJoin)
	// Refusals of a JOIN: full, invite only, banned, bad key, registered
	// users only, TLS users only, too many channels.
	for _, num := range []string{"471", "473", "474", "475", "477", "489", "405"} {
		c.AddCallback(num, l.onJoinRefused)
	}
	for _, num := range []string{"311", "330", "318"} {
		c.AddCallback(num, l.onWhois)
	}
	c.AddCallback("NOTICE", l.onNotice)
	c.AddCallback("433", l.onNickInUse)
	return l
}

// shutdown ends every wait: the bot is stopping.
func (l *link) shutdown() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.mu.Lock()
	l.stopRejoinsLocked()
	l.mu.Unlock()
}

// stopped reports whether shutdown has been called.
func (l *link) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until shutdown.
func (l *link) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	}
}

// dial opens the TCP connection of one connection attempt. irc-go calls it
// from Connect, on the goroutine that makes the attempts.
func (l *link) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	l.waited = false
	l.registeredAt = time.Time{}
	l.mu.Unlock()
	c, err := l.dialer.DialContext(ctx, network, addr)
	if err != nil {
		l.ended(err)
		return nil, err
	}
	return &hookedConn{Conn: c, closed: func() { l.ended(nil) }}, nil
}

// ended waits before the next connection attempt: the current one failed
// (err is its error when known) or its connection ended. It logs the
// delay.
func (l *link) ended(err error) {
	if l.stopped() {
		return
	}
	l.mu.Lock()
	registered := !l.registeredAt.IsZero()
	var lived time.Duration
	if registered {
		lived = time.Since(l.registeredAt)
		if lived >= stableAfter {
			l.reconnect.reset()
		}
	}
	l.registeredAt = time.Time{}
	d := l.reconnect.next()
	l.waited = true
	l.mu.Unlock()

	server := l.b.cfg.IRC.Server
	retry := d.Round(time.Millisecond)
	switch {
	case registered:
		l.b.log.Warn("IRC connection lost; reconnecting", "server", server, "connected_for", lived.Round(time.Second), "retry_in", retry)
	case err != nil:
		l.b.log.Warn("IRC connection failed; retrying", "server", server, "err", err, "retry_in", retry)
	default:
		l.b.log.Warn("IRC connection failed before registration; retrying", "server", server, "retry_in", retry)
	}
	l.sleep(d)
}

// failed is called by the first connection's loop after Connect returned
// err. It waits a backoff delay unless the attempt already did (an attempt
// that never dialled has not), and returns ctx's error once ctx is done.
func (l *link) failed(ctx context.Context, err error) error {
	l.b.log.Info("IRC connection attempt ended", "err", err)
	l.mu.Lock()
	waited := l.waited
	l.waited = false
	l.mu.Unlock()
	if !waited {
		l.ended(err)
	}
	return ctx.Err()
}

// hookedConn is a net.Conn that reports its first Close.
type hookedConn struct {
	net.Conn
	once   sync.Once
	closed func()
}

// Close closes the connection, then calls the hook (which may wait).
func (c *hookedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.closed)
	return err
}

// connected notes a new registered connection. onConnect calls it before
// it joins the channels.
func (l *link) connected() {
	c := l.b.conn
	nick := c.CurrentNick()
	l.mu.Lock()
	if l.registered > 0 {
		l.b.metrics.Reconnected()
	}
	l.registered++
	l.registeredAt = time.Now()
	l.nick = nick
	l.held = l.b.sameName(nick, l.b.cfg.IRC.Nick)
	l.yielded = false
	l.whois = nil
	heldBefore := l.heldBefore
	l.mu.Unlock()
	l.members.reset(l.b.caseMapping())
	if l.held {
		l.b.log.Info("holding the primary nick", "nick", nick)
		return
	}
	l.b.log.Warn("connected without the primary nick; not acting on commands until it is regained",
		"nick", nick, "primary", l.b.cfg.IRC.Nick, "held_before", heldBefore)
	l.checkNick()
}

// onDisconnect forgets what held only for the connection that ended.
func (l *link) onDisconnect(ircmsg.Message) {
	l.mu.Lock()
	l.heldBefore = l.held && !l.yielded
	l.held = false
	l.whois = nil
	l.stopRejoinsLocked()
	l.mu.Unlock()
	l.members.clear()
}

// watchNick checks every nickCheckEvery (with jitter), until ctx is done,
// who holds the primary nick while the bot does not.
func (l *link) watchNick(ctx context.Context) {
	for {
		t := time.NewTimer(jitter(nickCheckEvery*3/4, nickCheckEvery/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if l.b.conn.Connected() && !l.b.holdsNick() {
			l.checkNick()
		}
	}
}

// checkNick asks the server who holds the primary nick (WHOIS), unless the
// bot holds it or already asked; onWhois decides what to do.
func (l *link) checkNick() {
	if l.b.holdsNick() {
		return
	}
	l.mu.Lock()
	if l.whois != nil && time.Since(l.whois.sent) < whoisTimeout {
		l.mu.Unlock()
		return
	}
	l.whois = &whoisReply{sent: time.Now()}
	l.mu.Unlock()
	l.b.conn.Send("WHOIS", l.b.cfg.IRC.Nick)
}

// onWhois collects the reply to checkNick's WHOIS (311 user, 330 account,
// 318 end) and acts on it at the end.
func (l *link) onWhois(m ircmsg.Message) {
	if len(m.Params) < 2 || !l.b.sameName(m.Params[1], l.b.cfg.IRC.Nick) {
		return
	}
	l.mu.Lock()
	w := l.whois
	if w == nil {
		l.mu.Unlock()
		return
	}
	switch m.Command {
	case "311":
		w.found = true
	case "330":
		if len(m.Params) >= 3 {
			w.account = m.Params[2]
		}
	case "318":
		l.whois = nil
	}
	heldBefore := l.heldBefore
	l.mu.Unlock()
	if m.Command == "318" {
		l.regain(*w, heldBefore)
	}
}

// regain acts on who holds the primary nick (w), so that exactly one copy
// of the bot ends up with it:
//   - nobody: take it (NICK);
//   - somebody not logged in to the bot's own services account, and the
//     bot has one (SASL): an impostor; NickServ RECOVER, then NICK;
//   - somebody logged in to the bot's account: this process's own ghost
//     if this process held the nick on its previous connection (RECOVER);
//     otherwise another running copy of the bot, which is left alone:
//     watchNick checks again later and takes the nick once it is free;
//   - without SASL the bot cannot prove anything and only retries.
func (l *link) regain(w whoisReply, heldBefore bool) {
	primary := l.b.cfg.IRC.Nick
	sasl := l.b.cfg.IRC.SASL
	holder := w.account
	if holder == "" {
		holder = "(none)"
	}
	switch {
	case !w.found:
		l.b.log.Info("the primary nick is free; taking it", "nick", primary)
		l.b.conn.Send("NICK", primary)
	case sasl == nil:
		l.b.log.Warn("the primary nick is in use and the bot has no services account to regain it; will retry", "nick", primary, "holder_account", holder)
	case !l.b.sameName(w.account, sasl.Account):
		l.b.log.Warn("an impostor holds the primary nick; asking NickServ to recover it", "nick", primary, "holder_account", holder)
		l.recover()
	case heldBefore:
		l.b.log.Warn("this bot's ghost from its previous connection holds the primary nick; asking NickServ to recover it", "nick", primary)
		l.recover()
	default:
		l.b.log.Warn("another copy of the bot holds the primary nick; staying quiet until it leaves", "nick", primary, "holder_account", holder)
	}
}

// recover asks NickServ to recover the primary nick. Anope 2.0's RECOVER
// (its GHOST is only an optional alias of it) kills a holder logged in to
// the same account, or renames any other holder to a guest nick, and then
// changes the caller's nick itself where the IRCd allows (InspIRCd does).
// NICK follows shortly in case it did not.
func (l *link) recover() {
	l.mu.Lock()
	if time.Since(l.lastRecover) < recoverEvery {
		l.mu.Unlock()
		l.b.log.Info("NickServ RECOVER sent recently; waiting", "nick", l.b.cfg.IRC.Nick)
		return
	}
	l.lastRecover = time.Now()
	l.mu.Unlock()
	primary := l.b.cfg.IRC.Nick
	l.b.conn.Privmsg("NickServ", "RECOVER "+primary)
	time.AfterFunc(nickAfterRecover, func() {
		if l.stopped() || !l.b.conn.Connected() || l.b.holdsNick() {
			return
		}
		l.b.conn.Send("NICK", primary)
	})
}

// onNick follows the bot's own nick (irc-go's CurrentNick is already
// updated when this runs) and logs every change.
func (l *link) onNick(m ircmsg.Message) {
	if len(m.Params) < 1 {
		return
	}
	from, to := m.Nick(), m.Params[0]
	l.mu.Lock()
	if !l.b.sameName(from, l.nick) {
		l.mu.Unlock()
		l.freed(from)
		return
	}
	l.nick = to
	was := l.held
	l.held = l.b.sameName(to, l.b.cfg.IRC.Nick)
	now := l.held
	l.mu.Unlock()
	l.b.log.Info("nick changed", "from", from, "to", to)
	switch {
	case now && !was:
		l.b.log.Info("holding the primary nick; acting on commands", "nick", to)
	case was && !now:
		l.b.log.Warn("lost the primary nick; not acting on commands until it is regained", "nick", to, "primary", l.b.cfg.IRC.Nick)
		l.checkNick()
	}
}

// onNickInUse notes the server's refusal of a NICK (irc-go itself picks
// another nick while registering).
func (l *link) onNickInUse(m ircmsg.Message) {
	if len(m.Params) >= 2 {
		l.b.log.Debug("nick in use", "nick", m.Params[1])
	}
}

// onQuit takes the primary nick when its holder quits.
func (l *link) onQuit(m ircmsg.Message) { l.freed(m.Nick()) }

// freed takes the primary nick at once when the bot sees its holder (who
// shares a channel with the bot) quit or change nick: typically another
// copy of the bot that stopped.
func (l *link) freed(nick string) {
	primary := l.b.cfg.IRC.Nick
	if !l.b.sameName(nick, primary) || l.b.holdsNick() {
		return
	}
	l.b.log.Info("the primary nick was freed; taking it", "nick", primary)
	l.b.conn.Send("NICK", primary)
}

// ownNick returns the bot's nick on the current connection.
func (l *link) ownNick() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nick == "" {
		return l.b.conn.CurrentNick()
	}
	return l.nick
}

// onNotice logs what NickServ tells the bot, and notes when NickServ has
// recovered the nick from this connection for another one (so this
// process does not claim the nick back as its own ghost afterwards).
func (l *link) onNotice(m ircmsg.Message) {
	if len(m.Params) < 2 || !l.b.sameName(m.Nick(), "NickServ") {
		return
	}
	text := m.Params[1]
	if strings.Contains(text, "has been recovered by") {
		l.mu.Lock()
		l.yielded = true
		l.mu.Unlock()
	}
	l.b.log.Info("NickServ", "text", text)
}

// onKick schedules a rejoin when the bot is kicked from a channel it serves.
func (l *link) onKick(m ircmsg.Message) {
	if len(m.Params) < 2 || !l.b.sameName(m.Params[1], l.ownNick()) {
		return
	}
	channel, reason := m.Params[0], ""
	if len(m.Params) >= 3 {
		reason = m.Params[2]
	}
	if !l.b.listensOn(channel) {
		return
	}
	d := jitter(rejoinDelay, rejoinJitter)
	l.b.log.Warn("kicked from a channel; rejoining", "channel", channel, "by", m.Nick(), "reason", reason, "retry_in", d.Round(time.Millisecond))
	l.scheduleRejoin(channel, d)
}

// onJoinRefused logs a refused JOIN of a served channel and retries it
// with backoff.
func (l *link) onJoinRefused(m ircmsg.Message) {
	if len(m.Params) < 2 || !l.b.listensOn(m.Params[1]) {
		return
	}
	channel := m.Params[1]
	l.mu.Lock()
	r := l.rejoins[config.FoldName(channel)]
	if r == nil {
		r = &rejoin{channel: channel, retry: backoff{min: rejoinMin, max: rejoinMax}}
		l.rejoins[config.FoldName(channel)] = r
	}
	d := r.retry.next()
	l.mu.Unlock()
	l.b.log.Warn("cannot join a channel; retrying", "channel", channel, "numeric", m.Command, "reason", m.Params[len(m.Params)-1], "retry_in", d.Round(time.Millisecond))
	l.scheduleRejoin(channel, d)
}

// scheduleRejoin sends JOIN channel after d, replacing any pending rejoin
// timer of channel (its backoff is kept).
func (l *link) scheduleRejoin(channel string, d time.Duration) {
	if l.stopped() {
		return
	}
	key := config.FoldName(channel)
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rejoins[key]
	if r == nil {
		r = &rejoin{channel: channel, retry: backoff{min: rejoinMin, max: rejoinMax}}
		l.rejoins[key] = r
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = time.AfterFunc(d, func() {
		if !l.stopped() {
			l.b.conn.Join(channel)
		}
	})
}

// onJoin ends the rejoin of a channel the bot has joined.
func (l *link) onJoin(m ircmsg.Message) {
	if len(m.Params) < 1 || !l.b.sameName(m.Nick(), l.ownNick()) {
		return
	}
	key := config.FoldName(m.Params[0])
	l.mu.Lock()
	r := l.rejoins[key]
	delete(l.rejoins, key)
	l.mu.Unlock()
	if r != nil {
		if r.timer != nil {
			r.timer.Stop()
		}
		l.b.log.Info("rejoined a channel", "channel", m.Params[0])
	}
}

// stopRejoinsLocked cancels every pending rejoin; l.mu is held.
func (l *link) stopRejoinsLocked() {
	for key, r := range l.rejoins {
		if r.timer != nil {
			r.timer.Stop()
		}
		delete(l.rejoins, key)
	}
}

// stopLoop waits up to d for irc-go's Loop to return (done is closed
// then) after Quit.
func (l *link) stopLoop(done <-chan struct{}, d time.Duration) {
	select {
	case <-done:
	case <-time.After(d):
		l.b.log.Warn("IRC server did not close the connection after QUIT")
	}
}
