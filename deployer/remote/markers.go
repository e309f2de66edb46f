package remote

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MarkerPrefix starts every machine-readable line the scripts print; see
// the package documentation ("Stage markers").
const MarkerPrefix = "##deploybot "

// OutputTail is the most output kept of a command or stage: its last
// bytes (trimmed to a UTF-8 boundary).
const OutputTail = 4096

// maxLine is the longest partial line kept while waiting for its newline;
// longer lines are passed on as output in pieces.
const maxLine = 16 << 10

// outputParser receives a script's output (stdout and stderr, possibly
// from two goroutines), takes out the markers and keeps the tail of the
// rest, overall and per stage. It is an io.Writer.
type outputParser struct {
	mu      sync.Mutex
	partial []byte
	pid     int
	all     tailBuf
	stages  []StageResult
	open    bool // stages[len-1] has begun and not ended
	stage   tailBuf
	began   time.Time
	marks   map[string]string // noop, rev, current, done, op, busy, stop, hold → its fields, blank-separated
	now     func() time.Time
	held    chan struct{} // closed at the hold marker (holdChan)
	// restarting: a restart command has begun and not ended (the markers
	// "restart begin" and "restart end", which a rollback prints; a
	// deploy's is its stage restart): it runs in a process group of its
	// own, which killing the script's does not reach.
	restarting bool
}

func newParser() *outputParser {
	return &outputParser{
		all:   tailBuf{max: OutputTail},
		stage: tailBuf{max: OutputTail},
		marks: map[string]string{},
		now:   time.Now,
	}
}

// readBuf is the buffer ReadFrom reads a session's output with. Script
// output is small; io.Copy's own buffer (32 KiB, held while the session
// runs) would cost a deploy to a thousand hosts at once tens of
// megabytes.
const readBuf = 2 << 10

// ReadFrom copies r's data to p (Write) until EOF, through a small buffer:
// Conn.run reads a session's output with it.
func (p *outputParser) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, readBuf)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			p.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (p *outputParser) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(p.partial[:i+1])
		p.partial = p.partial[i+1:]
	}
	if len(p.partial) > maxLine {
		p.content(p.partial)
		p.partial = p.partial[:0]
	}
	// Do not keep a large array alive for a short remainder.
	if cap(p.partial) > 2*maxLine {
		p.partial = append([]byte(nil), p.partial...)
	}
	return len(b), nil
}

// line handles one line, newline included. A marker is taken only in
// the exact form the scripts print it (see marker), at the end of the
// line; anything else, a line that merely looks like a marker included, is
// output.
func (p *outputParser) line(l []byte) {
	i := bytes.LastIndex(l, []byte(MarkerPrefix))
	if i < 0 || !bytes.HasSuffix(l, []byte("\n")) {
		p.content(l)
		return
	}
	key, args, ok := marker(string(l[i+len(MarkerPrefix) : len(l)-1]))
	if !ok {
		p.content(l)
		return
	}
	if i > 0 {
		p.content(l[:i]) // unterminated output followed by a marker
	}
	switch key {
	case "pid":
		if p.pid == 0 {
			p.pid, _ = strconv.Atoi(args[0])
		}
	case "begin":
		p.closeOpen(-1, 0)
		p.stages = append(p.stages, StageResult{Stage: args[0], ExitCode: -1})
		p.open = true
		p.stage.reset()
		p.began = p.now()
	case "end":
		if !p.open || p.stages[len(p.stages)-1].Stage != args[0] {
			return
		}
		code, err := strconv.Atoi(args[1])
		if err != nil {
			code = -1
		}
		ms, err := strconv.ParseInt(args[2], 10, 64)
		d := time.Duration(ms) * time.Millisecond
		if err != nil || ms < 0 || ms > maxStageMillis {
			d = p.now().Sub(p.began)
		}
		p.closeOpen(code, d)
	case "restart":
		p.restarting = args[0] == "begin"
	case "hold":
		if _, ok := p.marks[key]; !ok {
			p.marks[key] = ""
			if p.held != nil {
				close(p.held)
			}
		}
	default:
		p.marks[key] = strings.Join(args, " ")
	}
}

// maxStageMillis bounds a stage duration taken from an end marker (a
// year); beyond it the duration is measured here instead.
const maxStageMillis = 365 * 24 * 3600 * 1000

