package ircd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircutils"
)

// DefaultCaps are the capabilities Dial requests when ClientOptions.CapReq
// is nil, as far as the server offers them. "sasl" is added when
// ClientOptions.Account is set. echo-message is deliberately absent: a test
// that wants its own messages echoed asks for it.
var DefaultCaps = []string{"message-tags", "account-tag", "extended-join", "server-time"}

// DefaultDialTimeout bounds Dial (connect, registration, SASL, joins) when
// ClientOptions.Timeout is zero.
var DefaultDialTimeout = scale.D(15 * time.Second)

// maxHistory is how many received messages a Client keeps; beyond it the
// oldest are dropped (a test never gets near it; a long demo might).
const maxHistory = 100000

// ClientOptions configure Dial.
type ClientOptions struct {
	// Nick is the nickname to register with (required).
	Nick string
	// User is the username (ident) sent in USER; default: Nick. InspIRCd
	// truncates it to 10 characters.
	User string
	// RealName is the USER realname; default "deploybot e2e client".
	RealName string
	// Account and Password, when Account is set, log in with SASL PLAIN
	// during registration; Dial fails unless the server answers 903.
	Account, Password string
	// CapReq lists the capabilities to request. nil means DefaultCaps
	// (those the server offers) plus "sasl" when Account is set; a non-nil
	// list is requested exactly (plus "sasl" when Account is set) and Dial
	// fails if the server NAKs it; []string{} requests nothing.
	CapReq []string
	// Channels are joined after registration; Dial waits for the server's
	// JOIN echo and end of NAMES for each.
	Channels []string
	// TLS, when set, makes Dial use TLS with this configuration (see
	// Server.ClientTLSConfig).
	TLS *tls.Config
	// Timeout bounds the whole of Dial; default DefaultDialTimeout.
	Timeout time.Duration
}

// Client is a raw IRC client for end-to-end tests: what it sends is exactly
// what the test wrote (Raw, Say), and everything the server sends is parsed
// with ircmsg.ParseLine and kept.
//
// Received messages are kept in order in a history, from the first line
// after connecting (so CAP, AUTHENTICATE, 900/903, 001, JOIN echoes, … are
// all there after Dial returns). Each message is handed out at most once:
// Expect returns the oldest not yet handed out message that matches and
// marks it as handed out; messages that did not match stay available to
// later Expect and Collect calls, in any order. Discard marks everything
// received so far as handed out, so later calls see only newer messages.
//
// The client answers the server's PINGs itself, in the background. A Client
// is safe for use by several goroutines.
type Client struct {
	conn net.Conn

	wmu sync.Mutex // serializes writes

	mu       sync.Mutex
	entries  []entry // received messages; entries[i] has sequence number base+i
	base     int
	unused   int           // hint: every entry before this sequence number is used
	notify   chan struct{} // closed and replaced when an entry arrives or the reader stops
	readErr  error         // set when the reader stops
	nick     string
	account  string
	caps     map[string]bool
	syncSeq  atomic.Int64
	done     chan struct{} // closed when the reader has stopped
	closeErr error
	closing  sync.Once
}

type entry struct {
	msg  ircmsg.Message
	raw  string
	used bool // handed out by Expect/Collect, or unparsable
}

// Dial connects to addr (host:port), registers as opts.Nick (CAP LS 302,
// CAP REQ, SASL PLAIN when opts.Account is set, CAP END), waits for 001,
// joins opts.Channels and returns. On any failure it closes the connection
// and returns an error that quotes what the server said.
//
// While it waits for 001 it sends an empty line right after each change of
// the wall-clock second: InspIRCd completes registrations only in the first
// main-loop pass of a new second, and an empty line (ignored by the server)
// makes that pass happen at once instead of up to a second later.
func Dial(addr string, opts ClientOptions) (*Client, error) {
	if opts.Nick == "" {
		return nil, errors.New("ircd.Dial: ClientOptions.Nick is required")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	deadline := time.Now().Add(timeout)
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if opts.TLS != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, opts.TLS)
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("ircd.Dial %s as %s: %w", addr, opts.Nick, err)
	}
	c := newClient(conn, opts.Nick)
	if err := c.register(opts, deadline); err != nil {
		c.Close()
		return nil, fmt.Errorf("ircd.Dial %s as %s: %w", addr, opts.Nick, err)
	}
	return c, nil
}

