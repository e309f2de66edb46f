package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"deploybot/config"
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
	srv := newWebServer(cfg, store, true, slog.New(slog.DiscardHandler))
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
