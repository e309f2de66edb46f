package scap

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"deploybot/config"
)

// Scap3's defaults, where deploybot's differ or where Apply needs them.
const (
	// DefaultDeployDir is git_deploy_dir's default.
	DefaultDeployDir = "/srv/deployment"
	// MaxBatchSize is how many targets Scap3 runs a stage on at once,
	// at most (batch_size's default too).
	MaxBatchSize = 80
	// DefaultServiceTimeout is service_timeout's default: how long the
	// port may take to open after the restart.
	DefaultServiceTimeout = 120 * time.Second
	// DefaultCacheRevs is cache_revs's default: revisions kept on each
	// target.
	DefaultCacheRevs = 5
	// DefaultFailureLimit is failure_limit's default in current Scap3
	// (older releases documented 1).
	DefaultFailureLimit = "0%"
)

// Scap3's deploy stages, as checks and <stage>_batch_size name them.
// restart_service is handle_service's older name, still accepted.
const (
	stageFetch          = "fetch"
	stageConfigDeploy   = "config_deploy"
	stagePromote        = "promote"
	stageHandleService  = "handle_service"
	stageRestartService = "restart_service"
	stageRollback       = "rollback"
	stageConfigDiff     = "config_diff"
	stageFinalize       = "finalize"
)

var allStages = map[string]bool{
	stageFetch: true, stageConfigDeploy: true, stagePromote: true, stageHandleService: true,
	stageRestartService: true, stageRollback: true, stageConfigDiff: true, stageFinalize: true,
}

// nameRE is deploybot's rule for service, group and check names (see
// package config).
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// targetDirRE is deploybot's rule for target_dir (see package config).
var targetDirRE = regexp.MustCompile(`^/[A-Za-z0-9_.+@/-]*$`)

// mappedKeys are the [global] keys Apply carries over (or Load used).
var mappedKeys = map[string]bool{
	"git_repo": true, "git_deploy_dir": true, "git_submodules": true,
	"server_groups": true, "dsh_targets": true, "group_size": true, "failure_limit": true, "batch_size": true,
	"service_name": true, "service_port": true, "service_timeout": true, "cache_revs": true,
	"perform_checks": true, "config_deploy": true, "environment": true,
}