// DialT is Dial for tests: it fails the test on error and closes the client
// in t.Cleanup.
func DialT(t testing.TB, addr string, opts ClientOptions) *Client {
	t.Helper()
	c, err := Dial(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DialAllT dials one client per options, all at once, and returns them in
// the same order. Registrations that run in parallel complete together, so
// N clients cost about as much wall time as one.
func DialAllT(t testing.TB, addr string, opts ...ClientOptions) []*Client {
	t.Helper()
	clients := make([]*Client, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i], errs[i] = Dial(addr, opts[i])
		}()
	}
	wg.Wait()
	for _, c := range clients {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return clients
}

func newClient(conn net.Conn, nick string) *Client {
	c := &Client{
		conn:   conn,
		notify: make(chan struct{}),
		nick:   nick,
		caps:   map[string]bool{},
		done:   make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// readLoop reads lines until the connection ends, keeps them, and answers
// PINGs.
func (c *Client) readLoop() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.conn, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			c.handleLine(line)
		}
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
			return
		}
	}
}

func (c *Client) handleLine(line string) {
	raw := strings.TrimRight(line, "\r\n")
	if raw == "" {
		return
	}
	msg, err := ircmsg.ParseLine(raw)
	if err == nil && msg.Command == "PING" {
		c.Raw("PONG :" + lastParam(msg))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		switch msg.Command {
		case "001":
			if len(msg.Params) > 0 {
				c.nick = msg.Params[0]
			}
		case "NICK":
			if len(msg.Params) > 0 && equalFold(msg.Nick(), c.nick) {
				c.nick = msg.Params[0]
			}
		case "900": // RPL_LOGGEDIN <nick> <nuh> <account> :text
			if len(msg.Params) > 2 {
				c.account = msg.Params[2]
			}
		case "901": // RPL_LOGGEDOUT
			c.account = ""
		}
	}
	c.entries = append(c.entries, entry{msg: msg, raw: raw, used: err != nil})
	if len(c.entries) > maxHistory {
		drop := len(c.entries) - maxHistory*3/4
		c.entries = append([]entry(nil), c.entries[drop:]...)
		c.base += drop
	}
	close(c.notify)
	c.notify = make(chan struct{})
}

// Raw writes line followed by "\r\n", verbatim: nothing is checked,
// escaped or stripped, so a test can send control characters or even
// several lines at once.
func (c *Client) Raw(line string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(scale.D(10 * time.Second)))
	_, err := c.conn.Write([]byte(line + "\r\n"))
	return err
}

// Say sends "PRIVMSG target :text", text verbatim (see Raw).
func (c *Client) Say(target, text string) error {
	return c.Raw("PRIVMSG " + target + " :" + text)
}

// Join sends JOIN channel and waits (up to timeout) for the server's JOIN
// echo and end of NAMES.
func (c *Client) Join(channel string, timeout time.Duration) error {
	seq := c.next()
	if err := c.Raw("JOIN " + channel); err != nil {
		return err
	}
	return c.awaitJoin(&seq, channel, time.Now().Add(timeout))
}

// Nick returns the client's current nickname (as confirmed by the server).
func (c *Client) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// Account returns the services account the server says the client is
// logged in to (from 900/901), or "".
func (c *Client) Account() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.account
}

// HasCap reports whether the server acknowledged capability name.
func (c *Client) HasCap(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps[name]
}

