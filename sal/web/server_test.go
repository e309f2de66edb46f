package web

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

func TestNewServerSetsEveryTimeout(t *testing.T) {
	h := http.NotFoundHandler()
	s := NewServer(h)
	if s.Handler == nil {
		t.Fatal("no handler")
	}
	for name, got := range map[string]time.Duration{
		"ReadHeaderTimeout": s.ReadHeaderTimeout,
		"ReadTimeout":       s.ReadTimeout,
		"WriteTimeout":      s.WriteTimeout,
		"IdleTimeout":       s.IdleTimeout,
	} {
		if got <= 0 || got > 5*time.Minute {
			t.Errorf("%s = %v", name, got)
		}
	}
	if s.ReadHeaderTimeout > s.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v above ReadTimeout %v", s.ReadHeaderTimeout, s.ReadTimeout)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", s.MaxHeaderBytes)
	}
}

// Listener lets MaxConns connections in and makes the next one wait until
// one of them closes.
func TestListenerLimitsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	go srv.Serve(Listener(ln))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	// MaxConns connections that send nothing: each holds its slot.
	var idle []net.Conn
	for range MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	c, err := net.Dial("tcp", addr) // accepted by the kernel, not by the server
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(c).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		t.Fatalf("connection %d answered %q while %d were open", MaxConns+1, line, MaxConns)
	case <-time.After(scale.D(300 * time.Millisecond)):
	}
	idle[0].Close()
	select {
	case line := <-answer:
		if line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("answer %q", line)
		}
	case <-time.After(ReadHeaderTimeout / 2):
		t.Fatal("no answer once a connection closed")
	}
}

// A configured page size above what the API allows is cut to it: no page
// asks the store for more.
func TestPageSizeBounded(t *testing.T) {
	store := sample()
	h := newTest(store, func(o *Options) { o.PageSize = 1_000_000 })
	for _, target := range []string{"/", "/atom", "/api/log"} {
		get(t, h, target, 200)
		if q := store.queries[len(store.queries)-1]; q.Limit > maxAPILimit+1 {
			t.Errorf("%s asked the store for %d entries", target, q.Limit)
		}
	}
}
