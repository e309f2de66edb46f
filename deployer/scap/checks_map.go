package scap

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"deploybot/config"
)

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

// configFiles sets config_files: each file with its template (the
// environment's, where it has one) and the vars files, base then
// environment; remote_vars is reported.
func (m *mapper) configFiles() {
	m.svc.ConfigFiles = nil
	vars := reverse(m.s.envPaths("vars.yaml")) // the base file, then the environment's over it
	for _, f := range m.s.ConfigFiles {
		m.svc.ConfigFiles = append(m.svc.ConfigFiles, config.ConfigFile{
			Path: f.Path, Template: f.Template, Vars: vars, ERBSyntax: f.ERBSyntax, OutputFormat: f.OutputFormat,
		})
		if f.RemoteVars != "" {
			m.unsupported("config_files."+f.Path+".remote_vars", Value{File: f.File, Line: f.Line},
				"deploybot renders config files on the deploy host with the repository's variables only: %s on the targets is not read", f.RemoteVars)
		}
	}
}