// Expect waits up to timeout for a message that matches and returns it
// (see Client for which messages it considers). match nil matches any
// message. The error says whether the time ran out or the connection
// ended, and quotes the last lines received.
func (c *Client) Expect(timeout time.Duration, match func(ircmsg.Message) bool) (ircmsg.Message, error) {
	if match == nil {
		match = func(ircmsg.Message) bool { return true }
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	from := -1 // messages before this sequence number have been tried
	for {
		cands, notify, readErr := c.unusedFrom(from)
		for _, e := range cands {
			from = e.seq + 1
			if match(e.msg) && c.take(e.seq) {
				return e.msg, nil
			}
		}
		if readErr != nil {
			// Anything that arrived before the end has been tried.
			if cands, _, _ := c.unusedFrom(from); len(cands) == 0 {
				return ircmsg.Message{}, fmt.Errorf("%s: connection ended (%v) before a matching message arrived; last lines:\n%s", c.Nick(), readErr, c.tail(15))
			}
			continue
		}
		select {
		case <-notify:
		case <-timer.C:
			for _, e := range c.unusedFromMust(from) {
				if match(e.msg) && c.take(e.seq) {
					return e.msg, nil
				}
			}
			return ircmsg.Message{}, fmt.Errorf("%s: no matching message within %v; last lines:\n%s", c.Nick(), timeout, c.tail(15))
		}
	}
}

// candidate is a message with its sequence number.
type candidate struct {
	seq int
	msg ircmsg.Message
}

// unusedFrom returns the messages not handed out, from sequence number from
// on (from the first unused one when from < 0), with the channel that
// signals the next arrival and the reader's error.
func (c *Client) unusedFrom(from int) ([]candidate, chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Advance the hint past messages already handed out.
	if c.unused < c.base {
		c.unused = c.base
	}
	for c.unused-c.base < len(c.entries) && c.entries[c.unused-c.base].used {
		c.unused++
	}
	if from < c.unused {
		from = c.unused
	}
	var out []candidate
	for s := from; s < c.base+len(c.entries); s++ {
		if e := c.entries[s-c.base]; !e.used {
			out = append(out, candidate{s, e.msg})
		}
	}
	return out, c.notify, c.readErr
}

func (c *Client) unusedFromMust(from int) []candidate {
	cands, _, _ := c.unusedFrom(from)
	return cands
}

// take marks the message with sequence number seq handed out; false if it
// already was (another Expect took it) or is no longer kept.
func (c *Client) take(seq int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := seq - c.base
	if i < 0 || i >= len(c.entries) || c.entries[i].used {
		return false
	}
	c.entries[i].used = true
	return true
}

// Collect waits within (or until the connection ends), then returns every
// message that matches and was not handed out before, including ones that
// arrived before the call, and marks them handed out. match nil matches
// any message.
func (c *Client) Collect(within time.Duration, match func(ircmsg.Message) bool) []ircmsg.Message {
	select {
	case <-time.After(within):
	case <-c.done:
	}
	var out []ircmsg.Message
	for _, e := range c.unusedFromMust(-1) {
		if (match == nil || match(e.msg)) && c.take(e.seq) {
			out = append(out, e.msg)
		}
	}
	return out
}

// Discard marks every message received so far as handed out, so that
// Expect and Collect only consider messages that arrive later.
func (c *Client) Discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		c.entries[i].used = true
	}
	c.unused = c.base + len(c.entries)
}

// History returns a copy of every message received (and still kept),
// handed out or not, oldest first. For debugging and for assertions on
// ordering.
func (c *Client) History() []ircmsg.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ircmsg.Message, 0, len(c.entries))
	for _, e := range c.entries {
		if e.msg.Command != "" {
			out = append(out, e.msg)
		}
	}
	return out
}

// Lines returns the last n raw lines received (all when n <= 0), as sent by
// the server without the trailing CR LF. For test failure messages.
func (c *Client) Lines(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 0
	if n > 0 && len(c.entries) > n {
		start = len(c.entries) - n
	}
	out := make([]string, 0, len(c.entries)-start)
	for _, e := range c.entries[start:] {
		out = append(out, e.raw)
	}
	return out
}

// Sync sends a PING with a unique token and waits up to timeout for the
// server's PONG: afterwards every reply the server sent to earlier commands
// has been received (though not necessarily replies that pass through
// services, such as NickServ's). The PONG itself is marked handed out.
func (c *Client) Sync(timeout time.Duration) error {
	_, err := c.roundTrip(time.Now().Add(timeout))
	return err
}

// roundTrip sends lines, then a PING, and returns the messages received
// between the call and the matching PONG.
func (c *Client) roundTrip(deadline time.Time, lines ...string) ([]ircmsg.Message, error) {
	token := "sync-" + strconv.FormatInt(c.syncSeq.Add(1), 10)
	seq := c.next()
	for _, l := range append(lines, "PING :"+token) {
		if err := c.Raw(l); err != nil {
			return nil, err
		}
	}
	start := seq
	if _, err := c.await(&seq, deadline, func(m ircmsg.Message) bool {
		return m.Command == "PONG" && lastParam(m) == token
	}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ircmsg.Message
	for s := max(start, c.base); s < seq-1; s++ {
		if e := c.entries[s-c.base]; e.msg.Command != "" {
			out = append(out, e.msg)
		}
	}
	if i := seq - 1 - c.base; i >= 0 {
		c.entries[i].used = true // the PONG
	}
	return out, nil
}

// Close sends QUIT, closes the connection and waits for the reader to
// stop. It is idempotent.
func (c *Client) Close() error {
	c.closing.Do(func() {
		c.wmu.Lock()
		c.conn.SetWriteDeadline(time.Now().Add(scale.D(time.Second)))
		c.conn.Write([]byte("QUIT :bye\r\n"))
		c.wmu.Unlock()
		c.closeErr = c.conn.Close()
		<-c.done
	})
	return c.closeErr
}

// Done is closed when the connection has ended (server closed it, KILL,
// Close).
func (c *Client) Done() <-chan struct{} { return c.done }

// next returns the sequence number the next received message will get.
func (c *Client) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + len(c.entries)
}

