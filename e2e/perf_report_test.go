package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// perfReport is what docs/PERFORMANCE.md says.
type perfReport struct {
	Machine      string
	Sizes        []int
	Runs, Rounds int
	Sim          []simPoint
	Real         *realResult
}

// describeMachine names the cores, memory and load this run had.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb)
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%d cores (%s), %s memory, load average at the start %s; %s/%s, %s",
		runtime.NumCPU(), model, mem, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "),
		runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// linearFit is the least-squares line y = a + b·x and its R².
func linearFit(x, y []float64) (a, b, r2 float64) {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx, sy, sxx, sxy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a = (sy - b*sx) / n
	var ssr, sst float64
	for i := range x {
		ssr += math.Pow(y[i]-(a+b*x[i]), 2)
		sst += math.Pow(y[i]-sy/n, 2)
	}
	r2 = 1
	if sst > 0 {
		r2 = 1 - ssr/sst
	}
	return a, b, r2
}

const benchCmd = "CGO_ENABLED=0 go test -run '^$' -bench BenchmarkPerformanceReport -benchtime 1x -timeout 20m ./e2e/"

// write writes the report to path and its plot to performance.svg beside it.
func (r *perfReport) write(path string) error {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format+"\n", a...) }
	p("# Performance")
	p("")
	p("Written by `make bench` (%s, with DEPLOYBOT_BENCH_REPORT set); do not edit by hand. Generated %s.",
		"`"+benchCmd+"`", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("")
	p("Machine: %s. The machine may be shared: absolute times are noisy, ratios of runs interleaved in the same benchmark are what to compare.", r.Machine)
	p("")
	r.writeReal(p)
	r.writeSim(p)
	if err := os.WriteFile(path, []byte(w.String()), 0o644); err != nil {
		return err
	}
	if len(r.Sim) == 0 {
		return nil
	}
	return os.WriteFile(filepath.Join(filepath.Dir(path), "performance.svg"), []byte(r.svg()), 0o644)
}

func (r *perfReport) writeReal(p func(string, ...any)) {
	rr := r.Real
	if rr == nil {
		p("## Real hosts\n\nNot measured in this run (DEPLOYBOT_BENCH_PARTS).\n")
		return
	}
	p("## %d real hosts: deploybot, parallel-ssh, Ansible", rr.Hosts)
	p("")
	p("sshd hosts in network namespaces (e2e/fleet) on this machine; every run deploys a commit new to the hosts: fetch, checkout with a submodule, symlink switch, restart, port and HTTP check, finalize. deploybot: the engine in the benchmark's process, its garbage collector tuned as the bot's (deployer.TuneGC), canary then one group of %d, each host finalized in its deploy's own session; parallel-ssh: `psshScript` of e2e/deploy_bench_test.go; Ansible: e2e/testdata/ansible/deploy.yml, pipelining on, one fork per host. The submodule's commit is the same in every run: deploybot checks it out from each host's cache, where it was fetched once; the pssh script and the playbook run git submodule update, which clones it at every deploy. CPU is the deployer's own (deploybot: the process's user+sys during the deploy; pssh and Ansible: the process and its ssh children, from wait4), never the hosts'. %d interleaved rounds, the order rotating each round; medians of the per-round ratios.", rr.Hosts-1, len(rr.Rounds))
	p("")
	p("Reproduce: `DEPLOYBOT_BENCH_PARTS=real DEPLOYBOT_BENCH_ROUNDS=%d %s`", r.Rounds, benchCmd)
	p("")
	p("| round | order | deploybot wall | CPU | ms/host | pssh wall | CPU | Ansible wall | CPU | deploybot/pssh | Ansible/deploybot |")
	p("|---|---|---|---|---|---|---|---|---|---|---|")
	for i, x := range rr.Rounds {
		ans := "n/a"
		if x.Ansible.Wall > 0 {
			ans = fmt.Sprintf("%.1f×", x.Ansible.Wall.Seconds()/x.Engine.Wall.Seconds())
		}
		p("| %d | %s | %.2f s | %.0f ms | %.1f | %.2f s | %.0f ms | %.2f s | %.0f ms | %.2f | %s |", i+1, strings.Join(x.Order, ", "),
			x.Engine.Wall.Seconds(), ms(x.Engine.CPU), ms(x.Engine.CPU)/float64(rr.Hosts), x.Pssh.Wall.Seconds(), ms(x.Pssh.CPU),
			x.Ansible.Wall.Seconds(), ms(x.Ansible.CPU), x.Engine.Wall.Seconds()/x.Pssh.Wall.Seconds(), ans)
	}
	p("")
	med := rr.median
	p("- wall, deploybot / parallel-ssh: **%.2f×** (median); CPU: %.2f×", med(func(x realRound) float64 { return x.Engine.Wall.Seconds() / x.Pssh.Wall.Seconds() }),
		med(func(x realRound) float64 { return float64(x.Engine.CPU) / float64(x.Pssh.CPU) }))
	if rr.Ansible {
		p("- wall, Ansible / deploybot: **%.1f×** (median); CPU: %.1f×", med(func(x realRound) float64 { return x.Ansible.Wall.Seconds() / x.Engine.Wall.Seconds() }),
			med(func(x realRound) float64 { return float64(x.Ansible.CPU) / float64(x.Engine.CPU) }))
	} else {
		p("- Ansible: ansible-playbook not installed (scripts/install-deps.sh installs it)")
	}
	p("- deploybot client CPU: **%.1f ms per host** (median)", med(func(x realRound) float64 { return ms(x.Engine.CPU) / float64(rr.Hosts) }))
	c50 := med(func(x realRound) float64 { return x.Engine.Canary.Seconds() })
	c10 := med(func(x realRound) float64 { return x.Engine10.Canary.Seconds() })
	p("- command → canary's first stage (the canary's deploy session opened): **%.3f s** at %d hosts, %.3f s at %d hosts (%+.0f%%)", c50, rr.Hosts, c10, rr.Small, (c50/c10-1)*100)
	p("")
}