// marker parses what follows MarkerPrefix on a marker line (its newline
// removed): a known keyword and its arguments, each separated by exactly
// one space, numbers in decimal without sign or leading zero, as the
// scripts print them:
//
//	pid <number>
//	begin <stage>                 stage: lowercase letters
//	end <stage> <code> <ms>       ms: a number, maybe after '-'
//	noop|rev|current|done|deploying <arg>   arg: no spaces, maybe empty
//	busy <op-id> <pgid> <kind> <since>      (an operation runs)
//	op none | op <op-id> <pgid> <kind> <since> <state>
//	stop <signal> <ms> <alive|gone>
//	hold                          (a held deploy waits for its word)
//	restart begin|end             (a restart command starts, ends)
//
// It reports false for anything else.
func marker(s string) (key string, args []string, ok bool) {
	f := strings.Split(s, " ")
	key, args = f[0], f[1:]
	switch key {
	case "pid":
		return key, args, len(args) == 1 && isDigits(args[0]) && len(args[0]) <= 9
	case "begin":
		return key, args, len(args) == 1 && isStageName(args[0])
	case "end":
		return key, args, len(args) == 3 && isStageName(args[0]) && isDigits(args[1]) && len(args[1]) <= 9 &&
			isDigits(strings.TrimPrefix(args[2], "-"))
	case "noop", "rev", "current", "done", "deploying":
		return key, args, len(args) == 1 && validArg(args[0])
	case "busy":
		return key, args, len(args) == 4 && allValid(args)
	case "op":
		return key, args, (len(args) == 1 && args[0] == "none") || (len(args) == 5 && allValid(args))
	case "stop":
		return key, args, len(args) == 3 && allValid(args)
	case "hold":
		return key, args, len(args) == 0
	case "restart":
		return key, args, len(args) == 1 && (args[0] == "begin" || args[0] == "end")
	}
	return "", nil, false
}

// isDigits reports whether s is a number as the shell prints one:
// decimal digits, no sign, no leading zero.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != "" && (s == "0" || s[0] != '0')
}

func isStageName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != "" && len(s) <= 32
}

func allValid(args []string) bool {
	for _, a := range args {
		if a == "" || !validArg(a) {
			return false
		}
	}
	return true
}

// validArg reports whether s can be the argument of a noop, rev, current,
// done or deploying marker: printable, no spaces (a revision, or "").
func validArg(s string) bool {
	if !utf8.ValidString(s) || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// closeOpen ends the open stage, if any, with code and duration d (when d
// is 0, the time since its begin marker arrived).
func (p *outputParser) closeOpen(code int, d time.Duration) {
	if !p.open {
		return
	}
	s := &p.stages[len(p.stages)-1]
	s.ExitCode = code
	if d == 0 && code == -1 {
		d = p.now().Sub(p.began)
	}
	s.Duration = d
	s.Output = p.stage.String()
	p.open = false
}

func (p *outputParser) content(b []byte) {
	p.all.write(b)
	if p.open {
		p.stage.write(b)
	}
}

// result returns the stages seen so far; a stage still open is returned
// with ExitCode -1, its duration so far and its output so far.
func (p *outputParser) result() (stages []StageResult, output string, marks map[string]string, pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stages = append([]StageResult(nil), p.stages...)
	if p.open && len(stages) > 0 {
		s := &stages[len(stages)-1]
		s.Duration = p.now().Sub(p.began)
		s.Output = p.stage.String() + string(p.partial)
	}
	all := p.all.String()
	if len(p.partial) > 0 && !bytes.Contains(p.partial, []byte(MarkerPrefix)) {
		all = tailString(all+string(p.partial), OutputTail)
	}
	m := make(map[string]string, len(p.marks))
	for k, v := range p.marks {
		m[k] = v
	}
	return stages, all, m, p.pid
}

// holdChan returns a channel closed once the hold marker has arrived.
func (p *outputParser) holdChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
		if _, ok := p.marks["hold"]; ok {
			close(p.held)
		}
	}
	return p.held
}

func (p *outputParser) getPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// inRestart reports whether a restart command has begun and not ended:
// the markers "restart begin" and "restart end" (a rollback), or the
// stage restart (a deploy).
func (p *outputParser) inRestart() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarting || p.open && p.stages[len(p.stages)-1].Stage == StageRestart
}

// ParseStages parses the complete output of a deploy script (see
// DeployScript): the stages it ran, in order, and whether it was a no-op.
// A stage without its end marker (the script was killed or the connection
// lost) has ExitCode -1. Command is not set (the output does not carry
// it).
func ParseStages(output string) (stages []StageResult, noop bool) {
	p := newParser()
	p.now = func() time.Time { return time.Time{} }
	_, _ = p.Write([]byte(output))
	if len(p.partial) > 0 {
		p.content(p.partial) // no newline: output, never a marker
		p.partial = nil
	}
	stages, _, marks, _ := p.result()
	_, noop = marks["noop"]
	return stages, noop
}

// tailBuf keeps the last max bytes written to it.
type tailBuf struct {
	b   []byte
	max int
}

func (t *tailBuf) write(p []byte) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		n := copy(t.b, t.b[len(t.b)-t.max:])
		t.b = t.b[:n]
	}
}

func (t *tailBuf) reset() { t.b = t.b[:0] }

func (t *tailBuf) String() string { return tailString(string(t.b), t.max) }

// tailString returns the last max bytes of s, starting at a UTF-8
// boundary; invalid UTF-8 is replaced.
func tailString(s string, max int) string {
	if len(s) > max {
		s = s[len(s)-max:]
		for i := 0; i < utf8.UTFMax && len(s) > 0 && !utf8.RuneStart(s[0]); i++ {
			s = s[1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// headString returns at most max bytes of the start of s, ending at a
// UTF-8 boundary; invalid UTF-8 is replaced.
func headString(s string, max int) string {
	if len(s) > max {
		s = s[:max]
		for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
			r, size := utf8.DecodeLastRuneInString(s)
			if r != utf8.RuneError || size > 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
