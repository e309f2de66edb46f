package bot

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/e2e/scale"
)

// tlsIRCServer listens with TLS on loopback, with a certificate for
// 127.0.0.1 that no system trusts. Each connection reports its handshake
// error, or its first line once the handshake succeeded.
func tlsIRCServer(t *testing.T) (addr string, caPEM []byte, seen <-chan string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", hs.TLS.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(scale.D(30 * time.Second)))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					ch <- "handshake failed: " + err.Error()
					return
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				ch <- "line: " + line
			}()
		}
	}()
	return ln.Addr().String(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), ch
}

// TestTLSRefusesUntrustedServer: over TLS the bot talks only to a server
// whose certificate it can verify (the system's roots, or irc.tls_ca_file):
// someone on the path who answers with another certificate gets no line,
// so neither the SASL password nor anything else. irc.tls_insecure (which
// check-config warns about) and the right CA file both let it through.
func TestTLSRefusesUntrustedServer(t *testing.T) {
	for _, c := range []struct {
		name         string
		insecure, ca bool
		trusted      bool
	}{
		{"unknown certificate", false, false, false},
		{"tls_insecure", true, false, true},
		{"tls_ca_file", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, caPEM, seen := tlsIRCServer(t) // one each: a bot's retries reach only its own
			caFile := ""
			if c.ca {
				caFile = filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config.Config{IRC: config.IRC{Server: addr, Nick: "deploybot", Channels: []string{"#ops"},
				TLS: true, TLSInsecure: c.insecure, TLSCAFile: caFile, SASL: &config.SASL{Account: "deploybot", Password: "s3cret-pw"}}}
			cfg.IRC.Rate.PerSecond, cfg.IRC.Rate.Burst = 1, 1
			var logs logBuffer
			b, err := New(cfg, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { b.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			var got string
			select {
			case got = <-seen:
			case <-time.After(scale.D(30 * time.Second)):
				t.Fatal("the bot never connected")
			}
			if trusted := strings.HasPrefix(got, "line: "); trusted != c.trusted {
				t.Fatalf("server side: %s (want trusted %v)\nbot log:\n%s", got, c.trusted, logs.String())
			}
			if strings.Contains(got, "s3cret") || strings.Contains(logs.String(), "s3cret") {
				t.Fatalf("the password showed: %s\n%s", got, logs.String())
			}
		})
	}
}