// unsupportedKeys are Scap3 keys deploybot has no equivalent for, with
// why; a key listed with a nil test is reported whenever it is set,
// otherwise only when test says its value asks for something.
var unsupportedKeys = map[string]struct {
	why  string
	test func(v string) bool
}{
	"ssh_user":                   {"deploybot logs in to every target as deploy.ssh.user (one user for all services): set that to %q", nil},
	"git_repo_user":              {"the deploy repository on the deploy host belongs to the user deploybot runs as", nil},
	"git_server":                 {"targets fetch from deploy.serve_url, deploybot's own read-only git server", nil},
	"git_scheme":                 {"targets fetch from deploy.serve_url, deploybot's own read-only git server", nil},
	"git_rev":                    {"deploybot deploys the upstream head, or the revision asked for (deploy <service> <sha1>)", nil},
	"keyholder_key":              {"deploybot authenticates with deploy.ssh.key_file or its ssh-agent for every target", nil},
	"nrpe_dir":                   {"deploybot does not run NRPE checks", nil},
	"tags_to_keep":               {"deploybot does not tag the deploy repository; its journal records every deploy", nil},
	"lock_file":                  {"deploybot locks deploys itself, one at a time per service", nil},
	"git_upstream_submodules":    {"targets fetch submodules from the deploy host (deploy.serve_url), never from the URLs in .gitmodules", isTrue},
	"git_fat":                    {"deploybot does not fetch git-fat objects on targets", isTrue},
	"git_binary_manager":         {"deploybot does not run git-fat or git-lfs on targets", isSet},
	"require_valid_service":      {"deploybot restarts the service even when it does not exist or is masked", isTrue},
	"secondary_host_signal_file": {"deploybot restarts the service on every host alike", nil},
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

func isSet(v string) bool { return strings.TrimSpace(v) != "" }

// DefaultName derives a deploybot service name from git_repo: its first
// path element, lowercased ("citoid/deploy" → "citoid"). It is "" when
// git_repo is not set or gives no valid name.
func (s *Settings) DefaultName() string {
	v, ok := s.key("git_repo")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(strings.Trim(v.Value, "/"), "/")
	name := strings.ToLower(first)
	if !nameRE.MatchString(name) {
		return ""
	}
	return name
}

// mapper carries one Apply.
type mapper struct {
	s    *Settings
	svc  config.Service
	errs Errors
	out  []Unsupported
}

func (m *mapper) unsupported(key string, v Value, format string, args ...any) {
	m.out = append(m.out, Unsupported{Key: key, File: v.File, Line: v.Line, Why: fmt.Sprintf(format, args...)})
}

func (m *mapper) fail(e *Error) {
	if e != nil {
		m.errs = append(m.errs, e)
	}
}

// Apply maps the settings onto svc, a deploybot service whose name,
// upstream, branch, prompt timeout and deployers stay as they are. It
// sets:
//
//   - repo (when empty) from git_repo, and target_dir from
//     git_deploy_dir/git_repo (Scap3's layout on targets is deploybot's);
//   - submodules from git_submodules;
//   - restart from service_name, the commands Scap3 runs: "sudo -n
//     /usr/sbin/service NAME restart" (reload for NAME=reload), joined
//     with && for several services;
//   - port and port_timeout from service_port and service_timeout (the
//     port is checked only when a service is restarted, as in Scap3);
//   - keep_revs from cache_revs;
//   - checks from the command and script checks of checks.yaml that run
//     after promote or after the restart (see the package documentation);
//   - canary from the "canary" server group, and groups from the others
//     in server_groups order: a group_size splits a group into groups of
//     that many hosts, named <group>1, <group>2…; parallel is the batch
//     size (at most 80), failure_limit the group's failure limit; every
//     group after the first (or after the canary) pauses, since Scap3
//     asks before each group.
//
// Every value it sets is explicit (no zero left for config's defaults),
// so the result needs no further defaulting. The returned list names
// every setting Load or Apply could not carry over, by file and line.
// On error (Errors) svc is left unchanged.
func (s *Settings) Apply(svc *config.Service) ([]Unsupported, error) {
	m := &mapper{s: s, svc: *svc}
	m.out = append(m.out, s.found...)
	m.keys()
	m.repo()
	m.restart()
	m.keepRevs()
	m.checks()
	m.configFiles()
	m.hosts()
	sort.SliceStable(m.out, func(i, j int) bool {
		a, b := m.out[i], m.out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	if err := errOf(m.errs); err != nil {
		return m.out, err
	}
	*svc = m.svc
	return m.out, nil
}

// keys reports every [global] key Apply does not carry over.
func (m *mapper) keys() {
	groups := map[string]bool{}
	for _, g := range m.s.serverGroups() {
		groups[g] = true
	}
	for _, name := range m.s.keyOrder {
		v := m.s.Keys[name]
		if mappedKeys[name] {
			continue
		}
		if u, ok := unsupportedKeys[name]; ok {
			if u.test == nil || u.test(v.Value) {
				why := u.why
				if strings.Contains(why, "%q") {
					why = fmt.Sprintf(why, v.Value)
				}
				m.unsupported(name, v, "%s", why)
			}
			continue
		}
		if stage, ok := strings.CutSuffix(name, "_batch_size"); ok && allStages[stage] {
			continue // batch() reports it
		}
		if g, suffix, ok := groupSuffix(name); ok {
			if !groups[g] || suffix == "_dsh_targets" && g == "default" {
				m.unsupported(name, v, "%s is not a group of server_groups (%s): Scap3 ignores this key, and so does deploybot",
					g, strings.Join(m.s.serverGroups(), ", "))
			}
			continue
		}
		m.unsupported(name, v, "not a Scap3 service deploy setting deploybot knows: it is not imported")
	}
}

// groupSuffix splits a per-group key: "canary_dsh_targets" is
// ("canary", "_dsh_targets").
func groupSuffix(name string) (group, suffix string, ok bool) {
	for _, suf := range []string{"_dsh_targets", "_group_size", "_failure_limit"} {
		if g, ok := strings.CutSuffix(name, suf); ok && g != "" {
			return g, suf, true
		}
	}
	return "", "", false
}

// repo sets repo, target_dir and submodules.
func (m *mapper) repo() {
	v, ok := m.s.key("git_repo")
	if !ok || v.Value == "" {
		m.fail(&Error{File: path.Join(scapDir, cfgName), Key: "git_repo", Msg: "missing: Scap3 needs git_repo, the deploy repository's path under git_deploy_dir (such as citoid/deploy)"})
		return
	}
	repo := v.Value
	if strings.HasPrefix(repo, "/") || path.Clean(repo) != repo || repo == "." || repo == ".." || strings.HasPrefix(repo, "../") {
		m.fail(m.s.keyError("git_repo", "invalid repository path %q: want a clean relative path such as citoid/deploy", repo))
		return
	}
	dir := DefaultDeployDir
	if d, ok := m.s.key("git_deploy_dir"); ok {
		dir = d.Value
		if !path.IsAbs(dir) {
			m.fail(m.s.keyError("git_deploy_dir", "invalid directory %q: want an absolute path such as /srv/deployment", dir))
			return
		}
	}
	target := path.Join(dir, repo)
	if !targetDirRE.MatchString(target) || target == "/" {
		m.fail(m.s.keyError("git_repo", "the target directory %s has characters deploybot does not allow (letters, digits, '.', '_', '+', '@', '-' and '/')", target))
		return
	}
	if m.svc.Repo == "" {
		m.svc.Repo = repo
	}
	m.svc.TargetDir = target
	sub, e := m.s.boolKey("git_submodules", false)
	m.fail(e)
	m.svc.Submodules = sub
}

// restart sets restart, port and port_timeout.
func (m *mapper) restart() {
	m.svc.Restart, m.svc.Port = "", 0
	m.svc.PortTimeout = config.Duration(DefaultServiceTimeout)
	v, ok := m.s.key("service_name")
	port, hasPort := m.s.key("service_port")
	if !ok || v.Value == "" {
		if hasPort {
			m.unsupported("service_port", port, "set without service_name: Scap3 checks the port only after restarting a service, so it is not imported")
		}
		return
	}
	var cmds []string
	for _, item := range strings.Split(strings.ReplaceAll(v.Value, " ", ""), ",") {
		name, action, _ := strings.Cut(item, "=")
		if action == "" {
			action = "restart"
		}
		switch {
		case name == "":
			m.fail(m.s.keyError("service_name", "an empty service name in %q: want names separated by commas, such as \"citoid\" or \"citoid, nginx=reload\"", v.Value))
			return
		case action != "restart" && action != "reload":
			m.fail(m.s.keyError("service_name", "unknown action %q for service %s: want restart (the default) or reload", action, name))
			return
		}
		cmds = append(cmds, shellJoin([]string{"sudo", "-n", "/usr/sbin/service", name, action}))
	}
	m.svc.Restart = strings.Join(cmds, " && ")
	if !hasPort {
		return
	}
	n, err := strconv.Atoi(port.Value)
	if err != nil || n < 1 || n > 65535 {
		m.fail(m.s.keyError("service_port", "invalid port %q: want 1–65535", port.Value))
		return
	}
	m.svc.Port = n
	if sec, ok, e := m.s.secondsKey("service_timeout"); e != nil {
		m.fail(e)
	} else if ok {
		if !(sec > 0) || math.IsInf(sec, 0) || sec > float64(math.MaxInt64/int64(time.Second)) {
			m.fail(m.s.keyError("service_timeout", "invalid timeout %q: want a number of seconds greater than 0", m.s.Keys["service_timeout"].Value))
			return
		}
		m.svc.PortTimeout = config.Duration(time.Duration(sec * float64(time.Second)))
	}
}

// keepRevs sets keep_revs.
func (m *mapper) keepRevs() {
	m.svc.KeepRevs = DefaultCacheRevs
	n, ok, e := m.s.intKey("cache_revs")
	switch {
	case e != nil:
		m.fail(e)
	case ok && n < 1:
		m.fail(m.s.keyError("cache_revs", "must be at least 1 (the revision deployed is kept)"))
	case ok:
		m.svc.KeepRevs = n
	}
}
