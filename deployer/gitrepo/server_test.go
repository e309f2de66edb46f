package gitrepo

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

func TestNewServerSetsEveryTimeout(t *testing.T) {
	s := NewServer(http.NotFoundHandler())
	for name, got := range map[string]time.Duration{
		"ReadHeaderTimeout": s.ReadHeaderTimeout,
		"ReadTimeout":       s.ReadTimeout,
		"WriteTimeout":      s.WriteTimeout,
		"IdleTimeout":       s.IdleTimeout,
	} {
		if got <= 0 {
			t.Errorf("%s = %v", name, got)
		}
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", s.MaxHeaderBytes)
	}
	if WriteStall <= 0 || WriteStall >= WriteTimeout {
		t.Errorf("WriteStall %v, WriteTimeout %v", WriteStall, WriteTimeout)
	}
}

// smallBuffers makes accepted connections keep little data in the kernel,
// so a response stalls as soon as its client stops reading.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(256 << 10)
	}
	return c, err
}

// serveFile starts newServer(stall, total, 64 KiB chunks) on a file of size bytes, sent
// the way Handler sends packs (http.ServeContent), or with Write calls
// when viaWrite. done gets the error of each response's send.
func serveFile(t *testing.T, size int64, stall, total time.Duration, viaWrite bool) (addr string, done chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pack")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	done = make(chan error, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if viaWrite {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			_, err := io.Copy(writerOnly{w}, f)
			done <- err
			return
		}
		http.ServeContent(w, r, "pack", time.Time{}, f)
		done <- nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(h, stall, total, 64<<10)
	go srv.Serve(Listener(smallBuffers{ln}))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), done
}

// request sends a GET and returns the connection, its reader past the
// response headers, and the body length.
func request(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(256 << 10)
	if _, err := c.Write([]byte("GET /pack HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReaderSize(c, 4096)
}

// A client that stops reading is cut after the stall time, well before the
// whole-response limit.
func TestStalledResponseIsCut(t *testing.T) {
	for _, viaWrite := range []bool{false, true} {
		name := "sendfile"
		if viaWrite {
			name = "write"
		}
		t.Run(name, func(t *testing.T) {
			const stall = 300 * time.Millisecond
			addr, done := serveFile(t, 256<<20, stall, time.Hour, viaWrite)
			c, rd := request(t, addr)
			rd.ReadString('\n') // then read no more
			start := time.Now()
			select {
			case <-done:
				if d := time.Since(start); d < stall {
					t.Fatalf("cut after %v, before the stall time", d)
				}
			case <-time.After(30 * stall):
				t.Fatal("a stalled response is still being sent")
			}
			c.Close()
		})
	}
}

// A client that reads slowly but steadily (64 KiB every stall/40, while
// the server sends 64 KiB chunks) gets the whole file even though the
// transfer takes longer than the stall time.
func TestSlowResponseIsNotCut(t *testing.T) {
	const stall = time.Second
	const size = 4 << 20
	addr, done := serveFile(t, size, stall, time.Hour, false)
	_, rd := request(t, addr)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var got int64
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(stall / 40)
	}
	if got != size {
		t.Fatalf("got %d of %d bytes in %v", got, size, time.Since(start))
	}
	if d := time.Since(start); d < stall {
		t.Fatalf("the transfer took only %v: the client is not slow", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// WriteTimeout still bounds a response that keeps making progress.
func TestWholeResponseBounded(t *testing.T) {
	const total = 500 * time.Millisecond
	addr, done := serveFile(t, 256<<20, time.Hour, total, false)
	_, rd := request(t, addr)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 64<<10)
	var got int64
	for time.Since(start) < 40*total {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(scale.D(5 * time.Millisecond))
	}
	if got == 256<<20 {
		t.Fatal("the whole file was sent past WriteTimeout")
	}
	select {
	case <-done:
	case <-time.After(40 * total):
		t.Fatal("response not cut at WriteTimeout")
	}
}
