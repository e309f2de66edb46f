package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// relayConfig is logConfig with the tcpircbot-compatible relay listener,
// and relay bots known by services account: logmsgrelay, an account
// nobody logs in to, and the relay account of the test.
const relayConfig = `
irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["#ops", "#chatter"]
  relays: [logmsgrelay, %s]
  relay_listen: %s
  rate: {per_second: 20, burst: 20}
sal:
  database: sal.db
  listen: %s
  projects: {"#ops": production}
`

// TestRelayEndToEnd writes to a running deploybot's relay port as a
// deployment script would, and checks the line reaches #ops and the SAL.
// Then a user without an account who took a relay's nick writes a relay's
// "!log user@host …" in #ops and is logged as themselves, while the relay
// bot, logged in to its account under another nick, is relayed and
// recorded as the real sender.
func TestRelayEndToEnd(t *testing.T) {
	srv := shared.Get(t)
	const botNick, botPass = "relaysalbot", "relay-bot-secret-1"
	const relayAcct, relayPass = "relayacct", "relay-acct-secret-1"
	for acct, pass := range map[string]string{botNick: botPass, relayAcct: relayPass} {
		if err := srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	relayAddr := freeAddr(t)
	b := startBot(t, fmt.Sprintf(relayConfig, srv.Addr, botNick, botNick, relayAcct, relayAddr, freeAddr(t)), map[string]string{"sasl.secret": botPass + "\n"})

	watcher := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "relaywatcher", Channels: []string{"#ops"}})
	if _, err := watcher.Expect(scale.D(30*time.Second), inChannel(botNick, "#ops")); err != nil {
		t.Fatalf("the bot never joined #ops: %v\n%s", err, b.Log.String())
	}

	// Like: echo '!log ops1@deploy1001 restarted citoid' | nc host port
	var c net.Conn
	var err error
	for deadline := time.Now().Add(scale.D(10 * time.Second)); ; time.Sleep(scale.D(50 * time.Millisecond)) {
		if c, err = net.Dial("tcp", relayAddr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("relay port: %v", err)
	}
	if _, err := c.Write([]byte("!log ops1@deploy1001 restarted citoid\n")); err != nil {
		t.Fatal(err)
	}
	c.Close()

	m, err := watcher.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(botNick, "#ops"))
	if err != nil {
		t.Fatalf("the relayed line never reached #ops: %v", err)
	}
	if got := m.Params[1]; got != "!log ops1@deploy1001 restarted citoid" {
		t.Fatalf("#ops got %q", got)
	}

	store, err := sal.OpenSQLite(filepath.Join(b.Dir, "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	es, err := store.List(context.Background(), sal.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Fatalf("want 1 entry, got %+v", es)
	}
	if e := es[0]; e.Nick != "ops1@deploy1001" || e.Source != sal.SourceRelay || e.Message != "restarted citoid" || e.Channel != "#ops" || e.Project != "production" ||
		!strings.HasPrefix(e.Sender, "relay listener 127.0.0.1:") {
		t.Fatalf("entry = %+v", e)
	}

	// Somebody without an account takes the nick of a configured relay.
	impostor := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "logmsgrelay", Channels: []string{"#ops"}})
	impostor.Say("#ops", "!log alice@deploy1001 restarted web")
	e := getEntry(t, store, expectLogged(t, watcher, botNick))
	if e.Nick != "logmsgrelay" || e.Account != "" || e.Source != sal.SourceIRC || e.Message != "alice@deploy1001 restarted web" || e.Sender != "" {
		t.Fatalf("entry from the relay's nick without its account = %+v; want it attributed to its sender, source irc", e)
	}

	// The relay bot, logged in to its account, under a nick of its own.
	relay := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "lmbot", Account: relayAcct, Password: relayPass, Channels: []string{"#ops"}})
	relay.Say("#ops", "!log ops2@deploy1002 synced web")
	id := expectLogged(t, watcher, botNick)
	e = getEntry(t, store, id)
	if e.Nick != "ops2@deploy1002" || e.Source != sal.SourceRelay || e.Message != "synced web" ||
		!strings.HasPrefix(e.Sender, "lmbot!") || !strings.HasSuffix(e.Sender, " ("+relayAcct+")") {
		t.Fatalf("entry from the relay account = %+v; want it relayed, sent by lmbot!… (%s)", e, relayAcct)
	}
	// The real sender is on the entry's page and in the JSON API.
	page := httpGet(t, lastPermalink)
	if !strings.Contains(page, "Sent by") || !strings.Contains(page, html.EscapeString(e.Sender)) {
		t.Fatalf("GET %s lacks the sender %q:\n%s", lastPermalink, e.Sender, page)
	}
	api := httpGet(t, strings.Replace(lastPermalink, fmt.Sprintf("/log/%d", id), "/api/log?limit=1", 1))
	var resp struct {
		Entries []sal.Entry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(api), &resp); err != nil || len(resp.Entries) != 1 || resp.Entries[0].Sender != e.Sender {
		t.Fatalf("API: %v %s", err, api)
	}
}

// getEntry returns entry id of store.
func getEntry(t *testing.T, store sal.Store, id int64) sal.Entry {
	t.Helper()
	e, err := store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("entry %d: %v", id, err)
	}
	return e
}
