package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"golang.org/x/crypto/ssh"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// The !status latency benchmark: the real deploybot binary on a real
// InspIRCd + Anope of its own (flood protection off), one SASL client
// asking !status in a channel, and, in the second phase, chatter clients
// posting ordinary lines into the same channel.
//
// InspIRCd (3.15; checked with strace) does not set TCP_NODELAY on the
// client sockets it accepts, so Nagle's algorithm holds every small line it
// writes while an earlier one is still unacknowledged, and the receivers
// (the bot and the test clients: Linux, delayed ACKs of 20–40 ms on
// loopback) acknowledge late unless they send something themselves. Two
// consequences for what is measured here:
//
//   - Idle: the bot asks for echo-message, so the server writes the echo
//     of each reply back to the bot, and the bot sends nothing after it: a
//     command that reaches the server within the bot's delayed-ACK time
//     after its last reply waits for that ACK. Measured here: !status p50
//     28 ms with 10–20 ms between requests, about 1 ms with 45–65 ms (the
//     reflector, with echo-message too, alike). The requests are
//     therefore spaced statusGapMin (45 ms) or more apart, as commands
//     typed by people are.
//   - Chatter: at 1,000 lines/s something is always unacknowledged, so
//     each line the server writes to the bot or to the asking client
//     waits for the next delayed ACK, whatever the bot does.
//
// So that the bot's own share can be read off, the benchmark measures, in
// the same run and under the same conditions, a reflector: a test client
// in the channel that answers a trigger line with one line and does no
// work (with echo-message, like the bot). The bot/reflector ratios
// (…-vs-reflector) are the bot's own share.
const (
	// statusSamples is the number of timed !status requests (and as many
	// reflector requests) per phase and per b.N iteration: with
	// -benchtime 1x (make bench) b.N is 1, and the percentiles need enough
	// samples to mean something (p99 of 200 is the 198th fastest).
	statusSamples = 200
	// statusWarmup requests of each kind are sent before timing starts
	// (the bot's first journal reads, the connections' first round trips).
	statusWarmup = 10
	// statusChatterClients post chatterRate lines per second between them.
	statusChatterClients = 4
	statusChatterRate    = 1000
	// statusChatterRamp is how long the chatter runs before the first
	// timed request of the chatter phase.
	statusChatterRamp = 500 * time.Millisecond
	// statusGapMin and statusGapMax bound the pause between one reply and
	// the next request (uniform, fixed seed, the same sequence in every
	// series). The requests are sequential; the pause is longer than the
	// receivers' delayed-ACK time (see above), spreads the requests over
	// seconds of chatter, and keeps them out of step with the chatter
	// tickers.
	statusGapMin = 45 * time.Millisecond
	statusGapMax = 65 * time.Millisecond

	statusChannel   = "#status-bench"
	statusService   = "svc"
	statusReflector = "reflector"
)

// statusBenchConfig configures the bot for the benchmark: one service (so
// !status answers exactly one line, "svc: idle, live revision unknown …",
// read from the journal directory; no fleet is contacted, but the engine
// that `serve` starts needs a key and a known_hosts file, both local), and
// irc.rate at 100 lines/s with a burst of 100. Requests are sequential and
// at least statusGapMin (45 ms) apart, so the bot replies at most 22
// lines/s: its token bucket never runs dry, and the benchmark measures the
// bot, not its pacing. InspIRCd's flood protection is off (ircd.Options{}),
// so the server paces nobody either.
const statusBenchConfig = `
irc:
  server: %[1]s
  nick: %[2]s
  sasl: {account: %[2]s, password_file: sasl.secret}
  channels: ["%[3]s"]
  rate: {per_second: 100, burst: 100}
sal:
  database: sal.db
deploy:
  deploy_dir: deployment
  journal_dir: deploys
  serve: %[4]s
  ssh: {user: deploy, key_file: id_ed25519, known_hosts: known_hosts}
services:
  %[5]s:
    repo: %[5]s/deploy
    upstream: file:///nonexistent/%[5]s.git
    target_dir: /srv/deployment/%[5]s/deploy
    groups:
      - {name: all, hosts: ["127.0.0.1"]}
`

