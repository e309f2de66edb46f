package scap

import (
	"fmt"
	"io/fs"
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

// checks sets checks.
func (m *mapper) checks() {
	m.svc.Checks = nil
	perform, e := m.s.boolKey("perform_checks", true)
	m.fail(e)
	if !perform {
		if len(m.s.Checks) > 0 {
			m.unsupported("perform_checks", m.s.Keys["perform_checks"],
				"is false: Scap3 runs none of the %d check(s) of checks.yaml, and none is imported", len(m.s.Checks))
		}
		return
	}
	names := map[string]string{}
	for _, c := range m.s.Checks {
		key := "checks." + c.Name
		at := Value{File: c.File, Line: c.Line}
		for _, o := range c.Other {
			m.unsupported(key+"."+o, at, "not an option of a check: Scap3 ignores it, and so does deploybot")
		}
		switch c.Type {
		case "command", "script":
		case "nrpe":
			m.unsupported(key, at, "an NRPE check (%s): Scap3 runs the command the target's /etc/nagios/nrpe.d defines under that name; deploybot does not read NRPE definitions, so it is not imported (add the plugin's command line as a command check instead)", c.Command)
			continue
		default:
			m.unsupported(key, at, "check type %q is unknown to deploybot (Scap3 knows command, script and nrpe): it is not imported", c.Type)
			continue
		}
		if c.Group != "" {
			m.unsupported(key, at, "runs only on group %s in Scap3; deploybot runs every check on every host, so it is not imported", c.Group)
			continue
		}
		if !m.checkStage(key, at, c) {
			continue
		}
		if c.Command == "" {
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: "missing command: Scap3 refuses a check without one"})
			continue
		}
		command, ok := m.checkCommand(key, c)
		if !ok {
			continue
		}
		name := strings.ToLower(c.Name)
		if !nameRE.MatchString(name) {
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: fmt.Sprintf("check name %q cannot be a deploybot check name: want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 bytes", c.Name)})
			continue
		}
		if first, dup := names[name]; dup {
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: fmt.Sprintf("check name %q is %q in lowercase, as is check %q: deploybot check names are lowercase and unique", c.Name, name, first)})
			continue
		}
		names[name] = c.Name
		timeout := c.Timeout
		if timeout == 0 {
			timeout = DefaultCheckTimeout
		}
		m.svc.Checks = append(m.svc.Checks, config.Check{Name: name, Command: command, Timeout: config.Duration(timeout)})
	}
}

// checkStage says whether check c runs where deploybot runs checks (after
// the restart and the port check), reporting it when not. Scap3 runs a
// check after its stage (stage: or after:) or before it (before:).
// After promote and before or after the service restart are imported:
// deploybot runs them after the restart.
func (m *mapper) checkStage(key string, at Value, c Check) bool {
	ok := false
	report := func(when, stage, why string) {
		m.unsupported(key, at, "runs %s %s in Scap3: %s", when, stage, why)
	}
	judge := func(when, stage string) {
		switch stage {
		case stagePromote:
			if when == "after" {
				ok = true
			} else {
				report(when, stage, "deploybot runs checks only after the restart, so it is not imported")
			}
		case stageHandleService, stageRestartService:
			ok = true
		case stageFetch, stageConfigDeploy:
			report(when, stage, "there, a failure stops a host before its new code goes live; deploybot runs checks only after the restart, so it is not imported")
		case stageFinalize, stageRollback, stageConfigDiff:
			report(when, stage, "deploybot runs checks only after the restart, so it is not imported")
		default:
			report(when, stage, "that stage is unknown (Scap3 refuses it), so it is not imported")
		}
	}
	if c.Stage == "" && c.Before == "" {
		m.unsupported(key, at, "has no stage: Scap3 never runs it, so it is not imported")
		return false
	}
	if c.Stage != "" {
		judge("after", c.Stage)
	}
	if c.Before != "" {
		judge("before", c.Before)
	}
	return ok
}

// checkCommand turns a check's command into the shell command deploybot
// runs in the new revision's directory on the target. A command check's
// command line is split as Scap3 splits it and quoted, so the shell runs
// the very words Scap3 would exec; a script check runs
// scap/scripts/<name> of the revision. Commands that mention SCAP_
// variables get the ones Scap3 sets, from deploybot's equivalent layout.
func (m *mapper) checkCommand(key string, c Check) (string, bool) {
	var words []string
	switch c.Type {
	case "script":
		name := c.Command
		p := path.Join(scapDir, "scripts", name)
		if strings.Contains(name, "/") || !fs.ValidPath(p) {
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: fmt.Sprintf("invalid script %q: want the name of an executable file in scap/scripts", name)})
			return "", false
		}
		fi, err := fs.Stat(m.s.fsys, p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: fmt.Sprintf("the script %s is not an executable file of the repository: Scap3 refuses the check", p)})
			return "", false
		}
		words = []string{p}
	default:
		var err error
		words, err = splitCommand(c.Command)
		if err != nil || len(words) == 0 {
			why := "it is empty"
			if err != nil {
				why = err.Error()
			}
			m.fail(&Error{File: c.File, Line: c.Line, Key: key, Msg: fmt.Sprintf("cannot split the command %q as Scap3 does: %s", c.Command, why)})
			return "", false
		}
	}
	cmd := shellJoin(words)
	if strings.Contains(c.Command, "SCAP_") || c.Type == "script" {
		cmd = m.scapEnv() + cmd
	}
	return cmd, true
}