// await waits until deadline for a message at or after sequence number
// *seq that matches, without marking anything handed out, and advances
// *seq past it.
func (c *Client) await(seq *int, deadline time.Time, match func(ircmsg.Message) bool) (ircmsg.Message, error) {
	return c.awaitNudging(seq, deadline, match, false)
}

// awaitNudging is await; with nudge it also sends an empty line right
// after each change of the wall-clock second (see Dial).
func (c *Client) awaitNudging(seq *int, deadline time.Time, match func(ircmsg.Message) bool, nudge bool) (ircmsg.Message, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var tick <-chan time.Time
	for {
		c.mu.Lock()
		start := max(*seq, c.base)
		batch := make([]ircmsg.Message, 0, c.base+len(c.entries)-start)
		for s := start; s < c.base+len(c.entries); s++ {
			batch = append(batch, c.entries[s-c.base].msg)
		}
		notify, readErr := c.notify, c.readErr
		c.mu.Unlock()
		for i, m := range batch {
			*seq = start + i + 1
			if m.Command != "" && match(m) {
				return m, nil
			}
		}
		if readErr != nil {
			return ircmsg.Message{}, fmt.Errorf("connection ended (%v); last lines:\n%s", readErr, c.tail(15))
		}
		if nudge && tick == nil {
			tick = time.After(untilNextSecond())
		}
		select {
		case <-notify:
		case <-tick:
			c.Raw("")
			tick = nil
		case <-timer.C:
			return ircmsg.Message{}, fmt.Errorf("timed out; last lines:\n%s", c.tail(15))
		}
	}
}

// untilNextSecond is the time until just after the next change of the
// wall-clock second.
func untilNextSecond() time.Duration {
	now := time.Now()
	return now.Truncate(time.Second).Add(time.Second + 2*time.Millisecond).Sub(now)
}

func (c *Client) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := max(len(c.entries)-n, 0)
	var b strings.Builder
	for _, e := range c.entries[start:] {
		b.WriteString("  ")
		b.WriteString(e.raw)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "  (nothing received)\n"
	}
	return b.String()
}

// registrationError reports whether m ends a registration attempt, and how.
func registrationError(m ircmsg.Message) error {
	switch m.Command {
	case "ERROR", "432", "433", "436", "437", "465", "463", "464":
		return fmt.Errorf("server refused registration: %s %s", m.Command, strings.Join(m.Params, " "))
	}
	return nil
}

