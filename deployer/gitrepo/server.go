package gitrepo

import (
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits of the server NewServer builds. Targets fetch packs that can be
// large, over links that can be slow, many at once: rather than bound a
// whole response tightly, a response that makes no progress for WriteStall
// is cut, and WriteTimeout only bounds the longest transfer.
const (
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a request; git's requests have no body.
	ReadTimeout = 30 * time.Second
	// WriteStall is the longest a response may take to send one chunk
	// (what one Write call gives, or 1 MiB of a file): a client taking
	// less than that in WriteStall is cut.
	WriteStall = 60 * time.Second
	// WriteTimeout bounds a whole response.
	WriteTimeout = time.Hour
	// IdleTimeout closes a kept-alive connection nobody uses.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds a request's line and headers.
	MaxHeaderBytes = 64 << 10
	// MaxConns is how many connections Listener lets in at once; more
	// wait in the kernel's queue until one closes. git opens a few per
	// target.
	MaxConns = 1024
)

// NewServer returns a server for h (Handler's, usually) with every timeout
// set, so a target that stops reading, or a client that connects and
// sends nothing, does not hold a connection. Serve it on Listener(ln).
func NewServer(h http.Handler) *http.Server {
	return newServer(h, WriteStall, WriteTimeout, progressChunk)
}

func newServer(h http.Handler, stall, total time.Duration, chunk int64) *http.Server {
	return &http.Server{
		Handler:           progressDeadline(h, stall, total, chunk),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      total,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Listener wraps ln so that at most MaxConns connections are open at once.
func Listener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, MaxConns)
}

// progressDeadline moves the write deadline of each response stall ahead
// whenever it sends more, never past total after the request came in.
// A file is sent chunk bytes at a time.
func progressDeadline(h http.Handler, stall, total time.Duration, chunk int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: stall, end: time.Now().Add(total), chunk: chunk}
		p.extend()
		h.ServeHTTP(p, r)
	})
}

// progressChunk is how much of a file is sent between deadline moves.
const progressChunk = 1 << 20

type progressWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time
	chunk int64
}

func (p *progressWriter) extend() {
	d := time.Now().Add(p.stall)
	if d.After(p.end) {
		d = p.end
	}
	p.rc.SetWriteDeadline(d)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.extend()
	return p.ResponseWriter.Write(b)
}

// ReadFrom keeps the response writer's own ReadFrom (sendfile for a file,
// as http.ServeContent sends it), a chunk at a time.
func (p *progressWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := p.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{p}, src)
	}
	var total int64
	for {
		p.extend()
		var n int64
		var err error
		if lr, ok := src.(*io.LimitedReader); ok {
			// One level of LimitedReader over the file, as sendfile
			// wants it.
			step := &io.LimitedReader{R: lr.R, N: min(lr.N, p.chunk)}
			n, err = rf.ReadFrom(step)
			lr.N -= n
		} else {
			n, err = rf.ReadFrom(io.LimitReader(src, p.chunk))
		}
		total += n
		if err != nil || n < p.chunk {
			return total, err
		}
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// writerOnly hides every method but Write.
type writerOnly struct{ io.Writer }
