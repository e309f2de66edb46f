package bot

import (
	"github.com/ergochat/irc-go/ircmsg"

	"deploybot/config"
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
	if target == "" || !isChannel(target) {
		return true
	}
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.joined[foldName(target)]
}

// Privmsg sends one line.
func (w ircWire) Privmsg(target, text string) error { return w.b.conn.Privmsg(target, text) }

func isChannel(target string) bool { return target != "" && (target[0] == '#' || target[0] == '&') }

func foldName(s string) string { return config.FoldName(s) }

// trackDelivery follows what the sender needs: which channels the bot is
// in, whether the server echoes its messages, and the echoes themselves.
func (b *Bot) trackDelivery() {
	b.conn.RequestCaps = append(b.conn.RequestCaps, "echo-message")
	b.conn.AddConnectCallback(func(ircmsg.Message) {
		_, echo := b.conn.AcknowledgedCaps()["echo-message"]
		b.mu.Lock()
		b.joined = map[string]bool{}
		b.mu.Unlock()
		b.out.setEcho(echo)
		b.out.reconnected()
	})
	b.conn.AddCallback("JOIN", func(m ircmsg.Message) {
		if len(m.Params) > 0 && b.isMe(m) {
			b.setJoined(m.Params[0], true)
		}
	})
	b.conn.AddCallback("PART", func(m ircmsg.Message) {
		if len(m.Params) > 0 && b.isMe(m) {
			b.setJoined(m.Params[0], false)
		}
	})
	b.conn.AddCallback("KICK", func(m ircmsg.Message) {
		if len(m.Params) > 1 && sameName(m.Params[1], b.conn.CurrentNick()) {
			b.setJoined(m.Params[0], false)
		}
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
	return err == nil && sameName(nuh.Name, b.conn.CurrentNick())
}

func (b *Bot) setJoined(channel string, in bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.joined == nil {
		b.joined = map[string]bool{}
	}
	if in {
		b.joined[foldName(channel)] = true
	} else {
		delete(b.joined, foldName(channel))
	}
}
