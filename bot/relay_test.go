package bot

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"deploybot/e2e/scale"
	"deploybot/sal"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// relayHarness is a test bot serving the relay on 127.0.0.1:0 with an
// unpaced sender running.
type relayHarness struct {
	b     *Bot
	w     *fakeWire
	store sal.Store
	addr  string
	logs  *syncBuffer
	sent  []string // lines seen so far, across waitSent calls
}

func startRelay(t *testing.T, allow ...string) *relayHarness {
	t.Helper()
	b, w, store := newTestBot(t)
	h := &relayHarness{b: b, w: w, store: store, logs: &syncBuffer{}}
	b.cfg.IRC.RelayAllowPrefixes = nil
	for _, a := range allow {
		b.cfg.IRC.RelayAllowPrefixes = append(b.cfg.IRC.RelayAllowPrefixes, netip.MustParsePrefix(a))
	}
	b.log = slog.New(slog.NewTextHandler(h.logs, nil))
	b.out.log = b.log
	b.out.lim = rate.NewLimiter(rate.Inf, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	senderDone := make(chan struct{})
	go func() { b.out.run(ctx); close(senderDone) }()
	served := make(chan error, 1)
	go func() { served <- b.serveRelay(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serveRelay: %v", err)
			}
		case <-time.After(scale.D(30 * time.Second)):
			t.Error("serveRelay did not stop when its context ended")
		}
		<-senderDone
	})
	return h
}

func (h *relayHarness) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitSent waits until the last line sent is last, and returns every line
// sent since the previous call.
func (h *relayHarness) waitSent(t *testing.T, last string) []string {
	t.Helper()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for {
		h.sent = append(h.sent, h.w.take()...)
		if n := len(h.sent); n > 0 && h.sent[n-1] == last {
			out := h.sent
			h.sent = nil
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("never sent %q; sent %q\nlogs:\n%s", last, h.sent, h.logs.String())
		}
		time.Sleep(scale.D(5 * time.Millisecond))
	}
}

