package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"deploybot/deployer"
	"deploybot/e2e/fleet"
	"deploybot/e2e/harness"
)

// psshScript is what parallel-ssh runs on every host: the same Scap3-style
// steps the engine runs, as plain shell, in a directory of its own
// (/srv/deployment/pssh) and with the service on its own port (18081), so
// both deploy the same hosts in the same run without meeting:
//
//  1. git fetch over dumb HTTP from the engine's server into cache/ (a bare
//     repository kept across deploys);
//  2. a fresh checkout of the revision into revs/<sha> (objects borrowed
//     from the cache, as the engine does), with the submodule from the
//     served module git dir;
//  3. the current symlink switched atomically (ln -sfn + mv -T);
//  4. the repository's restart.sh (the same one the engine runs);
//  5. the port poll and HTTP check in one: the service binary as client,
//     retried until /health answers 200 with the revision's VERSION
//     (hosts have no curl);
//  6. finalize: .done written, revisions beyond the newest 3 removed.
//
// The engine additionally journals every stage (fsync'd), re-reads
// known_hosts, updates its deploy repository from the upstream (go-git)
// and runs its port and HTTP checks through the SSH connection.
const psshScript = `set -e
C=/srv/deployment/pssh/deploy-cache
SHA=%[1]s
URL=%[2]s
mkdir -p $C/revs
[ -d $C/cache ] || git init -q --bare $C/cache
git -C $C/cache fetch -q --no-tags $URL '+HEAD:refs/remotes/deploy/HEAD' '+refs/*:refs/remotes/deploy/*'
T=$C/revs/.$SHA.tmp
rm -rf $T
git init -q --template= $T
echo $C/cache/objects >$T/.git/objects/info/alternates
git -C $T -c advice.detachedHead=false checkout -q --detach $SHA
git -C $T config submodule.lib.url $URL/modules/lib
git -C $T submodule update -q --init --recursive
rm -rf $C/revs/$SHA
mv -T $T $C/revs/$SHA
ln -sfn revs/$SHA $C/.current.tmp && mv -T $C/.current.tmp $C/current
cd $C/revs/$SHA
DEPLOY_REV=$SHA SVC_PORT=18081 SVC_BIN=%[3]s sh ./restart.sh >/dev/null
want="200 $(cat VERSION)"
i=0
until [ "$(%[3]s -get http://127.0.0.1:18081/health 2>/dev/null)" = "$want" ]; do
  i=$((i+1)); [ $i -lt 200 ] || { echo "no health"; exit 1; }
  sleep 0.05
done
echo $SHA >$C/.done
ls -1t $C/revs | tail -n +4 | while read -r r; do rm -rf "$C/revs/$r"; done
echo ok
`

// BenchmarkDeploy20VsPssh deploys a new revision to 20 hosts (one group,
// all at once) with the engine in process, then the same revision with
// parallel-ssh running psshScript on the same hosts, and reports the wall
// time and the CPU time of each deployer (the engine: this process's user+
// sys during its deploy; pssh: the parallel-ssh process and its ssh
// children, from wait4) and the ratios engine/pssh. The hosts' own CPU is
// not counted for either (they share this machine).
func BenchmarkDeploy20VsPssh(b *testing.B) {
	harness.RequireTools(b)
	pssh, err := exec.LookPath("parallel-ssh")
	if err != nil {
		if os.Getenv("CI") != "" {
			b.Fatal("parallel-ssh is missing (scripts/install-deps.sh installs pssh)")
		}
		b.Skip("parallel-ssh is missing (scripts/install-deps.sh installs pssh)")
	}
	d := newDeployEnv(b, 20, func(f *fleet.Fleet) string {
		var ips []string
		for _, h := range f.Hosts {
			ips = append(ips, fmt.Sprintf("%q", h.IP))
		}
		return fmt.Sprintf("    groups:\n      - {name: all, hosts: [%s]}\n", strings.Join(ips, ", "))
	})
	hostsFile := filepath.Join(d.Dir, "pssh-hosts")
	var hl []string
	for _, h := range d.Fleet.Hosts {
		hl = append(hl, h.IP)
	}
	if err := os.WriteFile(hostsFile, []byte(strings.Join(hl, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	eng, err := deployer.New(d.Cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	url := d.Cfg.Deploy.ServeURL + "/svc/deploy/.git"

	var engWall, psshWall, engCPU, psshCPU time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		label := fmt.Sprintf("b%d", n)
		sha := d.Commit(label, 200)
		b.StartTimer()

		cpu0 := selfCPU()
		t0 := time.Now()
		res, err := eng.Deploy(ctx, deployer.Request{Service: svcName, Who: "bench", Source: "bench"}, nil, nil)
		engWall += time.Since(t0)
		engCPU += selfCPU() - cpu0
		if err != nil || res.Outcome != deployer.OutcomeSuccess || res.OK != 20 {
			b.Fatalf("engine deploy: %v %+v", err, res)
		}

		script := fmt.Sprintf(psshScript, sha, url, d.SvcBin)
		cmd := exec.Command(pssh, "-h", hostsFile, "-l", d.Fleet.User, "-p", "20", "-t", "120",
			"-x", "-i "+d.Fleet.KeyFile+" -o UserKnownHostsFile="+d.Fleet.KnownHostsFile+" -o StrictHostKeyChecking=yes -o BatchMode=yes",
			"-I", "sh -s")
		cmd.Stdin = strings.NewReader(script)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 = time.Now()
		err = cmd.Run()
		psshWall += time.Since(t0)
		if st := cmd.ProcessState; st != nil {
			psshCPU += st.UserTime() + st.SystemTime()
		}
		if err != nil || strings.Count(out.String(), "[SUCCESS]") != 20 {
			b.Fatalf("pssh: %v\n%s", err, out.String())
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(engWall), "engine-wall-ms")
	b.ReportMetric(ms(psshWall), "pssh-wall-ms")
	b.ReportMetric(ms(engCPU), "engine-cpu-ms")
	b.ReportMetric(ms(psshCPU), "pssh-cpu-ms")
	b.ReportMetric(float64(engWall)/float64(psshWall), "wall-ratio")
	b.ReportMetric(float64(engCPU)/float64(psshCPU), "cpu-ratio")
}

// selfCPU is this process's user+sys time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