func (r *perfReport) writeSim(p func(string, ...any)) {
	if len(r.Sim) == 0 {
		p("## Simulated fleets\n\nNot measured in this run (DEPLOYBOT_BENCH_PARTS).")
		return
	}
	p("## Simulated fleets")
	p("")
	p("e2e/simfleet (cmd/simfleet, a process of its own): one SSH endpoint per host on a loopback port, answering the stage protocol as a target would, each fetching the new commit from the deploy host's git server over dumb HTTP. The engine, in a bot process of its own (the test binary started again, one per size: simBotMain in e2e/perf_simbot_test.go; its garbage collector tuned as the bot's, deployer.TuneGC), deploys a new commit: canary, then one group of every other host, port and HTTP checks, finalize. Mean of %d deploys per size after an unmeasured first one. Bot CPU is the bot process's user+sys during the deploy; the fleet's CPU is the simfleet process's, apart. Peak RSS is the bot process's VmHWM: its peak over its life (the first deploy and the measured ones).", r.Runs)
	p("")
	p("Reproduce: `DEPLOYBOT_BENCH_PARTS=sim DEPLOYBOT_BENCH_SIZES=%s %s`", joinInts(r.Sizes), benchCmd)
	p("")
	p("| hosts | wall | canary first stage | bot CPU | bot CPU per host | fleet CPU | peak RSS |")
	p("|---|---|---|---|---|---|---|")
	for _, s := range r.Sim {
		p("| %d | %.2f s | %.3f s | %.0f ms | %.2f ms | %.0f ms | %d MB |", s.Hosts, s.Wall.Seconds(), s.Canary.Seconds(), ms(s.BotCPU),
			ms(s.BotCPU)/float64(s.Hosts), ms(s.SimCPU), s.PeakRSS>>20)
	}
	p("")
	var x, wall, cpu []float64
	for _, s := range r.Sim {
		if s.Hosts >= 100 {
			x = append(x, float64(s.Hosts))
			wall = append(wall, s.Wall.Seconds())
			cpu = append(cpu, ms(s.BotCPU))
		}
	}
	if len(x) >= 2 {
		a, b, r2 := linearFit(x, wall)
		p("Linear fit from 100 hosts up (least squares over %d sizes): wall = %.2f s + %.2f ms × hosts (R² = %.3f); bot CPU = %.0f ms + %.2f ms × hosts (R² = %.3f).",
			len(x), a, b*1000, r2, fitA(x, cpu), fitB(x, cpu), fitR2(x, cpu))
		p("")
	}
	p("![wall and bot CPU per host against fleet size](performance.svg)")
}

func fitA(x, y []float64) float64  { a, _, _ := linearFit(x, y); return a }
func fitB(x, y []float64) float64  { _, b, _ := linearFit(x, y); return b }
func fitR2(x, y []float64) float64 { _, _, r := linearFit(x, y); return r }

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