// BenchmarkStatusLatency measures the time from a client sending
// "!status" in a channel to the bot's reply arriving at that client, first
// with the channel idle, then while statusChatterClients clients post
// statusChatterRate ordinary lines per second into the same channel. Each
// phase times statusSamples sequential !status requests per b.N
// iteration, then as many requests to the reflector (see above). It
// reports the p50 and p99 of each phase for the bot (idle-p50-ms, …,
// chatter-p99-ms) and for the reflector (reflector-idle-p50-ms, …), the
// chatter rate achieved (lines written by the chatter clients / chatter
// time), the bot's chatter/idle ratios (p50-ratio, p99-ratio), and the
// bot/reflector ratios (idle-p50-vs-reflector, chatter-p50-vs-reflector,
// chatter-p99-vs-reflector): all from the same run.
//
// A sample is the wall time from just before the client writes
// "PRIVMSG #status-bench :!status" (or the reflector's trigger) to its
// reader having received and parsed the reply (Client.Expect returning).
// It includes both hops through InspIRCd and the test client's reading.
func BenchmarkStatusLatency(b *testing.B) {
	srv := ircd.StartT(b, ircd.Options{}) // flood protection off
	const botNick, botPass = "statusbot", "status-bot-pw-1"
	const user, userPass = "stan", "stan-pw-1"
	for acct, pass := range map[string]string{botNick: botPass, user: userPass} {
		if err := srv.Register(acct, pass); err != nil {
			b.Fatalf("register %s: %v", acct, err)
		}
	}
	bt := startBot(b, fmt.Sprintf(statusBenchConfig, srv.Addr, botNick, statusChannel, freeAddr(b), statusService),
		map[string]string{"sasl.secret": botPass + "\n", "id_ed25519": statusSSHKey(b), "known_hosts": ""})

	opts := []ircd.ClientOptions{
		{Nick: user, Account: user, Password: userPass, Channels: []string{statusChannel}},
		// Like the bot: account-tag and friends, and echo-message (the bot
		// confirms its lines by their echo).
		{Nick: statusReflector, CapReq: append(slices.Clone(ircd.DefaultCaps), "echo-message"), Channels: []string{statusChannel}},
	}
	for i := range statusChatterClients {
		// Chatter clients: no account, no capabilities (plain lines, no
		// echo of their own).
		opts = append(opts, ircd.ClientOptions{Nick: fmt.Sprintf("chatter%d", i+1), CapReq: []string{}, Channels: []string{statusChannel}})
	}
	clients := ircd.DialAllT(b, srv.Addr, opts...)
	asker, reflector, chatters := clients[0], clients[1], clients[2:]
	if _, err := asker.Expect(scale.D(30*time.Second), inChannel(botNick, statusChannel)); err != nil {
		b.Fatalf("the bot never joined %s: %v\n%s", statusChannel, err, bt.Log.String())
	}

	// The reflector answers "reflect N" from the asker with "reflected N",
	// until its connection is closed at cleanup.
	go func() {
		trigger := ircd.And(ircd.IsPrivmsgFrom(user, statusChannel), ircd.TextContains("reflect "))
		for {
			m, err := reflector.Expect(scale.D(time.Hour), trigger)
			if err != nil {
				return
			}
			// Forget the chatter, so the next Expect scans only new lines.
			reflector.Discard()
			reflector.Say(statusChannel, "reflected "+strings.TrimPrefix(ircd.Text(m), "reflect "))
		}
	}()

	isReply := ircd.And(ircd.IsPrivmsgFrom(botNick, statusChannel), ircd.TextContains(statusService+": "))
	// ask times one request: !status to the bot, or a trigger to the
	// reflector.
	var nreflect int
	ask := func(toBot bool) time.Duration {
		b.Helper()
		line, match := "!status", isReply
		if !toBot {
			nreflect++
			line = fmt.Sprintf("reflect %d", nreflect)
			want := fmt.Sprintf("reflected %d", nreflect)
			from := ircd.IsPrivmsgFrom(statusReflector, statusChannel)
			match = func(m ircmsg.Message) bool { return from(m) && ircd.Text(m) == want }
		}
		// Forget what arrived so far (chatter), so Expect looks only at
		// the lines that arrive after the request.
		asker.Discard()
		t0 := time.Now()
		if err := asker.Say(statusChannel, line); err != nil {
			b.Fatalf("sending %q: %v", line, err)
		}
		m, err := asker.Expect(scale.D(10*time.Second), match)
		d := time.Since(t0)
		if err != nil {
			b.Fatalf("no reply to %q: %v\n%s", line, err, bt.Log.String())
		}
		if toBot && !strings.HasPrefix(ircd.Text(m), statusService+": idle") {
			b.Fatalf("unexpected !status reply %q", ircd.Text(m))
		}
		return d
	}
	// series times statusSamples requests to the bot (toBot) or to the
	// reflector, each after a pause drawn from a fixed-seed sequence.
	series := func(toBot bool) []time.Duration {
		gaps := mrand.New(mrand.NewPCG(1, 2))
		out := make([]time.Duration, 0, statusSamples)
		for range statusSamples {
			time.Sleep(statusGapMin + time.Duration(gaps.Int64N(int64(statusGapMax-statusGapMin))))
			out = append(out, ask(toBot))
		}
		// Exactly one line per !status: nothing else from the bot.
		if extra := asker.Collect(scale.D(200*time.Millisecond), ircd.IsPrivmsgFrom(botNick, statusChannel)); len(extra) != 0 {
			b.Fatalf("%d extra lines from the bot, first %q", len(extra), ircd.Text(extra[0]))
		}
		return out
	}

	for range statusWarmup {
		ask(true)
		ask(false)
	}

	var idle, busy, idleRefl, busyRefl []time.Duration
	var chatterSent int64
	var chatterTime time.Duration
	for b.Loop() {
		idle = append(idle, series(true)...)
		idleRefl = append(idleRefl, series(false)...)

		c := startStatusChatter(chatters, statusChatterRate)
		time.Sleep(statusChatterRamp)
		busy = append(busy, series(true)...)
		busyRefl = append(busyRefl, series(false)...)
		sent, elapsed, err := c.stop()
		if err != nil {
			b.Fatalf("chatter: %v", err)
		}
		chatterSent += sent
		chatterTime += elapsed
	}
	b.StopTimer()

	// Every chatter line reached the channel (the asker is a member, as
	// are the bot and the reflector), and nobody was disconnected.
	var got int64
	for deadline := time.Now().Add(scale.D(5 * time.Second)); ; time.Sleep(scale.D(50 * time.Millisecond)) {
		got = 0
		for _, m := range asker.History() {
			if m.Command == "PRIVMSG" && strings.HasPrefix(m.Nick(), "chatter") {
				got++
			}
		}
		if got >= chatterSent || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range clients {
		select {
		case <-c.Done():
			b.Fatalf("%s was disconnected; last lines:\n%s", c.Nick(), strings.Join(c.Lines(10), "\n"))
		default:
		}
	}
	if got != chatterSent {
		b.Fatalf("the chatter clients wrote %d lines, %s received %d", chatterSent, user, got)
	}
	if strings.Contains(bt.Log.String(), "queue full") {
		b.Fatalf("the bot dropped lines:\n%s", bt.Log.String())
	}

	p50 := func(ds []time.Duration) time.Duration { return statusPercentile(ds, 50) }
	p99 := func(ds []time.Duration) time.Duration { return statusPercentile(ds, 99) }
	rate := float64(chatterSent) / chatterTime.Seconds()
	for _, s := range []struct {
		name string
		ds   []time.Duration
	}{{"bot idle", idle}, {"reflector idle", idleRefl}, {"bot chatter", busy}, {"reflector chatter", busyRefl}} {
		b.Logf("%-17s %d samples: p50 %7.3f ms, p99 %7.3f ms, max %7.3f ms", s.name, len(s.ds), statusMS(p50(s.ds)), statusMS(p99(s.ds)), statusMS(slices.Max(s.ds)))
	}
	b.Logf("chatter: %d lines in %v (%.1f lines/s), all %d received by %s", chatterSent, chatterTime.Round(time.Millisecond), rate, got, user)
	b.ReportMetric(statusMS(p50(idle)), "idle-p50-ms")
	b.ReportMetric(statusMS(p99(idle)), "idle-p99-ms")
	b.ReportMetric(statusMS(p50(busy)), "chatter-p50-ms")
	b.ReportMetric(statusMS(p99(busy)), "chatter-p99-ms")
	b.ReportMetric(rate, "chatter-lines/s")
	b.ReportMetric(float64(p50(busy))/float64(p50(idle)), "p50-ratio")
	b.ReportMetric(float64(p99(busy))/float64(p99(idle)), "p99-ratio")
	b.ReportMetric(statusMS(p50(idleRefl)), "reflector-idle-p50-ms")
	b.ReportMetric(statusMS(p99(idleRefl)), "reflector-idle-p99-ms")
	b.ReportMetric(statusMS(p50(busyRefl)), "reflector-chatter-p50-ms")
	b.ReportMetric(statusMS(p99(busyRefl)), "reflector-chatter-p99-ms")
	b.ReportMetric(float64(p50(idle))/float64(p50(idleRefl)), "idle-p50-vs-reflector")
	b.ReportMetric(float64(p50(busy))/float64(p50(busyRefl)), "chatter-p50-vs-reflector")
	b.ReportMetric(float64(p99(busy))/float64(p99(busyRefl)), "chatter-p99-vs-reflector")
}

func statusMS(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// statusPercentile is the nearest-rank p-th percentile of ds.
func statusPercentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100 // ceil(n·p/100), 1-based
	return s[max(i, 1)-1]
}

// statusChatter is clients posting ordinary lines into statusChannel at a steady
// total rate until stop.
type statusChatter struct {
	start time.Time
	quit  chan struct{}
	wg    sync.WaitGroup
	sent  atomic.Int64
	mu    sync.Mutex
	err   error
}

// startStatusChatter makes each client post perClient = total/len(clients) lines
// per second. Each client has a ticker at its line interval (4 ms for 4
// clients at 1,000 lines/s); on every tick it writes the lines due by then
// (elapsed × perClient, less those written), so a late or dropped tick
// does not lower the rate.
func startStatusChatter(clients []*ircd.Client, total int) *statusChatter {
	perClient := float64(total) / float64(len(clients))
	interval := time.Duration(float64(time.Second) / perClient)
	c := &statusChatter{start: time.Now(), quit: make(chan struct{})}
	for i, cl := range clients {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			// Offset the clients within one interval.
			time.Sleep(interval * time.Duration(i) / time.Duration(len(clients)))
			var n int64
			for {
				select {
				case <-c.quit:
					return
				case <-tick.C:
				}
				due := int64(time.Since(c.start).Seconds() * perClient)
				for ; n < due; n++ {
					text := fmt.Sprintf("chatter %d from %s: the quick brown fox jumps over the lazy dog", n, cl.Nick())
					if err := cl.Say(statusChannel, text); err != nil {
						c.mu.Lock()
						c.err = fmt.Errorf("%s: %w", cl.Nick(), err)
						c.mu.Unlock()
						return
					}
					c.sent.Add(1)
				}
			}
		}()
	}
	return c
}

// stop ends the chatter and returns the lines written and for how long.
func (c *statusChatter) stop() (int64, time.Duration, error) {
	close(c.quit)
	c.wg.Wait()
	elapsed := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent.Load(), elapsed, c.err
}

// statusSSHKey is a fresh private key in OpenSSH format: `deploybot serve`
// starts the deployment engine when services are configured, and the
// engine loads deploy.ssh.key_file (the benchmark never connects anywhere).
func statusSSHKey(t testing.TB) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}
