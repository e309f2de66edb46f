package web

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits of the server NewServer builds. The pages are small and rendered
// whole before a byte is sent, so a client gets little time to send its
// request and to read the answer; a connection kept open between requests
// is closed after IdleTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	// MaxHeaderBytes bounds a request's line and headers.
	MaxHeaderBytes = 64 << 10
	// MaxConns is how many connections Listener lets in at once; more
	// wait in the kernel's queue until one closes.
	MaxConns = 256
)

// NewServer returns a server for h (the handler New returns, alone or on a
// mux with others) with every timeout set: a client that sends its request
// slowly, reads the answer slowly or keeps a connection open without using
// it cannot hold a connection for long. Serve it on Listener(ln).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Listener wraps ln so that at most MaxConns connections are open at once.
func Listener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, MaxConns)
}