// scapEnv assigns the variables Scap3 sets for checks, for one command.
// Checks run in the new revision's directory, which after promote is the
// current one.
func (m *mapper) scapEnv() string {
	if m.svc.TargetDir == "" {
		return ""
	}
	cache := m.svc.TargetDir + "-cache"
	return strings.Join([]string{
		"SCAP_REV_PATH=\"$PWD\"",
		"SCAP_CURRENT_REV_DIR=\"$PWD\"",
		"SCAP_FINAL_PATH=" + shellQuote(m.svc.TargetDir),
		"SCAP_REVS_DIR=" + shellQuote(cache+"/revs"),
		"SCAP_DONE_REV_DIR=\"$(readlink -f " + shellQuote(cache+"/.done") + ")\"",
	}, " ") + " "
}

// configFiles reports the config files: a deploybot service has none.
func (m *mapper) configFiles() {
	for _, f := range m.s.ConfigFiles {
		m.unsupported("config_files."+f.Path, Value{File: f.File, Line: f.Line},
			"deploybot's service configuration has no config files: it is not imported (package scap can render it, from %s)", f.Template)
	}
}

// batch returns how many hosts of a group run at once: Scap3's batch
// size for the stages a deploy runs (fetch, config_deploy, promote, each
// <stage>_batch_size or else batch_size, at most 80). deploybot runs all
// of a host's stages in one session, so it takes the smallest.
func (m *mapper) batch() int {
	def := MaxBatchSize
	if n, ok, e := m.s.intKey("batch_size"); e != nil {
		m.fail(e)
	} else if ok {
		if n < 1 {
			m.fail(m.s.keyError("batch_size", "must be at least 1"))
		}
		def = min(max(n, 1), MaxBatchSize)
	}
	size := map[string]int{}
	smallest := def
	for _, st := range []string{stageFetch, stageConfigDeploy, stagePromote} {
		size[st] = def
		n, ok, e := m.s.intKey(st + "_batch_size")
		if e != nil {
			m.fail(e)
			continue
		}
		if ok {
			if n < 1 {
				m.fail(m.s.keyError(st+"_batch_size", "must be at least 1"))
				continue
			}
			size[st] = min(n, MaxBatchSize)
		}
		smallest = min(smallest, size[st])
	}
	for _, name := range m.s.keyOrder {
		stage, ok := strings.CutSuffix(name, "_batch_size")
		if !ok || !allStages[stage] {
			continue
		}
		v := m.s.Keys[name]
		switch stage {
		case stageFetch, stageConfigDeploy, stagePromote:
			if size[stage] != smallest {
				m.unsupported(name, v, "deploybot runs a host's fetch, checkout, promote and restart in one session, so every stage runs %d hosts at a time (the smallest batch size), not %d", smallest, size[stage])
			}
		default:
			m.unsupported(name, v, "deploybot runs the %s stage with the group's parallel (%d here), not with a size of its own", stage, smallest)
		}
	}
	return smallest
}

