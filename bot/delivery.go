package bot

import (
	"github.com/ergochat/irc-go/ircmsg"
)

// ircWire is the bot's connection as the sender sees it.
type ircWire struct{ b *Bot }

// CanSend reports whether the bot is connected, holds its primary nick
// and, for a channel, is in it: a line sent to a channel the bot has not
// joined (yet) would be refused, and a copy of the bot without the
// primary nick (a second one running, or one waiting to regain it) says
// nothing, so nothing is ever said twice.
func (w ircWire) CanSend(target string) bool {
	if !w.b.conn.Connected() || !w.b.holdsNick() {
		return false
	}
	return !isChannel(target) || w.b.link.members.in(target)
}

// Privmsg sends one line.
func (w ircWire) Privmsg(target, text string) error { return w.b.conn.Privmsg(target, text) }

func isChannel(target string) bool { return target != "" && (target[0] == '#' || target[0] == '&') }

// trackDelivery follows what the sender needs beyond the member table
// (which knows the channels the bot is in): whether the server echoes its
// messages, and the echoes themselves.
func (b *Bot) trackDelivery() {
	b.conn.RequestCaps = append(b.conn.RequestCaps, "echo-message")
	b.conn.AddConnectCallback(func(ircmsg.Message) {
		_, echo := b.conn.AcknowledgedCaps()["echo-message"]
		b.out.setEcho(echo)
		b.out.reconnected()
	})
	b.conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
		if len(m.Params) > 1 && b.isMe(m) {
			b.out.echoed(m.Params[0], m.Params[1])
		}
	})
}

// isMe reports whether m comes from the bot itself.
func (b *Bot) isMe(m ircmsg.Message) bool {
	nuh, err := m.NUH()
	return err == nil && b.sameName(nuh.Name, b.conn.CurrentNick())
}
