// Package ircd runs a real IRC network on loopback for deploybot's
// end-to-end tests and for a local demo: InspIRCd 3 with Anope 2 services
// linked to it (Debian packages inspircd and anope), giving SASL PLAIN
// (plain and TLS), account-tag, extended-join, message-tags, server-time,
// batch, labeled-response and echo-message. It also holds a small raw IRC
// client (Client) for tests that must send and see exact lines.
//
// What lives here: starting and stopping the two servers (Start, StartT,
// Server.Close, Restart, Stop/Resume), their generated configurations,
// services accounts (Server.Register), operator actions (Server.Kill,
// Server.OperCommand), the test client (Dial, DialT, DialAllT) and message
// matchers (IsPrivmsgFrom, …). What does not: deploybot's own IRC client
// and bot logic, and the tests of the bot itself, which use this package
// from their own packages.
//
// # Servers
//
// Start writes inspircd.conf and Anope's services.conf into a working
// directory, starts InspIRCd (--nofork, --runasroot when root), waits for
// its client port, starts Anope (as user irc when root: Anope pauses when
// run as root), opens the harness's control connection (nick ControlNick,
// an oper), and returns when NickServ answers. Each server runs in its own
// process group and is killed by group on Close; both also get SIGKILL
// when the test process dies (Pdeathsig), so nothing outlives a test.
// Ports are free loopback ports unless given. No DNS is ever resolved: the
// server's resolver is 127.0.0.1 and hostname lookups are off.
//
// Flood protection is off unless Options.FloodProtection is set (then
// InspIRCd's defaults apply: about one line per second after a short
// burst, with fakelag).
//
// # Connection time
//
// InspIRCd completes a client's registration (sends 001) only in the first
// pass of its main loop after the wall-clock second changes, and an idle
// server sleeps up to a second between passes: measured, every client
// waited 1.0 s for 001. Two things shorten it to "until the next second
// boundary" (0.5 s on average): the control connection's ticker sends an
// empty line just after each second boundary (Options.NoTicker turns it
// off), and Dial does the same on its own connection while it waits for
// 001. Clients that register at the same time finish together, so dial
// several at once (DialAllT). Register uses the control connection rather
// than a new one.
package ircd
