package journal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHandlerServesPlainText: a deploy's log holds text the bot does not
// control (a service's output, a deployer's message, a commit subject); the
// page is plain text that no browser sniffs into HTML, on success and on
// error.
func TestHandlerServesPlainText(t *testing.T) {
	dir := t.TempDir()
	id, err := NewID("citoid", time.Date(2026, 11, 26, 1, 45, 12, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	w, err := Create(dir, "citoid", Meta{ID: id, Who: "alice", Rev: strings.Repeat("5", 40), Message: hostile,
		Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(Event{Type: TypeStage, Group: "canary", Host: "scb1001", Stage: "restart", Command: "restart", ExitCode: Code(1), Output: hostile})
	w.Close()
	h := Handler(dir, "/deploys/")
	for _, path := range []string{"/deploys/" + id, "/deploys/" + id + "?output=1", "/deploys/" + id + "?level=" + hostile, "/deploys/20261126-014512-citoid-ffff"} {
		req := httptest.NewRequest(http.MethodGet, "/deploys/x", nil)
		req.URL.Path, req.URL.RawQuery, _ = strings.Cut(path, "?")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ct, sniff := rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options")
		if !strings.HasPrefix(ct, "text/plain") || sniff != "nosniff" {
			t.Errorf("GET %s: %d, Content-Type %q, X-Content-Type-Options %q", path, rec.Code, ct, sniff)
		}
		if path == "/deploys/"+id+"?output=1" && !strings.Contains(rec.Body.String(), hostile) {
			t.Errorf("GET %s: the output is not shown as it was:\n%s", path, rec.Body.String())
		}
	}
}
