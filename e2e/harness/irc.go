package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/e2e/ircd"
)

// BotPass is the bot's services password in IRCConfig.
const BotPass = "deploybot-pw-1"

// IRCConfig turns the deploy configuration of d into a bot's: the IRC
// server, SASL, #ops as the SAL channel, relay and web listeners, and the
// deployers alice and bob. rate is the irc.rate line ("" for the default
// pacing). d.Config becomes the bot's configuration file (so CLI uses it);
// the text is returned.
func IRCConfig(t testing.TB, d *Env, srv *ircd.Server, nick, rate string, promptTimeout string) string {
	t.Helper()
	raw, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	ircBlock := "irc:\n  server: 127.0.0.1:1\n  nick: deploybot\n  channels: [\"#ops\"]\n"
	if !strings.Contains(text, ircBlock) {
		t.Fatalf("the deploy configuration changed shape:\n%s", text)
	}
	newIRC := fmt.Sprintf(`irc:
  server: %s
  nick: %s
  sasl: {account: %s, password_file: %s}
  channels: ["#ops"]
  relay_listen: %s
  relay_allow: [127.0.0.0/8]
%s`, srv.Addr, nick, nick, filepath.Join(d.Dir, "sasl.secret"), FreeAddr(t), rate)
	text = strings.Replace(text, ircBlock, newIRC, 1)
	salBlock := fmt.Sprintf("sal:\n  database: %s/sal.db\n", d.Dir)
	text = strings.Replace(text, salBlock, salBlock+fmt.Sprintf("  listen: %s\n  projects: {\"#ops\": production}\n", FreeAddr(t)), 1)
	text = strings.Replace(text, "prompt_timeout: "+YAMLDuration(PromptTimeoutDefault), "prompt_timeout: "+promptTimeout, 1)
	text += `access:
  deployers:
    accounts: [alice, bob]
    hostmasks: ["*!*@deployers.invalid"]
`
	if err := os.WriteFile(filepath.Join(d.Dir, "sasl.secret"), []byte(BotPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Config = filepath.Join(d.Dir, "bot.yaml")
	if err := os.WriteFile(d.Config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return text
}

// ExpectBot waits for botNick's next line in #ops containing substr and
// returns its text; none within timeout fails t.
func ExpectBot(t testing.TB, c *ircd.Client, botNick, substr string, timeout time.Duration) string {
	t.Helper()
	m, err := c.Expect(timeout, ircd.And(ircd.IsPrivmsgFrom(botNick, "#ops"), ircd.TextContains(substr)))
	if err != nil {
		t.Fatalf("no line from the bot containing %q: %v", substr, err)
	}
	return ircd.Text(m)
}

// BotLines returns botNick's lines in #ops that c received so far.
func BotLines(c *ircd.Client, botNick string) []string {
	var out []string
	for _, m := range c.History() {
		if ircd.IsPrivmsgFrom(botNick, "#ops")(m) {
			out = append(out, ircd.Text(m))
		}
	}
	return out
}

// InChannel matches nick's JOIN of channel, or a NAMES reply listing nick
// in channel (when nick was there first).
func InChannel(nick, channel string) func(ircmsg.Message) bool {
	return ircd.Or(ircd.IsJoinOf(nick, channel), func(m ircmsg.Message) bool {
		if m.Command != "353" || len(m.Params) < 4 || !strings.EqualFold(m.Params[2], channel) {
			return false
		}
		for _, n := range strings.Fields(m.Params[3]) {
			if strings.EqualFold(strings.TrimLeft(n, "~&@%+"), nick) {
				return true
			}
		}
		return false
	})
}

// SharedServer is one IRC server for a whole test package, started on
// first use: InspIRCd holds every new client about a second, so tests
// share a server and keep connections few.
type SharedServer struct {
	Options ircd.Options

	once sync.Once
	srv  *ircd.Server
	err  error
}

// Get returns the server, starting it the first time. In -short mode it
// skips t; when InspIRCd or Anope is missing it skips t, or fails it in
// CI (CI set).
func (s *SharedServer) Get(t testing.TB) *ircd.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("real servers: skipped in -short mode")
	}
	s.once.Do(func() { s.srv, s.err = ircd.Start(s.Options) })
	if s.err != nil {
		var missing *ircd.MissingError
		if os.Getenv("CI") == "" && errors.As(s.err, &missing) {
			t.Skipf("skipping: %v (scripts/install-deps.sh installs it)", s.err)
		}
		t.Fatalf("starting InspIRCd + Anope: %v", s.err)
	}
	return s.srv
}

// Close stops the server if it was started.
func (s *SharedServer) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}
