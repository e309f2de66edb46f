package ircd

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/scale"

	"github.com/ergochat/irc-go/ircmsg"
)

var wait = scale.D(10 * time.Second)

// dialAll dials every client at once (their registrations then finish
// together) and fails the test if any fails.
func dialAll(t *testing.T, dials ...func() (*Client, error)) []*Client {
	t.Helper()
	out := make([]*Client, len(dials))
	errs := make([]error, len(dials))
	var wg sync.WaitGroup
	for i, d := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = d()
		}()
	}
	wg.Wait()
	for _, c := range out {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

func expect(t *testing.T, c *Client, what string, match Matcher) ircmsg.Message {
	t.Helper()
	m, err := c.Expect(wait, match)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v", c.Nick(), what, err)
	}
	return m
}

// TestServer runs one network (with TLS) through accounts, SASL, account
// tags, TLS, KILL and Restart.
func TestServer(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{TLS: true})
	t.Logf("InspIRCd + Anope ready in %v (client %s, TLS %s)", s.Ready, s.Addr, s.TLSAddr)

	for _, acct := range []string{"alice", "bob"} {
		if err := s.Register(acct, acct+"-secret"); err != nil {
			t.Fatalf("Register(%s): %v", acct, err)
		}
	}
	if err := s.Register("alice", "whatever1"); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("Register(alice) again: got %v, want ErrAccountExists", err)
	}
	if err := s.Register("alice", "alice-secret"); err != nil {
		t.Fatalf("Register(alice) again with its password: %v, want nil (a test run twice)", err)
	}

	const ch = "#deploy"
	t0 := time.Now()
	cs := dialAll(t,
		// alice: SASL on the plaintext port.
		func() (*Client, error) {
			return Dial(s.Addr, ClientOptions{Nick: "alice", Account: "alice", Password: "alice-secret", Channels: []string{ch}})
		},
		// bob: SASL over TLS, trusting CACert.
		func() (*Client, error) {
			return Dial(s.TLSAddr, ClientOptions{Nick: "bob", Account: "bob", Password: "bob-secret", Channels: []string{ch}, TLS: s.ClientTLSConfig()})
		},
		// carol: no SASL.
		func() (*Client, error) {
			return Dial(s.Addr, ClientOptions{Nick: "carol", Channels: []string{ch}})
		},
	)
	t.Logf("3 clients registered and joined in %v", time.Since(t0))
	alice, bob, carol := cs[0], cs[1], cs[2]

	t.Run("SASL numerics", func(t *testing.T) {
		for _, c := range []*Client{alice, bob} {
			m := expect(t, c, "900 RPL_LOGGEDIN", IsCommand("900"))
			if len(m.Params) < 3 || m.Params[2] != c.Nick() {
				t.Errorf("%s: 900 = %v, want account %s", c.Nick(), m.Params, c.Nick())
			}
			expect(t, c, "903 RPL_SASLSUCCESS", IsCommand("903"))
			if c.Account() != c.Nick() {
				t.Errorf("%s: Account() = %q", c.Nick(), c.Account())
			}
			if !c.HasCap("account-tag") || !c.HasCap("sasl") {
				t.Errorf("%s: caps account-tag/sasl not acknowledged", c.Nick())
			}
		}
		if got := carol.Collect(0, IsCommand("900", "903")); len(got) != 0 {
			t.Errorf("carol (no SASL) got %v", got)
		}
		if carol.Account() != "" {
			t.Errorf("carol: Account() = %q, want none", carol.Account())
		}
	})

	t.Run("account tag", func(t *testing.T) {
		// alice (SASL, plaintext) → carol and bob.
		if err := alice.Say(ch, "hello from alice"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Client{carol, bob} {
			m := expect(t, c, "alice's PRIVMSG", And(IsPrivmsgFrom("alice", ch), TextContains("hello from alice")))
			if ok, acct := m.GetTag("account"); !ok || acct != "alice" {
				t.Errorf("%s saw alice's message with account tag %q (present %v), want alice", c.Nick(), acct, ok)
			}
			if ok, _ := m.GetTag("time"); !ok {
				t.Errorf("%s: no server-time tag on %v", c.Nick(), m)
			}
		}
		// bob (SASL over TLS) → alice.
		if err := bob.Say(ch, "hello over TLS"); err != nil {
			t.Fatal(err)
		}
		m := expect(t, alice, "bob's PRIVMSG", IsPrivmsgFrom("bob", ch))
		if _, acct := m.GetTag("account"); acct != "bob" || Text(m) != "hello over TLS" {
			t.Errorf("alice saw %v (account %q), want bob's text with account bob", m, acct)
		}
		// carol (no SASL) → alice: no account tag.
		if err := carol.Say(ch, "hello from carol"); err != nil {
			t.Fatal(err)
		}
		m = expect(t, alice, "carol's PRIVMSG", IsPrivmsgFrom("carol", ch))
		if ok, acct := m.GetTag("account"); ok {
			t.Errorf("carol's message carries account tag %q", acct)
		}
		// No echo-message by default.
		if got := alice.Collect(0, IsPrivmsgFrom("alice", "")); len(got) != 0 {
			t.Errorf("alice got her own messages back: %v", got)
		}
	})

	t.Run("verbatim text and history", func(t *testing.T) {
		// Control characters go out as written.
		text := "\x02bold\x02 \x0304red\x03 \x01ACTION waves\x01 tab\there"
		if err := alice.Say(ch, text); err != nil {
			t.Fatal(err)
		}
		if err := alice.Say(ch, "second"); err != nil {
			t.Fatal(err)
		}
		// Expect takes the later message first; the earlier one stays
		// available.
		expect(t, carol, "second", TextContains("second"))
		m := expect(t, carol, "formatted", IsPrivmsgFrom("alice", ch))
		if Text(m) != text {
			t.Errorf("carol got %q, want %q", Text(m), text)
		}
		// A burst with flood protection off arrives whole.
		const n = 60
		for i := range n {
			if err := alice.Say(ch, fmt.Sprintf("burst %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			expect(t, carol, "burst", TextContains(fmt.Sprintf("burst %d", i)))
		}
		if err := carol.Sync(wait); err != nil {
			t.Fatal(err)
		}
		carol.Discard()
		if got := carol.Collect(scale.D(200*time.Millisecond), nil); len(got) != 0 {
			t.Errorf("after Discard: %v", got)
		}
	})

	t.Run("oper", func(t *testing.T) {
		if _, err := s.OperCommand("SAMODE " + ch + " +v carol"); err != nil {
			t.Fatal(err)
		}
		expect(t, alice, "MODE +v carol", And(IsCommand("MODE"), func(m ircmsg.Message) bool {
			return strings.Join(m.Params, " ") == ch+" +v carol"
		}))
		if err := s.Kill("carol", "test kill"); err != nil {
			t.Fatal(err)
		}
		expect(t, carol, "ERROR after KILL", IsCommand("ERROR"))
		select {
		case <-carol.Done():
		case <-time.After(wait):
			t.Fatal("carol's connection still open after KILL")
		}
		m := expect(t, alice, "carol's QUIT", IsQuitOf("carol"))
		if !strings.Contains(Text(m), "Killed") {
			t.Errorf("QUIT reason %q", Text(m))
		}
		if err := s.Kill("nobody-here", "x"); err == nil {
			t.Error("Kill of a missing nick succeeded")
		}
		if _, err := carol.Expect(scale.D(100*time.Millisecond), IsCommand("PRIVMSG")); err == nil || !strings.Contains(err.Error(), "connection ended") {
			t.Errorf("Expect on a closed connection: %v", err)
		}
	})

	t.Run("restart", func(t *testing.T) {
		t0 := time.Now()
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		t.Logf("Restart took %v (ready %v)", time.Since(t0), s.Ready)
		for _, c := range []*Client{alice, bob} {
			select {
			case <-c.Done():
			case <-time.After(wait):
				t.Fatalf("%s still connected after Restart", c.Nick())
			}
		}
		// Accounts survive; a new client logs in.
		c := DialT(t, s.Addr, ClientOptions{Nick: "alice2", Account: "alice", Password: "alice-secret", Channels: []string{ch}})
		if c.Account() != "alice" {
			t.Errorf("after Restart: account %q", c.Account())
		}
		if _, err := Dial(s.Addr, ClientOptions{Nick: "mallory", Account: "alice", Password: "wrong", Timeout: wait}); err == nil || !strings.Contains(err.Error(), "904") {
			t.Errorf("SASL with a wrong password: %v, want 904", err)
		}
	})
}

// TestFloodProtection checks that Options.FloodProtection keeps InspIRCd's
// fakelag: a burst is delivered at about a line per second, not at once.
func TestFloodProtection(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{FloodProtection: true})
	// The harness's own connection is an oper, exempt from fakelag:
	// several registrations in a row work with flood protection on.
	for _, acct := range []string{"acct1", "acct2", "acct3", "acct4"} {
		if err := s.Register(acct, "password-"+acct); err != nil {
			t.Fatal(err)
		}
	}
	cs := DialAllT(t, s.Addr,
		ClientOptions{Nick: "sender", Channels: []string{"#flood"}},
		ClientOptions{Nick: "receiver", Channels: []string{"#flood"}},
	)
	sender, receiver := cs[0], cs[1]
	const n = 20
	for i := range n {
		if err := sender.Say("#flood", fmt.Sprintf("line %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := receiver.Collect(scale.D(1500*time.Millisecond), IsPrivmsgFrom("sender", "#flood"))
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("with flood protection, %d of %d burst lines arrived within 1.5 s; want some but not all", len(got), n)
	}
	t.Logf("%d of %d lines arrived within 1.5 s", len(got), n)
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	if _, err := Dial("127.0.0.1:1", ClientOptions{Nick: "x", Timeout: scale.D(time.Second)}); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
	if _, err := Dial("127.0.0.1:1", ClientOptions{}); err == nil {
		t.Error("Dial without a nick succeeded")
	}
}

// BenchmarkDial measures a client's connection and registration (no SASL,
// no channel) on a shared server.
func BenchmarkDial(b *testing.B) {
	s := StartT(b, Options{})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c, err := Dial(s.Addr, ClientOptions{Nick: fmt.Sprintf("bench%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkStart measures Start (InspIRCd listening, Anope linked,
// NickServ answering) and Close.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := Start(Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(s.Ready.Microseconds())/1000, "ms-ready")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
