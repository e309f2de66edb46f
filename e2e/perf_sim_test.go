package e2e

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/e2e/harness"
	"deploybot/e2e/scale"
)

// simPoint is one deploy to a simulated fleet of Hosts hosts.
type simPoint struct {
	Hosts          int
	Wall, Canary   time.Duration
	BotCPU, SimCPU time.Duration
	PeakRSS        int64 // the bot's process, bytes (its VmHWM)
	OK             int
}

// simEnv is a simulated fleet (cmd/simfleet, its own process) and the
// configuration of a service deployed to it by the engine in a bot
// process (simBot), a third one.
type simEnv struct {
	dir     string
	cmd     *exec.Cmd
	hosts   []string
	bot     *simBot
	commits int
}

// writeKey writes a new ed25519 key: the private key (OpenSSH PEM) to
// path, the public key (authorized_keys line) to path+".pub".
func writeKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return sp, os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644)
}

// startSim builds and starts cmd/simfleet with n hosts and configures the
// service for them: the first host is the canary, the others one group.
func startSim(b *testing.B, n int) *simEnv {
	b.Helper()
	dir := b.TempDir()
	e := &simEnv{dir: dir}
	bin := filepath.Join(dir, "simfleet")
	if out, err := exec.Command("go", "build", "-o", bin, "./simfleet/cmd/simfleet").CombinedOutput(); err != nil {
		b.Fatalf("building simfleet: %v\n%s", err, out)
	}
	hostPub, err := writeKey(filepath.Join(dir, "host_key"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := writeKey(filepath.Join(dir, "id")); err != nil {
		b.Fatal(err)
	}
	list := filepath.Join(dir, "hosts")
	e.cmd = exec.Command(bin, "-hosts", fmt.Sprint(n), "-host-key", filepath.Join(dir, "host_key"),
		"-client-key", filepath.Join(dir, "id.pub"), "-list", list)
	e.cmd.Stderr = os.Stderr
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.cmd.Process.Signal(os.Interrupt); _ = e.cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("simfleet: %q %v", line, err)
	}
	raw, err := os.ReadFile(list)
	if err != nil {
		b.Fatal(err)
	}
	e.hosts = strings.Fields(string(raw))
	var kh strings.Builder
	for _, h := range e.hosts {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(h)}, hostPub) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(kh.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	e.configure(b)
	return e
}

// configure writes the upstream repository and the configuration, and
// makes the engine.
func (e *simEnv) configure(b *testing.B) {
	up := filepath.Join(e.dir, "upstream")
	if err := os.MkdirAll(up, 0o755); err != nil {
		b.Fatal(err)
	}
	harness.Git(b, up, "-c", "init.defaultBranch=main", "init", "-q")
	e.commit(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve := ln.Addr().String()
	ln.Close()
	quoted := make([]string, len(e.hosts)-1)
	for i, h := range e.hosts[1:] {
		quoted[i] = fmt.Sprintf("%q", h)
	}
	conf := fmt.Sprintf(`irc: {server: "127.0.0.1:1", nick: deploybot, channels: ["#ops"]}
sal: {database: %[1]s/sal.db}
deploy:
  deploy_dir: %[1]s/deployment
  serve: %[2]s
  serve_url: http://%[2]s
  journal_dir: %[1]s/deploys
  ssh: {user: deploy, key_file: %[1]s/id, known_hosts: %[1]s/known_hosts, connect_timeout: %[3]s, command_timeout: %[4]s}
services:
  svc:
    repo: svc/deploy
    upstream: %[1]s/upstream
    target_dir: /srv/deployment/svc/deploy
    restart: ./restart.sh
    port: 8080
    keep_revs: 3
    canary: [%[5]q]
    groups:
      - {name: all, hosts: [%[6]s]}
    checks:
      - {name: health, http: "http://127.0.0.1:8080/health", expect_body: "^rev ", timeout: 10s}
`, e.dir, serve, scale.D(60*time.Second), scale.D(120*time.Second), e.hosts[0], strings.Join(quoted, ", "))
	path := filepath.Join(e.dir, "deploybot.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err = config.Load(path); err != nil {
		b.Fatal(err)
	}
	if e.bot, err = startSimBot(path, e.hosts[0], len(e.hosts)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.bot.stop)
}

// commit adds a new commit to the upstream.
func (e *simEnv) commit(b *testing.B) {
	e.commits++
	up := filepath.Join(e.dir, "upstream")
	if err := os.WriteFile(filepath.Join(up, "VERSION"), []byte(fmt.Sprintf("v%d\n", e.commits)), 0o644); err != nil {
		b.Fatal(err)
	}
	harness.Git(b, up, "add", "-A")
	harness.Git(b, up, "commit", "-q", "-m", fmt.Sprintf("release %d", e.commits))
}

// deploy deploys a new commit to every host and measures it.
func (e *simEnv) deploy(b *testing.B) simPoint {
	e.commit(b)
	botPID := e.bot.cmd.Process.Pid
	sim0, cpu0 := procCPU(e.cmd.Process.Pid), procCPU(botPID)
	res, err := e.bot.deploy()
	p := simPoint{Hosts: len(e.hosts), Wall: res.Wall, Canary: res.Canary, OK: res.OK,
		BotCPU: procCPU(botPID) - cpu0, SimCPU: procCPU(e.cmd.Process.Pid) - sim0, PeakRSS: vmHWM(botPID)}
	if err != nil || res.Err != "" || res.Outcome != string(deployer.OutcomeSuccess) {
		b.Fatalf("deploy to %d simulated hosts: %v %+v", len(e.hosts), err, res)
	}
	return p
}

// runSimSeries deploys, for each fleet size, a first revision (unmeasured:
// every host fetches the whole history) and then runs new commits, and
// returns the mean of the measured runs per size.
func runSimSeries(b *testing.B, sizes []int, runs int) []simPoint {
	var out []simPoint
	for _, n := range sizes {
		e := startSim(b, n)
		e.deploy(b)
		var sum simPoint
		for range runs {
			p := e.deploy(b)
			b.Logf("sim %d hosts: wall %v canary %v bot CPU %v (%.2f ms/host) fleet CPU %v rss %d MB", n, p.Wall, p.Canary,
				p.BotCPU, ms(p.BotCPU)/float64(n), p.SimCPU, p.PeakRSS>>20)
			sum.Wall += p.Wall
			sum.Canary += p.Canary
			sum.BotCPU += p.BotCPU
			sum.SimCPU += p.SimCPU
			sum.PeakRSS = max(sum.PeakRSS, p.PeakRSS)
			sum.OK = p.OK
		}
		d := time.Duration(runs)
		out = append(out, simPoint{Hosts: n, Wall: sum.Wall / d, Canary: sum.Canary / d, BotCPU: sum.BotCPU / d,
			SimCPU: sum.SimCPU / d, PeakRSS: sum.PeakRSS, OK: sum.OK})
		e.bot.stop()
		_ = e.cmd.Process.Signal(os.Interrupt)
		_ = e.cmd.Wait()
	}
	return out
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
