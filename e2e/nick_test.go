package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

const tlsConfig = `
irc:
  server: %s
  tls: %t
  tls_ca_file: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["#tls"]
sal:
  database: sal.db
  public_url: https://sal.example.org
`

// waitLog waits until the bot's log contains substr.
func waitLog(t *testing.T, b *bot, substr string) {
	t.Helper()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for !strings.Contains(b.Log.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot never logged %q:\n%s", substr, b.Log.String())
		}
		time.Sleep(scale.D(50 * time.Millisecond))
	}
}

// A bot connected over TLS serves !log; a second copy configured with the
// same nick (here over plain text) does nothing while the first holds it.
func TestTLSAndSecondCopyStaysQuiet(t *testing.T) {
	srv := shared.Get(t)
	const nick, pass = "tlsbot", "tls-secret-1"
	if err := srv.Register(nick, pass); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register("carol", "carol-pw-1"); err != nil {
		t.Fatal(err)
	}
	files := func() map[string]string {
		return map[string]string{"sasl.secret": pass, "ca.pem": string(srv.CACert)}
	}
	first := startBot(t, fmt.Sprintf(tlsConfig, srv.TLSAddr, true, "ca.pem", nick, nick), files())
	waitLog(t, first, "msg=connected")
	second := startBot(t, strings.Replace(fmt.Sprintf(tlsConfig, srv.Addr, false, "", nick, nick), "  tls_ca_file: \n", "", 1), files())
	waitLog(t, second, "msg=connected")
	if strings.Contains(second.Log.String(), "nick="+nick+"\n") {
		t.Fatalf("the second copy got the nick:\n%s", second.Log.String())
	}

	carol := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "carol", Account: "carol", Password: "carol-pw-1", Channels: []string{"#tls"}})
	if _, err := carol.Expect(scale.D(30*time.Second), inChannel(nick, "#tls")); err != nil {
		t.Fatalf("the bot never joined #tls: %v", err)
	}
	carol.Say("#tls", "!log over tls")
	m, err := carol.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(nick, "#tls"))
	if err != nil || !strings.HasPrefix(ircd.Text(m), "Logged the message at https://sal.example.org/log/") {
		t.Fatalf("reply %v, %v", m.Params, err)
	}
	carol.Say("#tls", "!help")
	if _, err := carol.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(nick, "#tls")); err != nil {
		t.Fatal(err)
	}
	// Nothing at all from the second copy, whatever nick it got.
	for _, m := range carol.Collect(scale.D(3*time.Second), ircd.IsCommand("PRIVMSG")) {
		if !strings.EqualFold(m.Nick(), nick) {
			t.Fatalf("the second copy spoke: %v", m)
		}
	}
	for i, b := range []*bot{first, second} {
		store, err := sal.OpenSQLite(filepath.Join(b.Dir, "sal.db"))
		if err != nil {
			t.Fatal(err)
		}
		es, err := store.List(context.Background(), sal.Query{})
		store.Close()
		if want := 1 - i; err != nil || len(es) != want {
			t.Fatalf("bot %d logged %d entries (%v), want %d", i+1, len(es), err, want)
		}
	}
}
