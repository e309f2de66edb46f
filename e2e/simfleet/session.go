package simfleet

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// session serves one session channel: the exec request's command is the
// engine's script, answered by run.
func (f *Fleet) session(h *Host, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		go ssh.DiscardRequests(reqs) // signals: the script is never killed
		h.mu.Lock()
		h.sessions++
		h.mu.Unlock()
		w := bufio.NewWriter(ch)
		code := f.run(h, parseScript(p.Command), w, ch)
		_ = w.Flush()
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
		return
	}
}

// direct serves a direct-tcpip channel, the engine's port and HTTP checks
// on the target's loopback: every port accepts; a request read on it is
// answered 200 with the host's revision.
func (f *Fleet) direct(h *Host, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	req, err := http.ReadRequest(bufio.NewReader(ch))
	if err != nil {
		return
	}
	_ = req.Body.Close()
	body := f.cfg.HTTPBody
	if body == "" {
		cur, _, _ := h.State()
		body = "rev " + cur + "\n"
	}
	fmt.Fprintf(ch, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// script is what the simulation needs of a script the engine sent: its
// prelude variables.
type script map[string]string

// parseScript reads the prelude variables (DEPLOY_*=value lines) of the
// engine's command, exec /bin/sh -c '<script>' deploybot <unix time>.
func parseScript(cmd string) script {
	s := script{}
	quoted := strings.TrimPrefix(cmd, "exec /bin/sh -c ")
	if i := strings.LastIndex(quoted, "' deploybot "); i >= 0 {
		quoted = quoted[:i+1]
	}
	body := unquote(quoted)
	for line := range strings.SplitSeq(body, "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "DEPLOY_") || strings.ContainsAny(name, " \t") {
			continue
		}
		s[name] = unquote(val)
	}
	if strings.HasSuffix(body, "\nop_mark\n") {
		s[opState] = "1"
	}
	return s
}

// opState marks the script of Conn.Op (its prelude is status's).
const opState = "op state"

// unquote undoes remote.ShellQuote: a bare word, or a single-quoted one
// where each quote is closed, escaped with a backslash and reopened.
func unquote(w string) string {
	if len(w) < 2 || w[0] != '\'' {
		return w
	}
	var b strings.Builder
	for len(w) > 0 {
		if w[0] != '\'' {
			b.WriteByte(w[0]) // the \' between two quoted parts
			w = w[1:]
			continue
		}
		end := strings.IndexByte(w[1:], '\'')
		if end < 0 {
			b.WriteString(w[1:])
			break
		}
		b.WriteString(w[1 : 1+end])
		w = w[end+2:]
		if strings.HasPrefix(w, `\'`) {
			b.WriteByte('\'')
			w = w[2:]
		}
	}
	return b.String()
}

const mark = "##deploybot"

// run answers one script as the real one would on h, writing its output
// to w and reading what the engine writes to its stdin from in (a held
// deploy's word); it returns the exit status.
func (f *Fleet) run(h *Host, s script, w *bufio.Writer, in io.Reader) int {
	fmt.Fprintf(w, "%s pid %d\n", mark, 1000+h.Index)
	switch {
	case s["DEPLOY_OP_KIND"] == "deploy":
		return f.deploy(h, s, w, in)
	case s["DEPLOY_OP_KIND"] == "finalize":
		time.Sleep(f.cfg.FinalizeLatency)
		return h.finalize(s["DEPLOY_SHA"], w)
	case s["DEPLOY_OP_KIND"] == "rollback":
		time.Sleep(f.cfg.FinalizeLatency)
		return h.rollback(s["DEPLOY_UNDO"], w)
	case s["DEPLOY_STOP_OP"] != "":
		fmt.Fprintf(w, "%s stop none 0 gone\n", mark)
		return 0
	case s["DEPLOY_CHECK"] != "" || s["DEPLOY_PGID"] != "":
		return 0
	case s[opState] != "":
		fmt.Fprintf(w, "%s op none\n", mark)
		return 0
	case s["DEPLOY_OP_ID"] == "" && len(s) == 1 && s["DEPLOY_DIR"] != "":
		cur, done, dep := h.State()
		fmt.Fprintf(w, "%s current %s\n%s done %s\n%s deploying %s\n", mark, cur, mark, done, mark, dep)
		return 0
	}
	fmt.Fprintln(w, "simfleet: script not simulated")
	return 127
}

// deploy runs the stages: fetch (for real, from DEPLOY_URL), checkout,
// promote and restart (when DEPLOY_RESTART is set); held
// (DEPLOY_HOLD=1), it then prints the hold marker and reads a line from
// in: "finalize" runs the finalize stage, anything else ends it.
func (f *Fleet) deploy(h *Host, s script, w *bufio.Writer, in io.Reader) int {
	sha := s["DEPLOY_SHA"]
	h.mu.Lock()
	noop := s["DEPLOY_FORCE"] != "1" && h.current == sha && h.done == sha
	h.mu.Unlock()
	if noop {
		fmt.Fprintf(w, "%s noop %s\n", mark, sha)
		return 0
	}
	stage := func(name string, fn func(out *bytes.Buffer) int) int {
		t0 := time.Now()
		fmt.Fprintf(w, "%s begin %s\n", mark, name)
		time.Sleep(f.cfg.StageLatency)
		var out bytes.Buffer
		rc := fn(&out)
		_, _ = w.Write(out.Bytes())
		fmt.Fprintf(w, "%s end %s %d %d\n", mark, name, rc, time.Since(t0).Milliseconds())
		return rc
	}
	steps := []struct {
		name string
		fn   func(*bytes.Buffer) int
	}{
		{"fetch", func(out *bytes.Buffer) int { return h.fetch(s["DEPLOY_URL"], sha, out) }},
		{"checkout", func(out *bytes.Buffer) int { fmt.Fprintf(out, "checked out revs/%s\n", sha); return 0 }},
		{"promote", func(out *bytes.Buffer) int {
			h.mu.Lock()
			h.deploying, h.current = sha, sha
			h.mu.Unlock()
			fmt.Fprintf(out, "current -> revs/%s\n", sha)
			return 0
		}},
	}
	if s["DEPLOY_RESTART"] != "" {
		steps = append(steps, struct {
			name string
			fn   func(*bytes.Buffer) int
		}{"restart", func(out *bytes.Buffer) int {
			if h.fail {
				fmt.Fprintln(out, "simfleet: injected restart failure")
				return 1
			}
			fmt.Fprintf(out, "restarted %s\n", sha)
			return 0
		}})
	}
	for _, st := range steps {
		if rc := stage(st.name, st.fn); rc != 0 {
			return rc
		}
	}
	if s["DEPLOY_HOLD"] != "1" {
		return 0
	}
	fmt.Fprintf(w, "%s hold\n", mark)
	if w.Flush() != nil {
		return 1
	}
	word, _ := bufio.NewReader(in).ReadString('\n')
	if word != "finalize\n" {
		return 0
	}
	return stage("finalize", func(out *bytes.Buffer) int {
		time.Sleep(f.cfg.FinalizeLatency)
		return h.finalize(sha, out)
	})
}

// finalize marks sha done, as finalize.sh (exit 3 unless it is current).
func (h *Host) finalize(sha string, w io.Writer) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.current != sha {
		fmt.Fprintf(w, "current is not revs/%s: not marking it done\n", sha)
		return 3
	}
	h.done, h.deploying = sha, ""
	h.history = append(without(h.history, sha), sha)
	fmt.Fprintf(w, "done: %s\n", sha)
	return 0
}

// rollback restores the done revision, undoing undo first when it is the
// done one, as rollback.sh.
func (h *Host) rollback(undo string, w io.Writer) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if undo != "" && h.done == undo {
		prev := without(h.history, undo)
		if len(prev) == 0 {
			fmt.Fprintln(w, "nothing to roll back to")
			return 3
		}
		h.history, h.done = prev, prev[len(prev)-1]
		fmt.Fprintf(w, "undid done %s: %s is done again\n", undo, h.done)
	}
	if h.done == "" {
		fmt.Fprintln(w, "no revision was ever marked done here: nothing to roll back to")
		return 3
	}
	fmt.Fprintf(w, "%s rev %s\n", mark, h.done)
	h.deploying = ""
	if h.current == h.done {
		fmt.Fprintf(w, "%s noop %s\n", mark, h.done)
		return 0
	}
	h.current = h.done
	return 0
}

func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
