package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

const logConfig = `
irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: sasl.secret}
  channels: ["#ops", "#chatter"]
  relays: [logmsgbot]
  rate: {per_second: 20, burst: 20}
sal:
  database: sal.db
  listen: %s
  projects: {"#ops": production}
`

var permalinkRE = regexp.MustCompile(`^Logged the message at (http://127\.0\.0\.1:\d+/log/(\d+))$`)

// lastPermalink is the URL of the last expectLogged reply.
var lastPermalink string

// expectLogged waits for the bot's "Logged the message" reply and returns
// the entry id in it.
func expectLogged(t *testing.T, c *ircd.Client, botNick string) int64 {
	t.Helper()
	m, err := c.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(botNick, "#ops"))
	if err != nil {
		t.Fatalf("no reply from the bot: %v", err)
	}
	sub := permalinkRE.FindStringSubmatch(m.Params[1])
	if sub == nil {
		t.Fatalf("reply %q is not a permalink", m.Params[1])
	}
	id, _ := strconv.ParseInt(sub[2], 10, 64)
	lastPermalink = sub[1]
	return id
}

func TestLogEndToEnd(t *testing.T) {
	srv := shared.Get(t)
	const botNick, botPass = "salbot", "bot-secret-1"
	for acct, pass := range map[string]string{botNick: botPass, "alice": "alice-pw-1", "logmsgbot": "relay-pw-1"} {
		if err := srv.Register(acct, pass); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	b := startBot(t, fmt.Sprintf(logConfig, srv.Addr, botNick, botNick, freeAddr(t)), map[string]string{"sasl.secret": botPass + "\n"})

	alice := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "alice", Account: "alice", Password: "alice-pw-1", Channels: []string{"#ops"}})
	relay := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "logmsgbot", Account: "logmsgbot", Password: "relay-pw-1", Channels: []string{"#ops"}})
	mallory := ircd.DialT(t, srv.Addr, ircd.ClientOptions{Nick: "mallory", Channels: []string{"#ops"}})
	if _, err := alice.Expect(scale.D(30*time.Second), inChannel(botNick, "#ops")); err != nil {
		t.Fatalf("the bot never joined #ops: %v\n%s", err, b.Log.String())
	}
	store, err := sal.OpenSQLite(filepath.Join(b.Dir, "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	get := func(id int64) sal.Entry {
		t.Helper()
		e, err := store.Get(ctx, id)
		if err != nil {
			t.Fatalf("entry %d: %v", id, err)
		}
		return e
	}

	t.Run("log by a SASL user", func(t *testing.T) {
		alice.Say("#ops", "!log restarted citoid")
		e := get(expectLogged(t, alice, botNick))
		if e.Nick != "alice" || e.Account != "alice" || e.Channel != "#ops" || e.Project != "production" || e.Message != "restarted citoid" || e.Source != sal.SourceIRC {
			t.Fatalf("entry = %+v", e)
		}
		if time.Since(e.Time) > time.Minute || e.Time.Location() != time.UTC {
			t.Fatalf("entry time %v", e.Time)
		}
		// The permalink the bot posted serves the entry.
		resp, err := http.Get(lastPermalink)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "restarted citoid") {
			t.Fatalf("GET %s: %d\n%s", lastPermalink, resp.StatusCode, body)
		}
	})

	t.Run("empty log", func(t *testing.T) {
		alice.Say("#ops", "!log")
		m, err := alice.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(botNick, "#ops"))
		if err != nil || m.Params[1] != "alice: Message missing. Nothing logged." {
			t.Fatalf("reply %v, %v", m.Params, err)
		}
	})

	t.Run("relay attribution", func(t *testing.T) {
		relay.Say("#ops", "!log ops1@deploy1001 restarted citoid")
		e := get(expectLogged(t, alice, botNick))
		if e.Nick != "ops1@deploy1001" || e.Source != sal.SourceRelay || e.Message != "restarted citoid" ||
			!strings.HasPrefix(e.Sender, "logmsgbot!") || !strings.HasSuffix(e.Sender, " (logmsgbot)") {
			t.Fatalf("relayed entry = %+v", e)
		}
		mallory.Say("#ops", "!log ops1@deploy1001 restarted citoid")
		e = get(expectLogged(t, alice, botNick))
		if e.Nick != "mallory" || e.Account != "" || e.Source != sal.SourceIRC || e.Message != "ops1@deploy1001 restarted citoid" {
			t.Fatalf("spoofed relay entry = %+v", e)
		}
	})

	t.Run("formatting and injection are stored clean", func(t *testing.T) {
		// Colour, bold and a bare CR trying to smuggle a second command.
		alice.Raw("PRIVMSG #ops :!log \x0304red\x03 \x02bold\x02 restart\rPRIVMSG #ops :injected \x00x")
		e := get(expectLogged(t, alice, botNick))
		if strings.ContainsAny(e.Message, "\x00\x02\x03\r\n") || !strings.HasPrefix(e.Message, "red bold restart") {
			t.Fatalf("stored %q", e.Message)
		}
		// One reply line per !log, nothing more.
		alice.Say("#ops", "!log \x1funderline\x1f\x0f done")
		e = get(expectLogged(t, alice, botNick))
		if e.Message != "underline done" {
			t.Fatalf("stored %q", e.Message)
		}
		if extra := alice.Collect(scale.D(2*time.Second), ircd.IsPrivmsgFrom(botNick, "#ops")); len(extra) != 0 {
			t.Fatalf("extra lines from the bot: %v", extra)
		}
	})

	t.Run("not in a SAL channel", func(t *testing.T) {
		alice.Say(botNick, "!log in private")
		m, err := alice.Expect(scale.D(10*time.Second), ircd.IsPrivmsgFrom(botNick, "alice"))
		if err != nil || !strings.Contains(m.Params[1], "works only in a channel with a Server Admin Log") {
			t.Fatalf("reply %v, %v", m.Params, err)
		}
	})

	es, err := store.List(ctx, sal.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 {
		t.Fatalf("want 5 entries, got %d: %+v", len(es), es)
	}
}
