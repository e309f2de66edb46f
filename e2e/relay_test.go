package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/sal"
)

// relayConfig is logConfig with the tcpircbot-compatible relay listener.
const relayConfig = `
irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["#ops", "#chatter"]
  relay_listen: %s
  rate: {per_second: 20, burst: 20}
sal:
  database: sal.db
  listen: %s
  projects: {"#ops": production}
`

// TestRelayEndToEnd writes to a running deploybot's relay port as a
// deployment script would, and checks the line reaches #ops and the SAL.
func TestRelayEndToEnd(t *testing.T) {
	srv := shared.get(t)
	const botNick, botPass = "relaysalbot", "relay-bot-secret-1"
	if err := srv.Register(botNick, botPass); err != nil {
		t.Fatalf("register %s: %v", botNick, err)
	}
	relayAddr := freeAddr(t)
	b := startBot(t, fmt.Sprintf(relayConfig, srv.Addr, botNick, botNick, relayAddr, freeAddr(t)), map[string]string{"sasl.secret": botPass + "\n"})

	watcher := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "relaywatcher", Channels: []string{"#ops"}})
	if _, err := watcher.Expect(30*time.Second, inChannel(botNick, "#ops")); err != nil {
		t.Fatalf("the bot never joined #ops: %v\n%s", err, b.log.String())
	}

	// Like: echo '!log ops1@deploy1001 restarted citoid' | nc host port
	var c net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
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

	m, err := watcher.Expect(10*time.Second, ircd.IsPrivmsgFrom(botNick, "#ops"))
	if err != nil {
		t.Fatalf("the relayed line never reached #ops: %v", err)
	}
	if got := m.Params[1]; got != "!log ops1@deploy1001 restarted citoid" {
		t.Fatalf("#ops got %q", got)
	}

	store, err := sal.OpenSQLite(filepath.Join(b.dir, "sal.db"))
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
	if e := es[0]; e.Nick != "ops1@deploy1001" || e.Source != sal.SourceRelay || e.Message != "restarted citoid" || e.Channel != "#ops" || e.Project != "production" {
		t.Fatalf("entry = %+v", e)
	}
}
