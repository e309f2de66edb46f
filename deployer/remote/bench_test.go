package remote

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// BenchmarkDeploy20 deploys a new commit to 20 hosts at once, as in
// TESTING.md's peer measurement: dial, fetch over dumb HTTP, fresh
// checkout, symlink switch, service restart, port poll, HTTP check of the
// served revision — plus finalize — and reports the wall time per deploy
// and the sessions per host.
func BenchmarkDeploy20(b *testing.B) { benchDeploy(b, 20) }

// BenchmarkDeploy50 is the same on 50 hosts.
func BenchmarkDeploy50(b *testing.B) { benchDeploy(b, 50) }

func benchDeploy(b *testing.B, n int) {
	if testing.Short() {
		b.Skip("-short: needs the e2e fleet")
	}
	f := fleet.StartT(b, fleet.Options{Hosts: n})
	g := newGitFixture(b, net.JoinHostPort(f.GatewayIP, "0"), 1)
	d, err := NewDialer(config.SSH{User: f.User, KeyFile: f.KeyFile, KnownHosts: f.KnownHostsFile})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, h := range f.Hosts {
		self, _ := os.Executable()
		data, _ := os.ReadFile(self)
		if err := os.WriteFile(filepath.Join(h.Root, "remote.test"), data, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	tg := Target{Service: "svc", Dir: "/srv/deployment/svc/deploy", ServeURL: g.ServeURL, Repo: g.Repo, Restart: serviceRestart, KeepRevs: 3}
	ctx := context.Background()
	var sessions, hosts int64
	var stageTotal = map[string]time.Duration{}
	var mu sync.Mutex
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		sha := g.commit(b, "bench"+strconv.Itoa(i))
		b.StartTimer()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, h := range f.Hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := d.Dial(ctx, target(h))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				stages, err := c.Deploy(ctx, tg, sha, false, scale.D(time.Minute))
				if err != nil {
					errs <- err
					return
				}
				if r := c.CheckPort(ctx, servicePort, scale.D(30*time.Second)); !r.OK {
					errs <- fmt.Errorf("%s: %s", h.Name, r.Err)
					return
				}
				chk := config.Check{Name: "info", HTTP: "http://127.0.0.1:18080/", ExpectBody: "^rev " + sha}
				if r := c.CheckHTTP(ctx, chk); !r.OK {
					// The old service may answer for a moment.
					if r = waitHTTP(c, chk); !r.OK {
						errs <- fmt.Errorf("%s: %s", h.Name, r.Err)
						return
					}
				}
				if _, err := c.Finalize(ctx, tg, sha); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sessions += c.Sessions()
				hosts++
				for _, s := range stages {
					stageTotal[s.Stage] += s.Duration
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(sessions)/float64(hosts), "sessions/host")
	for _, s := range []string{StageFetch, StageCheckout, StagePromote, StageRestart} {
		b.ReportMetric(float64(stageTotal[s].Milliseconds())/float64(hosts), "ms-"+s+"/host")
	}
}
