package bot

// The relay listener is compatible with Wikimedia's tcpircbot: scripts on
// allowed hosts connect over TCP and write lines, and each line becomes one
// message in the first configured channel. A line "!log user@host message"
// is also written to the Server Admin Log, attributed to user@host with
// source relay and the connection's peer address as its sender, before it
// is echoed.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"deploybot/sal"
)

const (
	// maxRelayLine is the longest line the relay accepts, without its
	// line ending. Longer lines are refused whole, never cut.
	maxRelayLine = 4096
	// relayNick is who a relayed !log without user@host is credited to.
	relayNick = "relay"
)

// relayIdle is how long a relay connection may stay silent before it is
// closed. A variable so tests can shorten it.
var relayIdle = 5 * time.Minute

// listenRelay opens the relay listener on cfg.IRC.RelayListen.
func (b *Bot) listenRelay() (net.Listener, error) {
	return net.Listen("tcp", b.cfg.IRC.RelayListen)
}

// serveRelay accepts relay connections on ln until ctx is done, then
// closes ln and every open connection and waits for their handlers.
func (b *Bot) serveRelay(ctx context.Context, ln net.Listener) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	defer stop()
	defer wg.Wait()
	b.log.Info("relay listening", "addr", ln.Addr().String(), "allow", b.cfg.IRC.RelayAllowPrefixes)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Temporary failure such as too many open files: back off.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			b.log.Warn("relay accept failed", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		if !b.relayAllowed(c.RemoteAddr()) {
			b.log.Warn("relay connection refused: address not in irc.relay_allow", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			b.handleRelay(ctx, c)
		})
	}
}

// relayAllowed reports whether addr is in irc.relay_allow.
func (b *Bot) relayAllowed(addr net.Addr) bool {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	for _, p := range b.cfg.IRC.RelayAllowPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// handleRelay reads lines from one relay connection until it ends, is
// idle for relayIdle, or ctx is done.
func (b *Bot) handleRelay(ctx context.Context, c net.Conn) {
	remote := c.RemoteAddr().String()
	b.log.Info("relay connection", "remote", remote)
	defer b.log.Info("relay connection closed", "remote", remote)
	// Room for the longest line plus CR LF, so a line that fills the
	// buffer without a newline is too long.
	r := bufio.NewReaderSize(c, maxRelayLine+2)
	for {
		if err := c.SetReadDeadline(time.Now().Add(relayIdle)); err != nil {
			return
		}
		raw, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			b.log.Warn("relay line refused: too long", "remote", remote, "max_bytes", maxRelayLine)
			if !b.skipLine(c, r) {
				return
			}
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(raw) > 0) {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				b.log.Info("relay connection idle; closing", "remote", remote, "idle", relayIdle)
			} else if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				b.log.Warn("relay read failed", "remote", remote, "err", err)
			}
			return
		}
		text := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if len(text) > maxRelayLine {
			b.log.Warn("relay line refused: too long", "remote", remote, "max_bytes", maxRelayLine)
		} else {
			b.relayLine(ctx, remote, string(text))
		}
		if err != nil { // the last line, unterminated, at EOF
			return
		}
	}
}

// skipLine discards the rest of an over-long line, and reports whether
// the connection can go on.
func (b *Bot) skipLine(c net.Conn, r *bufio.Reader) bool {
	for {
		if err := c.SetReadDeadline(time.Now().Add(relayIdle)); err != nil {
			return false
		}
		_, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			return true
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return false
		}
	}
}

// relayLine logs text to the SAL if it is a !log line, then sends it to
// the first channel.
func (b *Bot) relayLine(ctx context.Context, remote, text string) {
	if strings.TrimSpace(text) == "" || len(b.cfg.IRC.Channels) == 0 {
		return
	}
	channel := b.cfg.IRC.Channels[0]
	if rest, ok := strings.CutPrefix(text, "!log "); ok {
		project, _ := b.cfg.Project(channel)
		e := &sal.Entry{
			Nick:    relayNick,
			Channel: channel,
			Project: project,
			Message: strings.TrimSpace(rest),
			Source:  sal.SourceRelay,
			Sender:  "relay listener " + remote,
		}
		attributeRelayed(e)
		res := b.appendSAL(ctx, e)
		switch {
		case res.err == nil, res.queued:
		case errors.Is(res.err, sal.ErrEmptyMessage), errors.Is(res.err, sal.ErrTooLong):
			b.log.Warn("relay !log not logged", "remote", remote, "err", res.err)
		default:
			b.log.Error("relay !log lost", "remote", remote, "err", res.err, "spool_err", res.spoolErr, "message", e.Message)
		}
	}
	b.say(channel, PriorityDeploy, text)
}