func (c *Client) register(opts ClientOptions, deadline time.Time) error {
	user := opts.User
	if user == "" {
		user = opts.Nick
	}
	real := opts.RealName
	if real == "" {
		real = "deploybot e2e client"
	}
	seq := 0
	for _, l := range []string{"CAP LS 302", "NICK " + opts.Nick, "USER " + user + " 0 * :" + real} {
		if err := c.Raw(l); err != nil {
			return err
		}
	}

	// CAP LS, possibly over several lines ("CAP * LS * :…").
	offered := map[string]bool{}
	registered := false
	for {
		m, err := c.await(&seq, deadline, func(m ircmsg.Message) bool {
			return isCapSub(m, "LS") || m.Command == "001" || registrationError(m) != nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CAP LS: %w", err)
		}
		if err := registrationError(m); err != nil {
			return err
		}
		if m.Command == "001" {
			registered = true // no CAP support at all
			break
		}
		for _, tok := range strings.Fields(lastParam(m)) {
			name, _, _ := strings.Cut(tok, "=")
			offered[name] = true
		}
		if len(m.Params) >= 4 && m.Params[2] == "*" {
			continue
		}
		break
	}

	var req []string
	if opts.CapReq == nil {
		for _, name := range DefaultCaps {
			if offered[name] {
				req = append(req, name)
			}
		}
	} else {
		req = append(req, opts.CapReq...)
	}
	if opts.Account != "" {
		if !offered["sasl"] {
			return errors.New("the server offers no sasl capability (are services linked?)")
		}
		if !contains(req, "sasl") {
			req = append(req, "sasl")
		}
	}
	if registered {
		if opts.Account != "" || len(req) > 0 {
			return errors.New("the server does not support CAP")
		}
	} else if len(req) > 0 {
		if err := c.Raw("CAP REQ :" + strings.Join(req, " ")); err != nil {
			return err
		}
		m, err := c.await(&seq, deadline, func(m ircmsg.Message) bool {
			return isCapSub(m, "ACK") || isCapSub(m, "NAK") || registrationError(m) != nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CAP ACK: %w", err)
		}
		if err := registrationError(m); err != nil {
			return err
		}
		if isCapSub(m, "NAK") {
			return fmt.Errorf("server refused CAP REQ :%s (offered: %s)", strings.Join(req, " "), strings.Join(sortedKeys(offered), " "))
		}
		c.mu.Lock()
		for _, name := range strings.Fields(lastParam(m)) {
			if !strings.HasPrefix(name, "-") {
				c.caps[name] = true
			}
		}
		c.mu.Unlock()
	}

	if opts.Account != "" {
		if err := c.sasl(&seq, deadline, opts.Account, opts.Password); err != nil {
			return err
		}
	}
	if !registered {
		if err := c.Raw("CAP END"); err != nil {
			return err
		}
		m, err := c.awaitNudging(&seq, deadline, func(m ircmsg.Message) bool {
			return m.Command == "001" || registrationError(m) != nil
		}, true)
		if err != nil {
			return fmt.Errorf("waiting for 001: %w", err)
		}
		if err := registrationError(m); err != nil {
			return err
		}
	}
	for _, ch := range opts.Channels {
		if err := c.Raw("JOIN " + ch); err != nil {
			return err
		}
		if err := c.awaitJoin(&seq, ch, deadline); err != nil {
			return err
		}
	}
	return nil
}

// sasl runs AUTHENTICATE PLAIN and waits for 903.
func (c *Client) sasl(seq *int, deadline time.Time, account, password string) error {
	isFail := func(m ircmsg.Message) bool {
		switch m.Command {
		case "902", "904", "905", "906", "907", "908":
			return true
		}
		return registrationError(m) != nil
	}
	if err := c.Raw("AUTHENTICATE PLAIN"); err != nil {
		return err
	}
	m, err := c.await(seq, deadline, func(m ircmsg.Message) bool {
		return (m.Command == "AUTHENTICATE" && len(m.Params) > 0 && m.Params[0] == "+") || isFail(m)
	})
	if err != nil {
		return fmt.Errorf("SASL: waiting for AUTHENTICATE +: %w", err)
	}
	if isFail(m) {
		return fmt.Errorf("SASL PLAIN refused: %s %s", m.Command, strings.Join(m.Params, " "))
	}
	for _, chunk := range ircutils.EncodeSASLResponse([]byte(account + "\x00" + account + "\x00" + password)) {
		if err := c.Raw("AUTHENTICATE " + chunk); err != nil {
			return err
		}
	}
	m, err = c.await(seq, deadline, func(m ircmsg.Message) bool { return m.Command == "903" || isFail(m) })
	if err != nil {
		return fmt.Errorf("SASL: waiting for 903: %w", err)
	}
	if m.Command != "903" {
		return fmt.Errorf("SASL login as %q failed: %s %s", account, m.Command, strings.Join(m.Params, " "))
	}
	return nil
}

// awaitJoin waits for our own JOIN of channel and the end of its NAMES.
func (c *Client) awaitJoin(seq *int, channel string, deadline time.Time) error {
	nick := c.Nick()
	m, err := c.await(seq, deadline, func(m ircmsg.Message) bool {
		if m.Command == "JOIN" && len(m.Params) > 0 && equalFold(m.Params[0], channel) && equalFold(m.Nick(), nick) {
			return true
		}
		switch m.Command {
		case "403", "405", "471", "473", "474", "475", "476", "477", "479", "489":
			return len(m.Params) > 1 && equalFold(m.Params[1], channel)
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("joining %s: %w", channel, err)
	}
	if m.Command != "JOIN" {
		return fmt.Errorf("joining %s: %s %s", channel, m.Command, strings.Join(m.Params, " "))
	}
	if _, err := c.await(seq, deadline, func(m ircmsg.Message) bool {
		return m.Command == "366" && len(m.Params) > 1 && equalFold(m.Params[1], channel)
	}); err != nil {
		return fmt.Errorf("joining %s: waiting for end of NAMES: %w", channel, err)
	}
	return nil
}

func isCapSub(m ircmsg.Message, sub string) bool {
	return m.Command == "CAP" && len(m.Params) >= 3 && strings.EqualFold(m.Params[1], sub)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
