package e2e

import (
	"deploybot/e2e/harness"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkPerformanceReport measures what docs/PERFORMANCE.md reports
// (make bench): the scale series on simulated fleets (e2e/simfleet) and
// the comparison on real sshd hosts with parallel-ssh and Ansible. With
// DEPLOYBOT_BENCH_REPORT set to a path, it writes the report there and
// its plot beside it (performance.svg).
//
// DEPLOYBOT_BENCH_PARTS (sim,real), DEPLOYBOT_BENCH_SIZES (10,100,300,1000),
// DEPLOYBOT_BENCH_RUNS (measured deploys per size, 2) and
// DEPLOYBOT_BENCH_ROUNDS (interleaved rounds on real hosts, 3) choose
// what runs; DEPLOYBOT_BENCH_KINDS (deploybot,pssh,ansible,deploybot-10)
// picks the deployers of the real rounds, for a quick look at some of
// them (the report needs all four).
func BenchmarkPerformanceReport(b *testing.B) {
	harness.RequireTools(b)
	parts := envList("DEPLOYBOT_BENCH_PARTS", "sim,real")
	sizes := envInts(b, "DEPLOYBOT_BENCH_SIZES", "10,100,300,1000")
	runs := envInts(b, "DEPLOYBOT_BENCH_RUNS", "2")[0]
	rounds := envInts(b, "DEPLOYBOT_BENCH_ROUNDS", "3")[0]
	if os.Getenv("DEPLOYBOT_BENCH_REPORT") != "" && parts["real"] && len(benchKinds()) != 4 {
		b.Fatal("DEPLOYBOT_BENCH_REPORT needs every deployer of DEPLOYBOT_BENCH_KINDS")
	}
	rep := &perfReport{Sizes: sizes, Runs: runs, Rounds: rounds}
	for b.Loop() {
		rep.Machine = describeMachine()
		if parts["sim"] {
			rep.Sim = runSimSeries(b, sizes, runs)
		}
		if parts["real"] {
			rep.Real = runRealComparison(b, 50, 10, rounds)
		}
	}
	if len(rep.Sim) > 0 {
		last := rep.Sim[len(rep.Sim)-1]
		b.ReportMetric(ms(last.BotCPU)/float64(last.Hosts), "bot-cpu-ms/host")
		b.ReportMetric(float64(last.PeakRSS>>20), "peak-rss-MB")
	}
	if r := rep.Real; r != nil {
		b.ReportMetric(r.median(func(x realRound) float64 { return x.Engine.Wall.Seconds() / x.Pssh.Wall.Seconds() }), "wall-vs-pssh")
	}
	if path := os.Getenv("DEPLOYBOT_BENCH_REPORT"); path != "" {
		if err := rep.write(path); err != nil {
			b.Fatal(err)
		}
	}
}

func envList(name, def string) map[string]bool {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		out[strings.TrimSpace(s)] = true
	}
	return out
}

func envInts(b *testing.B, name, def string) []int {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a list of positive numbers", name, v)
		}
		out = append(out, n)
	}
	return out
}
