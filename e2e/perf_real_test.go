package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/e2e/fleet"
	"deploybot/e2e/scale"
)

// measure is one deploy by one deployer.
type measure struct {
	Wall, CPU, Canary time.Duration
}

// realRound is one round of the comparison: each deployer once, in an
// order that rotates from round to round.
type realRound struct {
	Order                           []string
	Engine, Engine10, Pssh, Ansible measure
}

// realResult is the comparison on real sshd hosts.
type realResult struct {
	Hosts, Small int
	Rounds       []realRound
	Ansible      bool // ansible-playbook was found
}

// median of f over the rounds.
func (r *realResult) median(f func(realRound) float64) float64 {
	var v []float64
	for _, x := range r.Rounds {
		v = append(v, f(x))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// runRealComparison deploys to n real hosts (the first the canary, the
// others one group) with the engine, parallel-ssh running psshScript and
// Ansible running testdata/ansible/deploy.yml, and to the first small
// hosts with the engine alone, in rounds whose order rotates; every
// engine deploy is of a commit new to the hosts, as is each of pssh's and
// Ansible's (each has its own directory on the hosts).
func runRealComparison(b *testing.B, n, small, rounds int) *realResult {
	deployer.TuneGC() // the engines run in this process: collected as cmd/deploybot's
	pssh, err := exec.LookPath("parallel-ssh")
	if err != nil {
		b.Fatal("parallel-ssh is missing (scripts/install-deps.sh installs pssh)")
	}
	ansible, _ := exec.LookPath("ansible-playbook")
	groupsOf := func(hosts []*fleet.Host) string {
		var ips []string
		for _, h := range hosts[1:] {
			ips = append(ips, fmt.Sprintf("%q", h.IP))
		}
		return fmt.Sprintf("    canary: [%q]\n    groups:\n      - {name: all, hosts: [%s]}\n", hosts[0].IP, strings.Join(ips, ", "))
	}
	d := newDeployEnv(b, n, func(f *fleet.Fleet) string { return groupsOf(f.Hosts) })
	eng, clock, err := newClockedEngine(d.Cfg, d.Fleet.Hosts[0].IP)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	smallConf := filepath.Join(d.Dir, "deploybot-small.yaml")
	d.WriteConfig(smallConf, d.Fleet.KnownHostsFile, groupsOf(d.Fleet.Hosts[:small]), d.Cfg.Deploy.Serve)
	cfgSmall, err := config.Load(smallConf)
	if err != nil {
		b.Fatal(err)
	}
	engSmall, clockSmall, err := newClockedEngine(cfgSmall, d.Fleet.Hosts[0].IP)
	if err != nil {
		b.Fatal(err)
	}
	defer engSmall.Close()
	files := writeFleetFiles(b, d)
	url := d.Cfg.Deploy.ServeURL + "/svc/deploy/.git"

	res := &realResult{Hosts: n, Small: small, Ansible: ansible != ""}
	label := 0
	engineRun := func(e *deployer.Engine, c *stageClock, hosts int) measure {
		label++
		d.Commit(fmt.Sprintf("r%d", label), 200)
		cpu0 := selfCPU()
		c.start()
		ctx, cancel := context.WithTimeout(context.Background(), scale.D(5*time.Minute))
		defer cancel()
		tl := newTimeline()
		r, err := e.Deploy(ctx, deployer.Request{Service: svcName, Who: "bench", Source: "bench"}, tl, nil)
		m := measure{Wall: time.Since(c.t0), CPU: selfCPU() - cpu0, Canary: c.canaryAt()}
		b.Logf("deploybot, %d hosts: %v", hosts, tl)
		if err != nil || r.Outcome != deployer.OutcomeSuccess || r.OK != hosts {
			b.Fatalf("engine deploy to %d hosts: %v %+v", hosts, err, r)
		}
		if m.Canary <= 0 {
			b.Fatalf("engine deploy to %d hosts: the canary's deploy session was not seen to open", hosts)
		}
		return m
	}
	// The first deploy of each fills the hosts' caches: not measured.
	engineRun(engSmall, clockSmall, small)
	engineRun(eng, clock, n)
	sha := d.Revs[fmt.Sprintf("r%d", label)]
	kinds := benchKinds()
	if slices.Contains(kinds, "pssh") {
		runPssh(b, pssh, files, d, sha, url)
	}
	if ansible != "" && slices.Contains(kinds, "ansible") {
		runAnsible(b, ansible, files, d, sha, url)
	}
	for i := range rounds {
		rr := realRound{}
		for k := range kinds {
			kind := kinds[(i+k)%len(kinds)]
			rr.Order = append(rr.Order, kind)
			switch kind {
			case "deploybot":
				rr.Engine = engineRun(eng, clock, n)
				sha = d.Revs[fmt.Sprintf("r%d", label)]
			case "deploybot-10":
				rr.Engine10 = engineRun(engSmall, clockSmall, small)
			case "pssh":
				rr.Pssh = runPssh(b, pssh, files, d, sha, url)
			case "ansible":
				if ansible != "" {
					rr.Ansible = runAnsible(b, ansible, files, d, sha, url)
				}
			}
		}
		b.Logf("round %d (%s): deploybot %v cpu %v canary %v; 10 hosts %v canary %v; pssh %v cpu %v; ansible %v cpu %v",
			i+1, strings.Join(rr.Order, ", "), rr.Engine.Wall, rr.Engine.CPU, rr.Engine.Canary, rr.Engine10.Wall, rr.Engine10.Canary,
			rr.Pssh.Wall, rr.Pssh.CPU, rr.Ansible.Wall, rr.Ansible.CPU)
		res.Rounds = append(res.Rounds, rr)
	}
	return res
}

// benchKinds are the deployers each round runs, in rollout order:
// DEPLOYBOT_BENCH_KINDS (default all four) picks some, for a quicker look
// at one of them; the report needs them all.
func benchKinds() []string {
	want := envList("DEPLOYBOT_BENCH_KINDS", "deploybot,pssh,ansible,deploybot-10")
	var kinds []string
	for _, k := range []string{"deploybot", "pssh", "ansible", "deploybot-10"} {
		if want[k] {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// fleetFiles are the host lists and inventory pssh and Ansible read.
type fleetFiles struct{ hosts, inventory string }

func writeFleetFiles(b *testing.B, d *deployEnv) fleetFiles {
	f := fleetFiles{hosts: filepath.Join(d.Dir, "pssh-hosts"), inventory: filepath.Join(d.Dir, "inventory")}
	var hl []string
	inv := []string{"[all]"}
	for _, h := range d.Fleet.Hosts {
		hl = append(hl, h.IP)
		inv = append(inv, h.IP)
	}
	inv = append(inv, "[all:vars]", "ansible_user="+d.Fleet.User, "ansible_ssh_private_key_file="+d.Fleet.KeyFile,
		"ansible_python_interpreter=/usr/bin/python3",
		"ansible_ssh_common_args='-o UserKnownHostsFile="+d.Fleet.KnownHostsFile+" -o StrictHostKeyChecking=yes -o BatchMode=yes'")
	for p, lines := range map[string][]string{f.hosts: hl, f.inventory: inv} {
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// runPssh deploys sha with parallel-ssh; its CPU is the parallel-ssh
// process's and its ssh children's (wait4).
func runPssh(b *testing.B, pssh string, f fleetFiles, d *deployEnv, sha, url string) measure {
	n := len(d.Fleet.Hosts)
	cmd := exec.Command(pssh, "-h", f.hosts, "-l", d.Fleet.User, "-p", fmt.Sprint(n), "-t", "120",
		"-x", "-i "+d.Fleet.KeyFile+" -o UserKnownHostsFile="+d.Fleet.KnownHostsFile+" -o StrictHostKeyChecking=yes -o BatchMode=yes",
		"-I", "sh -s")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(psshScript, sha, url, d.SvcBin))
	out, m := timed(b, cmd)
	if strings.Count(out, "[SUCCESS]") != n {
		b.Fatalf("pssh:\n%s", out)
	}
	return m
}

// runAnsible deploys sha with the playbook (pipelining on, one fork per
// host); its CPU is ansible-playbook's and its children's.
func runAnsible(b *testing.B, ansible string, f fleetFiles, d *deployEnv, sha, url string) measure {
	n := len(d.Fleet.Hosts)
	cmd := exec.Command(ansible, "-i", f.inventory, "-f", fmt.Sprint(n), "testdata/ansible/deploy.yml",
		"-e", "sha="+sha, "-e", "url="+url, "-e", "svc_bin="+d.SvcBin)
	cmd.Env = append(os.Environ(), "ANSIBLE_PIPELINING=1", "ANSIBLE_HOST_KEY_CHECKING=1", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(d.Dir, "ansible-tmp"), "ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(d.Dir, "ansible-cp"))
	out, m := timed(b, cmd)
	if !strings.Contains(out, fmt.Sprintf("failed=0")) || strings.Contains(out, "unreachable=1") || strings.Count(out, "failed=0") != n {
		b.Fatalf("ansible:\n%s", out)
	}
	return m
}

// timed runs cmd, returning its output, wall and CPU (its own and its
// waited-for children's).
func timed(b *testing.B, cmd *exec.Cmd) (string, measure) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	m := measure{Wall: time.Since(t0)}
	if st := cmd.ProcessState; st != nil {
		m.CPU = st.UserTime() + st.SystemTime()
	}
	if err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out.String())
	}
	return out.String(), m
}
