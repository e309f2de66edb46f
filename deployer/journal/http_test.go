package journal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 11, 26, 1, 45, 12, 0, time.UTC)
	id, err := NewID("citoid", started)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(dir, "citoid", Meta{ID: id, Who: "alice", Rev: strings.Repeat("5", 40), Started: started,
		Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(Event{Type: TypeStage, Group: "canary", Host: "scb1001", Stage: StagePromote, Command: "ln -sfn rev current", ExitCode: Code(0), Output: "quux-output"})
	w.Append(Event{Type: TypeHostFailed, Group: "canary", Host: "scb1001", Err: "check health failed: status 500"})
	w.Close()
	h := Handler(dir, "/deploys/")

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/deploys/" + id)
	if code != 200 || !strings.Contains(body, "citoid "+id+" by alice") || !strings.Contains(body, "scb1001") || !strings.Contains(body, "check health failed: status 500") {
		t.Fatalf("GET the deploy: %d\n%s", code, body)
	}
	if strings.Contains(body, "quux-output") {
		t.Fatalf("output of a successful command shown without ?output=1:\n%s", body)
	}
	if _, body := get("/deploys/" + id + "?output=1"); !strings.Contains(body, "quux-output") {
		t.Fatalf("?output=1 lacks the output:\n%s", body)
	}
	for _, bad := range []string{"/deploys/nosuch", "/deploys/../../etc/passwd", "/deploys/20261126-014512-citoid-ffff"} {
		if code, _ := get(bad); code != 404 {
			t.Errorf("GET %s: %d, want 404", bad, code)
		}
	}
	if code, _ := get("/deploys/" + id + "?level=loud"); code != 400 {
		t.Errorf("bad level: %d, want 400", code)
	}
	if code, body := get("/deploys/" + id + "?host=" + strings.Repeat("*a", MaxHostGlob/2) + "x"); code != 400 || !strings.Contains(body, "too long") {
		t.Errorf("long host pattern: %d %q, want 400", code, body)
	}
	if code, body := get("/deploys/" + id + "?host=" + strings.Repeat("*", MaxHostGlob)); code != 200 || !strings.Contains(body, "check health failed") {
		t.Errorf("host pattern of %d bytes: %d, want 200", MaxHostGlob, code)
	}
}
