package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/e2e/scale"
)

// The simulated-fleet benchmark runs the engine in a process of its own,
// this test binary started again with simBotEnv set to the configuration
// (simBotMain), so that the bot's CPU and peak RSS are its alone: not the
// benchmark's, nor those of the fleet sizes measured before.
//
// With DEPLOYBOT_BENCH_BOT_PROFILE set to a directory, each bot process
// writes its CPU profile there (bot-<hosts>.prof), and its heap profile
// and goroutines when the heap was largest (bot-<hosts>.heap,
// bot-<hosts>.heap.goroutines) and at its end (bot-<hosts>.heap.end, with
// every allocation made), for go tool pprof.
const (
	simBotEnv       = "DEPLOYBOT_SIMBOT_CONFIG"
	simBotCanaryEnv = "DEPLOYBOT_SIMBOT_CANARY"
	simBotHostsEnv  = "DEPLOYBOT_SIMBOT_HOSTS"
	botProfileEnv   = "DEPLOYBOT_BENCH_BOT_PROFILE"
)

// simBotReply is what the bot process answers to "deploy".
type simBotReply struct {
	Wall, Canary time.Duration
	OK           int
	Outcome      string
	Err          string
}

// simBotMain is the bot process: it makes the engine of the configuration,
// says "ready", then deploys the service "svc" for every "deploy" line
// read from stdin, answering each with a simBotReply as one JSON line,
// until stdin ends.
func simBotMain() int {
	deployer.TuneGC() // as cmd/deploybot does
	cfg, err := config.Load(os.Getenv(simBotEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "simbot:", err)
		return 1
	}
	eng, clock, err := newClockedEngine(cfg, os.Getenv(simBotCanaryEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "simbot:", err)
		return 1
	}
	defer eng.Close()
	if dir := os.Getenv(botProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, "bot-"+os.Getenv(simBotHostsEnv)+".prof"))
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "simbot: profile:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
		stop := watchHeap(filepath.Join(dir, "bot-"+os.Getenv(simBotHostsEnv)+".heap"))
		defer stop()
	}
	out := json.NewEncoder(os.Stdout)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "deploy" {
			continue
		}
		clock.start()
		ctx, cancel := context.WithTimeout(context.Background(), scale.D(10*time.Minute))
		res, err := eng.Deploy(ctx, deployer.Request{Service: "svc", Who: "bench", Source: "bench"}, nil, nil)
		cancel()
		r := simBotReply{Wall: time.Since(clock.t0), Canary: clock.canaryAt()}
		if res != nil {
			r.OK, r.Outcome = res.OK, string(res.Outcome)
		}
		if err != nil {
			r.Err = err.Error()
		}
		if err := out.Encode(r); err != nil {
			return 1
		}
	}
	return 0
}

// simBot is the bot process seen from the benchmark.
type simBot struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startSimBot starts the bot process on the configuration at path.
func startSimBot(path, canary string, hosts int) (*simBot, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simBotEnv+"="+path, simBotCanaryEnv+"="+canary, simBotHostsEnv+"="+strconv.Itoa(hosts))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &simBot{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if line, err := s.out.ReadString('\n'); err != nil || line != "ready\n" {
		s.stop()
		return nil, fmt.Errorf("bot process: %q %v", line, err)
	}
	return s, nil
}

// deploy has the bot process deploy once and returns its answer.
func (s *simBot) deploy() (simBotReply, error) {
	var r simBotReply
	if _, err := io.WriteString(s.in, "deploy\n"); err != nil {
		return r, err
	}
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("bot process: %w", err)
	}
	return r, json.Unmarshal(line, &r)
}

// stop ends the bot process (its stdin closes) and waits for it.
func (s *simBot) stop() {
	s.in.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(scale.D(30 * time.Second)):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// vmHWM is the peak resident set of process pid so far (VmHWM), in
// bytes; 0 if unknown.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchHeap writes a heap profile to path each time the heap in use
// grows by a tenth past its largest so far, until stop, which writes a
// last one to path+".end".
func watchHeap(path string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var peak uint64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak+peak/10 {
				continue
			}
			peak = ms.HeapInuse
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				if g, err := os.Create(path + ".goroutines"); err == nil {
					_ = pprof.Lookup("goroutine").WriteTo(g, 1)
					g.Close()
				}
				f.Close()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if f, err := os.Create(path + ".end"); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}
