package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"deploybot/bot"
	"deploybot/config"
	"deploybot/deployer/journal"
	"deploybot/sal"
	salweb "deploybot/sal/web"
)

const webConfig = `
irc:
  server: 127.0.0.1:6667
  nick: deploybot
  channels: ["#ops"]
sal:
  database: sal.db
  listen: 127.0.0.1:8080
  public_url: https://sal.example.org
deploy:
  journal_dir: deploys
  ssh: {user: deploy, key_file: id, known_hosts: kh}
`

// The server of sal.listen has sal/web's timeouts and limits, and serves
// the bounded SAL handler and the deploy logs.
func TestWebServer(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(webConfig))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sal.OpenSQLite(filepath.Join(dir, "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := newWebServer(cfg, store, journal.Handler(cfg.Deploy.JournalDir, "/deploys/"), nil, slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout != salweb.ReadHeaderTimeout || srv.ReadTimeout != salweb.ReadTimeout ||
		srv.WriteTimeout != salweb.WriteTimeout || srv.IdleTimeout != salweb.IdleTimeout ||
		srv.MaxHeaderBytes != salweb.MaxHeaderBytes || srv.ErrorLog == nil {
		t.Fatalf("server limits: %+v", srv)
	}
	for target, code := range map[string]int{
		"/":                  200,
		"/api/log?limit=501": 400,
		"/wikitext?days=32":  400,
		"/deploys/nosuch":    404,
		"/api/log?limit=500": 200,
		"/wikitext?days=31":  200,
	} {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != code {
			t.Errorf("GET %s: %d, want %d: %s", target, rec.Code, code, rec.Body)
		}
	}
}

// With deploy.logs_listen, the deploy logs are on a server of their own
// (sal/web's limits, /deploys/ only), not with the SAL web pages, and the
// links follow.
func TestLogsServer(t *testing.T) {
	dir := t.TempDir()
	doc := strings.Replace(webConfig, "  journal_dir: deploys\n", "  journal_dir: deploys\n  logs_listen: 127.0.0.1:8082\n", 1)
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bot.DeployLogURL(cfg.Deploy.LogsPublicURL, "abc"), "http://127.0.0.1:8082/deploys/abc"; got != want {
		t.Errorf("log link %q, want %q", got, want)
	}
	srv := newLogsServer(journal.Handler(cfg.Deploy.JournalDir, "/deploys/"), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout != salweb.ReadHeaderTimeout || srv.ReadTimeout != salweb.ReadTimeout ||
		srv.WriteTimeout != salweb.WriteTimeout || srv.IdleTimeout != salweb.IdleTimeout ||
		srv.MaxHeaderBytes != salweb.MaxHeaderBytes || srv.ErrorLog == nil {
		t.Fatalf("server limits: %+v", srv)
	}
	// Nothing but /deploys/: no SAL pages.
	for target, code := range map[string]int{
		"/":                  404,
		"/api/log?limit=500": 404,
		"/wikitext":          404,
	} {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != code {
			t.Errorf("logs server GET %s: %d, want %d", target, rec.Code, code)
		}
	}
	_, pattern := srv.Handler.(*http.ServeMux).Handler(httptest.NewRequest(http.MethodGet, "/deploys/x", nil))
	if pattern != "/deploys/" {
		t.Errorf("logs server: /deploys/x goes to %q", pattern)
	}

	store, err := sal.OpenSQLite(filepath.Join(dir, "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	web := newWebServer(cfg, store, nil, nil, slog.New(slog.DiscardHandler))
	if _, pattern := web.Handler.(*http.ServeMux).Handler(httptest.NewRequest(http.MethodGet, "/deploys/x", nil)); pattern == "/deploys/" {
		t.Errorf("the SAL web server still serves /deploys/")
	}
}

// deploy.serve_logs: false leaves no link to give.
func TestLogsOff(t *testing.T) {
	doc := strings.Replace(webConfig, "  journal_dir: deploys\n", "  journal_dir: deploys\n  serve_logs: false\n", 1)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if u := bot.DeployLogURL(cfg.Deploy.LogsPublicURL, "abc"); u != "" {
		t.Errorf("log link %q with serve_logs false", u)
	}
	// And by default the links are under sal.public_url.
	cfg, err = config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(webConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bot.DeployLogURL(cfg.Deploy.LogsPublicURL, "abc"), "https://sal.example.org/deploys/abc"; got != want {
		t.Errorf("log link %q, want %q", got, want)
	}
}

// startWeb serves until shutdownWeb, which reports a clean stop.
func TestStartWeb(t *testing.T) {
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(webConfig))
	if err != nil {
		t.Fatal(err)
	}
	cancelled := false
	ws, err := startWeb(newLogsServer(journal.Handler(cfg.Deploy.JournalDir, "/deploys/"), slog.New(slog.DiscardHandler)), "127.0.0.1:0", "test", slog.New(slog.DiscardHandler), func() { cancelled = true })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + ws.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / = %d", resp.StatusCode)
	}
	if !shutdownWeb([]*webServer{ws}) {
		t.Error("shutdownWeb reported a server that had stopped by itself")
	}
	if cancelled {
		t.Error("cancel called on a clean shutdown")
	}
	if _, err := http.Get("http://" + ws.addr + "/"); err == nil {
		t.Error("still serving after shutdownWeb")
	}
}
