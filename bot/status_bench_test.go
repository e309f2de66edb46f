package bot

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
	"deploybot/sal"
)

// statusServices is how many services the status benchmarks configure.
const statusServices = 20

// BenchmarkStatusAll measures what `!status` with no argument costs the
// bot (every service's line, computed as the reply is made) with 20
// services of 100, 1,000 and 10,000 past deploys each. Each
// sub-benchmark reports its p99 per command; the growth from 100 to
// 10,000 deploys is the figure that matters (the index makes it flat).
//
//	go test -run '^$' -bench StatusAll -benchtime 200x ./bot/
func BenchmarkStatusAll(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("deploys=%d", n), func(b *testing.B) {
			bot := statusBenchBot(b, n)
			now := time.Now()
			names := bot.cfg.ServiceNames()
			for _, name := range names { // the first read builds the indexes
				bot.statusLine(name, now)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				for _, name := range names {
					if l := bot.statusLine(name, now); !strings.Contains(l, "live ") {
						b.Fatalf("status %q", l)
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

// statusBenchBot is a bot with an engine on statusServices services, each
// with n finished deploys in its journal directory.
func statusBenchBot(b *testing.B, n int) *Bot {
	b.Helper()
	dir := b.TempDir()
	var conf strings.Builder
	fmt.Fprintf(&conf, `irc: {server: "127.0.0.1:6667", nick: deploybot, channels: ["#ops"]}
sal: {database: sal.db}
deploy:
  journal_dir: deploys
  ssh: {user: deploy, key_file: ssh/id, known_hosts: ssh/known_hosts}
services:
`)
	for i := range statusServices {
		fmt.Fprintf(&conf, "  svc%02d: {repo: svc%02d/deploy, upstream: https://example.org/x.git, target_dir: /srv/deployment/svc%02d, canary: [c1], groups: [{name: eqiad, hosts: [h1, h2, h3]}]}\n", i, i, i)
	}
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(conf.String()))
	if err != nil {
		b.Fatal(err)
	}
	store, err := sal.OpenSQLite(filepath.Join(dir, "sal.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	bot, err := New(cfg, store, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range cfg.ServiceNames() {
		writeHistory(b, cfg.Deploy.JournalDir, name, n)
	}
	eng := deployer.NewWithDialer(cfg, nil, noHosts)
	b.Cleanup(func() { eng.Close() })
	bot.SetDeployer(eng)
	return bot
}

// writeHistory writes n finished deploys of service as their journals
// would be (without fsync: this is set-up, not what is measured).
func writeHistory(b *testing.B, dir, service string, n int) {
	b.Helper()
	sdir := filepath.Join(dir, service)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-time.Duration(n+1) * time.Minute).UTC()
	hosts := map[string][]string{"canary": {"c1"}, "eqiad": {"h1", "h2", "h3"}}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Minute)
		id, err := journal.NewID(service, at)
		if err != nil {
			b.Fatal(err)
		}
		rev := fmt.Sprintf("%040x", i%7+1)
		meta := journal.Meta{Version: journal.Version, ID: id, Service: service, Who: "alice", Rev: rev, Started: at,
			Hosts: hosts, GroupOrder: []string{"canary", "eqiad"}}
		var buf []byte
		for _, ev := range []journal.Event{
			{Time: at, Type: journal.TypeStarted, Level: journal.LevelInfo, Meta: &meta},
			{Time: at, Type: journal.TypeHostDone, Level: journal.LevelInfo, Group: "canary", Host: "c1", Rev: rev},
			{Time: at, Type: journal.TypeHostDone, Level: journal.LevelInfo, Group: "eqiad", Host: "h1", Rev: rev},
			{Time: at, Type: journal.TypeHostDone, Level: journal.LevelInfo, Group: "eqiad", Host: "h2", Rev: rev},
			{Time: at, Type: journal.TypeHostDone, Level: journal.LevelInfo, Group: "eqiad", Host: "h3", Rev: rev},
			{Time: at.Add(30 * time.Second), Type: journal.TypeFinished, Level: journal.LevelInfo, Outcome: journal.OutcomeSuccess, Who: "alice"},
		} {
			line, err := json.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			buf = append(append(buf, line...), '\n')
		}
		if err := os.WriteFile(filepath.Join(sdir, id+".jsonl"), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