func (h *relayHarness) entries(t *testing.T) []sal.Entry {
	t.Helper()
	es, err := h.store.List(context.Background(), sal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestRelayLogAndPlainLines(t *testing.T) {
	h := startRelay(t, "127.0.0.0/8")
	c := h.dial(t)
	write(t, c, "!log ops1@deploy1001 restarted citoid\r\n\n   \r\njust a line\n!log no attribution here\n")
	got := h.waitSent(t, "#ops !log no attribution here")
	want := []string{"#ops !log ops1@deploy1001 restarted citoid", "#ops just a line", "#ops !log no attribution here"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}
	es := h.entries(t)
	if len(es) != 2 {
		t.Fatalf("entries: %+v", es)
	}
	for _, c := range []struct {
		e         sal.Entry
		nick, msg string
	}{
		{es[1], "ops1@deploy1001", "restarted citoid"},
		{es[0], "relay", "no attribution here"},
	} {
		if c.e.Nick != c.nick || c.e.Message != c.msg || c.e.Source != sal.SourceRelay || c.e.Channel != "#ops" || c.e.Project != "production" || c.e.Account != "" ||
			!strings.HasPrefix(c.e.Sender, "relay listener 127.0.0.1:") {
			t.Errorf("entry %+v, want nick %q message %q source relay in #ops/production, sent by the relay listener's peer", c.e, c.nick, c.msg)
		}
	}

	// The last line may come without a line ending.
	write(t, c, "!log ops2@deploy1002 synced")
	c.(*net.TCPConn).CloseWrite()
	h.waitSent(t, "#ops !log ops2@deploy1002 synced")
	if es := h.entries(t); len(es) != 3 || es[0].Nick != "ops2@deploy1002" || es[0].Message != "synced" {
		t.Fatalf("entries: %+v", es)
	}
}

func TestRelayLogBeforeEcho(t *testing.T) {
	h := startRelay(t, "127.0.0.0/8")
	// A wire that checks the entry is in the store when the echo goes out.
	var mu sync.Mutex
	var inStore []int
	h.b.out.w = wireFunc(func(target, text string) error {
		es, _ := h.store.List(context.Background(), sal.Query{})
		mu.Lock()
		inStore = append(inStore, len(es))
		mu.Unlock()
		return h.w.Privmsg(target, text)
	})
	c := h.dial(t)
	write(t, c, "!log ops1@deploy1001 restarted citoid\n")
	h.waitSent(t, "#ops !log ops1@deploy1001 restarted citoid")
	mu.Lock()
	defer mu.Unlock()
	if len(inStore) != 1 || inStore[0] != 1 {
		t.Fatalf("entries in the store at each echo: %v", inStore)
	}
}

type wireFunc func(target, text string) error

func (f wireFunc) CanSend(string) bool               { return true }
func (f wireFunc) Privmsg(target, text string) error { return f(target, text) }

func TestRelayRefusesLongLines(t *testing.T) {
	h := startRelay(t, "127.0.0.0/8")
	c := h.dial(t)
	longest := strings.Repeat("y", maxRelayLine)
	write(t, c, strings.Repeat("x", 3*maxRelayLine)+"\n")                         // overflows the buffer
	write(t, c, strings.Repeat("z", maxRelayLine+1)+"\n")                         // fits the buffer, one byte too long
	write(t, c, "!log ops1@deploy1001 "+strings.Repeat("w", maxRelayLine)+"\r\n") // too long, not logged
	write(t, c, longest+"\r\n")                                                   // just fits
	write(t, c, "after\n")
	got := h.waitSent(t, "#ops after")
	var sb strings.Builder
	for _, l := range got[:len(got)-1] {
		text, ok := strings.CutPrefix(l, "#ops ")
		if !ok {
			t.Fatalf("sent %q", l)
		}
		sb.WriteString(text)
	}
	if sb.String() != longest {
		t.Fatalf("sent %d bytes before \"after\", want the %d-byte line only: %q", sb.Len(), len(longest), got)
	}
	if n := strings.Count(h.logs.String(), "relay line refused: too long"); n != 3 {
		t.Fatalf("%d refusals logged, want 3:\n%s", n, h.logs.String())
	}
	if es := h.entries(t); len(es) != 0 {
		t.Fatalf("a refused line was logged: %+v", es)
	}
}

func TestRelayAllowlist(t *testing.T) {
	h := startRelay(t, "10.0.0.0/8", "::1/128")
	c := h.dial(t)
	// The write may or may not fail; the server must close the connection.
	io.WriteString(c, "!log ops1@deploy1001 restarted citoid\nhello\n")
	c.SetReadDeadline(time.Now().Add(scale.D(30 * time.Second)))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection from outside relay_allow not closed: %v", err)
	}
	time.Sleep(scale.D(100 * time.Millisecond))
	if got := h.w.take(); len(got) != 0 {
		t.Fatalf("sent %q", got)
	}
	if es := h.entries(t); len(es) != 0 {
		t.Fatalf("logged %+v", es)
	}
	if !strings.Contains(h.logs.String(), "relay connection refused") {
		t.Fatalf("refusal not logged:\n%s", h.logs.String())
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestRelayConcurrentConnections(t *testing.T) {
	h := startRelay(t, "127.0.0.0/8")
	c1, c2 := h.dial(t), h.dial(t)
	write(t, c2, "!log ops2@deploy1002 from two\n")
	h.waitSent(t, "#ops !log ops2@deploy1002 from two")
	write(t, c1, "!log ops1@deploy1001 from one\n")
	h.waitSent(t, "#ops !log ops1@deploy1001 from one")
	write(t, c2, "two again\n")
	h.waitSent(t, "#ops two again")

	// Many at once.
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.WriteString(c, "!log ops@deploy"+strings.Repeat("1", i+1)+" parallel\n")
		})
	}
	wg.Wait()
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for len(h.entries(t)) < n+2 && time.Now().Before(deadline) {
		time.Sleep(scale.D(10 * time.Millisecond))
	}
	if es := h.entries(t); len(es) != n+2 {
		t.Fatalf("%d entries, want %d", len(es), n+2)
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	old := relayIdle
	relayIdle = 50 * time.Millisecond
	t.Cleanup(func() { relayIdle = old })
	h := startRelay(t, "127.0.0.0/8")
	c := h.dial(t)
	c.SetReadDeadline(time.Now().Add(scale.D(30 * time.Second)))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("idle connection not closed: %v", err)
	}
}
