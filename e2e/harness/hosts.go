package harness

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"deploybot/e2e/scale"
)

// Health returns what /health answers on host i: "200 v1".
func (d *Env) Health(i int) string {
	out, err := d.Fleet.Hosts[i].Exec(d.SvcBin + " -get http://127.0.0.1:18080/health")
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// Current returns the revision host i's current symlink points at.
func (d *Env) Current(i int) string {
	l, err := os.Readlink(filepath.Join(d.Fleet.Hosts[i].Root, "svc", "deploy-cache", "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// WantFleet checks that every host (or those of hosts) runs label and
// answers it on /health.
func (d *Env) WantFleet(label string, hosts ...int) {
	d.T.Helper()
	if hosts == nil {
		for i := range d.Fleet.Hosts {
			hosts = append(hosts, i)
		}
	}
	sha := d.Revs[label]
	for _, i := range hosts {
		if got := d.Current(i); got != sha {
			d.T.Errorf("%s: current %.7s, want %s (%.7s)", d.Fleet.Hosts[i].Name, got, label, sha)
		}
		// The service may take a moment to answer after a restart.
		var got string
		for deadline := time.Now().Add(scale.D(5 * time.Second)); ; time.Sleep(50 * time.Millisecond) {
			if got = d.Health(i); got == "200 "+label || time.Now().After(deadline) {
				break
			}
		}
		if got != "200 "+label {
			d.T.Errorf("%s: /health answers %q, want %q", d.Fleet.Hosts[i].Name, got, "200 "+label)
		}
	}
}

// HostFile writes content (and a newline) to the file name in host i's
// /srv/deployment; "" removes it.
func (d *Env) HostFile(i int, name, content string) {
	d.T.Helper()
	p := filepath.Join(d.Fleet.Hosts[i].Root, name)
	if content == "" {
		os.Remove(p)
		return
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		d.T.Fatal(err)
	}
}
