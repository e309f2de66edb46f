package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"deploybot/e2e/scale"
)

// Faults a test sets up inside one host: environment variables for every
// SSH session (a skewed clock through libfaketime, say), and root commands
// in the mount namespace the host's SSH sessions see (a tiny tmpfs over a
// deploy directory, say).

// SetSessionEnv restarts the host's sshd with SetEnv lines giving every
// new SSH session the variables env ("NAME=value" each; none: no SetEnv).
// Sessions already open keep their environment; commands run by Exec do
// not get it (they do not go through sshd).
func (h *Host) SetSessionEnv(env ...string) error {
	conf := h.sshdConfig()
	// One SetEnv line: sshd takes the first of several.
	var set []string
	for _, kv := range env {
		if strings.ContainsAny(kv, "\"\n") || !strings.Contains(kv, "=") {
			return fmt.Errorf("fleet: %s: bad environment entry %q", h.Name, kv)
		}
		set = append(set, `"`+kv+`"`)
	}
	if len(set) > 0 {
		conf += "SetEnv " + strings.Join(set, " ") + "\n"
	}
	if err := os.WriteFile(h.config, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := h.StopSSHD(); err != nil {
		return err
	}
	return h.StartSSHD()
}

// RootInSessions runs command with /bin/sh -c as root in the mount
// namespace of the host's running sshd, the one its SSH sessions (and so
// deploys) see: a mount made there shows in every later session and
// nowhere else, and lasts until that sshd stops. It returns the combined
// output; a non-zero exit is an error.
func (h *Host) RootInSessions(ctx context.Context, command string) (string, error) {
	pid := h.PID()
	if pid == 0 {
		return "", fmt.Errorf("fleet: %s: sshd is not running", h.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, scale.D(30*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-m", "--", "/bin/sh", "-c", command)
	cmd.Env = []string{"PATH=" + stdPath, "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("fleet: %s: %q: %w: %s", h.Name, command, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