// failureLimit is group g's failure limit for a (sub)group of size
// hosts: <g>_failure_limit, else failure_limit, else 0%. Scap3 turns a
// percentage into hosts rounding down, as deploybot does; a percentage
// that is not a whole number, or over 100, is turned into a count here.
func (m *mapper) failureLimit(g string, size int) (config.FailureLimit, string, bool) {
	key := g + "_failure_limit"
	v, ok := m.s.key(key)
	if !ok {
		key = "failure_limit"
		v, ok = m.s.key(key)
	}
	raw := DefaultFailureLimit
	if ok {
		raw = v.Value
	}
	if pct, isPct := strings.CutSuffix(raw, "%"); isPct {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || !(f >= 0) || math.IsInf(f, 0) {
			m.fail(m.s.keyError(key, "invalid failure limit %q: want a number of hosts such as 2, or a percentage such as 10%%", raw))
			return config.FailureLimit{}, key, false
		}
		switch {
		case f == 0:
			return config.FailureLimit{}, key, true
		case f == math.Trunc(f) && f <= 100:
			return config.FailureLimit{Count: int(f), Percent: true}, key, true
		}
		return config.FailureLimit{Count: min(int(f*float64(size)/100), size)}, key, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 0 {
		m.fail(m.s.keyError(key, "invalid failure limit %q: want a number of hosts such as 2, or a percentage such as 10%%", raw))
		return config.FailureLimit{}, key, false
	}
	return config.FailureLimit{Count: min(n, size)}, key, true
}

// groupSize is group g's group_size (0: not split).
func (m *mapper) groupSize(g string) (int, string) {
	key := g + "_group_size"
	n, ok, e := m.s.intKey(key)
	if !ok {
		key = "group_size"
		n, ok, e = m.s.intKey(key)
	}
	switch {
	case e != nil:
		m.fail(e)
		return 0, key
	case ok && n < 0:
		m.fail(m.s.keyError(key, "must be 0 (the whole group at once) or more"))
		return 0, key
	}
	return n, key
}

// hosts sets canary and groups.
func (m *mapper) hosts() {
	m.svc.Canary, m.svc.Groups = nil, nil
	batch := m.batch()
	names := map[string]string{} // deploybot group name → Scap3 group
	for i, g := range m.s.Groups {
		gv := m.s.Keys[g.Key]
		var hosts []config.Host
		for _, h := range g.Hosts {
			host, err := config.ParseHost(h)
			if err != nil {
				m.fail(&Error{File: g.File, Key: g.Key, Msg: err.Error()})
				continue
			}
			hosts = append(hosts, host)
		}
		if len(hosts) == 0 {
			if len(g.Hosts) == 0 {
				m.unsupported(g.Key, gv, "group %s has no hosts of its own (%s): Scap3 deploys to nothing there; deploybot has no empty groups, so it is left out", g.Name, g.File)
			}
			continue
		}
		if strings.EqualFold(g.Name, "canary") {
			m.canary(i, g, hosts, batch)
			continue
		}
		name := strings.ToLower(g.Name)
		if !nameRE.MatchString(name) {
			m.fail(m.s.keyError("server_groups", "group name %q cannot be a deploybot group name: want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 bytes", g.Name))
			continue
		}
		size, sizeKey := m.groupSize(g.Name)
		if size == 0 || size >= len(hosts) {
			size = len(hosts)
		}
		chunks := (len(hosts) + size - 1) / size
		for c := 0; c < chunks; c++ {
			part := hosts[c*size : min((c+1)*size, len(hosts))]
			gname := name
			if chunks > 1 {
				gname = name + strconv.Itoa(c+1)
			}
			if first, dup := names[gname]; dup {
				m.fail(m.s.keyError("server_groups", "group %s (from %s) has the same deploybot name as one from %s: rename one of them", gname, g.Name, first))
				continue
			}
			names[gname] = g.Name
			fl, flKey, ok := m.failureLimit(g.Name, len(part))
			if !ok {
				continue
			}
			if c == 0 && chunks > 1 && (fl.Count > 0) {
				m.unsupported(sizeKey, m.s.Keys[sizeKey], "Scap3 counts the failures of all %d subgroups of %s against one %s (%s); deploybot counts them per group", chunks, g.Name, flKey, fl)
			}
			m.svc.Groups = append(m.svc.Groups, config.Group{
				Name:         gname,
				Hosts:        part,
				Parallel:     min(batch, len(part)),
				FailureLimit: fl,
				Pause:        len(m.svc.Canary) > 0 || len(m.svc.Groups) > 0,
			})
		}
	}
	if len(m.svc.Canary) == 0 && len(m.svc.Groups) == 0 && len(m.errs) == 0 {
		m.fail(&Error{Key: "server_groups", Msg: "no hosts: the target lists name no host"})
	}
}

// canary sets the canary hosts from Scap3's group named canary, the i-th
// of server_groups.
func (m *mapper) canary(i int, g Group, hosts []config.Host, batch int) {
	gv := m.s.Keys[g.Key]
	if i > 0 || len(m.svc.Groups) > 0 {
		m.unsupported("server_groups", m.s.Keys["server_groups"], "lists %s after other groups; deploybot always deploys the canary first", g.Name)
		if len(m.svc.Groups) > 0 {
			m.svc.Groups[0].Pause = true
		}
	}
	m.svc.Canary = hosts
	if fl, key, ok := m.failureLimit(g.Name, len(hosts)); ok && fl.Allowed(len(hosts)) > 0 {
		m.unsupported(key, m.s.Keys[key], "lets %s of the %d canary host(s) fail in Scap3; deploybot lets no canary host fail", fl, len(hosts))
	}
	if size, key := m.groupSize(g.Name); size > 0 && size < len(hosts) {
		m.unsupported(key, m.s.Keys[key], "splits the canary into groups of %d in Scap3; deploybot deploys the %d canary hosts as one group", size, len(hosts))
	}
	if batch < len(hosts) {
		m.unsupported(g.Key, gv, "Scap3 deploys %d canary hosts at a time; deploybot deploys all %d at once", batch, len(hosts))
	}
}
