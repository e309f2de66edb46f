package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"deploybot/bot"
	"deploybot/config"
	"deploybot/deployer"
	"deploybot/sal"
)

// channelAnnouncer tells the channel about a deploy run from the shell:
// the same lines the bot posts for its own deploys, sent through the relay
// listener of the running bot, and the same SAL entries, written to the
// log directly. Without a relay listener configured it only logs.
type channelAnnouncer struct {
	ann    *bot.Announcer
	relay  *relayClient
	store  sal.Store
	stderr io.Writer
}

// newChannelAnnouncer returns an announcer for a CLI deploy of s by who,
// or nil (with a warning) when neither the channel nor the SAL can be told.
func newChannelAnnouncer(cfg *config.Config, s *config.Service, who string, stderr io.Writer) *channelAnnouncer {
	channel := cfg.IRC.Channels[0]
	project, _ := cfg.Project(channel)
	ca := &channelAnnouncer{stderr: stderr}
	if store, err := sal.Open(cfg.SAL.Database); err != nil {
		fmt.Fprintf(stderr, "deploybot deploy: warning: the Server Admin Log cannot be opened (%v); the deploy is not logged there\n", err)
	} else if project != "" {
		ca.store = store
	} else {
		store.Close()
	}
	if cfg.IRC.RelayListen != "" {
		ca.relay = &relayClient{addr: cfg.IRC.RelayListen, stderr: stderr}
	}
	if ca.store == nil && ca.relay == nil {
		return nil
	}
	ca.ann = &bot.Announcer{
		Service:  s,
		Nick:     who,
		Channel:  channel,
		Project:  project,
		LogURL:   func(id string) string { return bot.DeployLogURL(cfg.Deploy.LogsPublicURL, id) },
		AnswerAt: "(answer at the terminal of deploybot deploy)",
		Say: func(text, _ string) {
			if ca.relay != nil {
				ca.relay.say(text)
			}
		},
		Log: func(e *sal.Entry) {
			if ca.store == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ca.store.Append(ctx, e); err != nil {
				fmt.Fprintf(stderr, "deploybot deploy: warning: SAL entry not written (%v): %s\n", err, e.Message)
			}
		},
	}
	return ca
}

// Observe implements deployer.Observer.
func (ca *channelAnnouncer) Observe(ev deployer.Event) { ca.ann.Observe(ev) }

// Close posts what waits and closes the connections.
func (ca *channelAnnouncer) Close() {
	ca.ann.Close()
	if ca.relay != nil {
		ca.relay.close()
	}
	if ca.store != nil {
		ca.store.Close()
	}
}

// relayClient writes lines to the bot's relay listener, one connection for
// the whole deploy, dialled again after an error. When the bot cannot be
// reached it warns once and the deploy goes on.
type relayClient struct {
	addr   string
	stderr io.Writer

	mu     sync.Mutex
	conn   net.Conn
	w      *bufio.Writer
	warned bool
}

func (c *relayClient) say(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if c.conn == nil {
			conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				if !c.warned {
					fmt.Fprintf(c.stderr, "deploybot deploy: warning: the bot's relay listener %s does not answer (%v); the channel is not told\n", c.addr, err)
					c.warned = true
				}
				return
			}
			c.conn, c.w = conn, bufio.NewWriter(conn)
		}
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.w.WriteString(text + "\n"); err == nil {
			if err = c.w.Flush(); err == nil {
				return
			}
		}
		c.conn.Close()
		c.conn = nil
	}
}

func (c *relayClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
