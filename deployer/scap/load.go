package scap

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Paths within a deploy repository.
const (
	scapDir = "scap"
	cfgName = "scap.cfg"
	envsDir = "scap/environments"
)

// Section names of scap.cfg with a meaning here.
const (
	sectGlobal      = "global"
	sectDefault     = "DEFAULT" // configparser's defaults for every section
	sectConfigFiles = "config_files"
)

// Value is one key of scap.cfg's [global] section as read: the
// environment's scap.cfg over the base one, [DEFAULT] under both.
type Value struct {
	// Value is the raw value, trimmed (lines of a multi-line value
	// joined with "\n").
	Value string
	// File and Line say where it was set.
	File string
	Line int
}

// Group is one of Scap3's server groups, in server_groups order, with the
// hosts of its target list.
type Group struct {
	// Name is the name in server_groups; "default" when server_groups is
	// not set.
	Name string
	// Key is the scap.cfg key naming the target list: dsh_targets for
	// the default group, <name>_dsh_targets otherwise.
	Key string
	// File is the target list, a path within the repository.
	File string
	// Hosts are the host names of the list, in file order, without those
	// already in an earlier group (Scap3 deploys a host with the first
	// group that lists it) and without repeats.
	Hosts []string
}

// Settings is a Scap3 service's deploy settings, read from the scap/
// directory of its deploy repository for one environment the way Scap3
// reads them. Apply maps them onto a deploybot service; Render renders
// their config files.
type Settings struct {
	// Environment is the environment read ("" for none): the one asked
	// for, or else the one scap.cfg names with its environment key.
	Environment string
	// Keys holds every key of [global] by lowercased name.
	Keys map[string]Value
	// Groups are the server groups with their hosts, in deploy order.
	Groups []Group
	// Checks are the checks of checks.yaml, the environment's over the
	// base ones, in file order; empty (override) entries removed.
	Checks []Check
	// ConfigDeploy is scap.cfg's config_deploy: whether Scap3 renders
	// ConfigFiles at all.
	ConfigDeploy bool
	// ConfigFiles are the config files to render on each target (see
	// Render): from config-files.yaml (the environment's, else the base
	// one), else from a [config_files] section of scap.cfg. Empty when
	// ConfigDeploy is false.
	ConfigFiles []ConfigFile
	// Vars are the template variables of scap/vars.yaml with the
	// environment's vars.yaml over them (top-level keys replaced, as
	// Scap3 does).
	Vars map[string]any

	keyOrder []string      // Keys in the order first set
	found    []Unsupported // what Load could not carry over
	fsys     fs.FS
}

// Load reads the Scap3 settings of the deploy repository whose top is the
// root of fsys (it holds scap/scap.cfg) for environment ("" for none;
// then scap.cfg's own environment key, if any, picks one, as in Scap3).
// An environment's directory, scap/environments/<name>, must exist; its
// scap.cfg, target lists, checks.yaml, vars.yaml, config-files.yaml and
// templates/ override the base ones, each where present.
//
// Load fails (with Errors) on what Scap3 would refuse or what cannot be
// mapped faithfully: a malformed scap.cfg or checks.yaml, a missing
// target list, a target list outside the repository. What Scap3 would
// accept but deploybot does not carry out is kept for Apply to report as
// Unsupported.
func Load(fsys fs.FS, environment string) (*Settings, error) {
	s := &Settings{Keys: map[string]Value{}, fsys: fsys}
	var errs Errors

	ini := newINI()
	base := path.Join(scapDir, cfgName)
	data, err := fs.ReadFile(fsys, base)
	if err != nil {
		return nil, Errors{{File: base, Msg: "cannot read the Scap3 configuration: " + plainErr(err) + " (want a deploy repository with scap/scap.cfg)"}}
	}
	errs = append(errs, ini.parse(base, data)...)

	if environment == "" {
		if g, ok := ini.section(sectGlobal); ok {
			if o, ok := g.get("environment"); ok {
				environment = o.Value
			}
		}
		if environment == "" {
			if d, ok := ini.section(sectDefault); ok {
				if o, ok := d.get("environment"); ok {
					environment = o.Value
				}
			}
		}
	}
	if environment != "" {
		if !validEnvName(environment) {
			return nil, Errors{{Key: "environment", Msg: fmt.Sprintf("invalid environment %q: want the name of a directory under scap/environments", environment)}}
		}
		dir := path.Join(envsDir, environment)
		if fi, err := fs.Stat(fsys, dir); err != nil || !fi.IsDir() {
			return nil, Errors{{File: dir, Key: "environment", Msg: fmt.Sprintf("environment %q does not exist: want a directory %s", environment, dir)}}
		}
		envCfg := path.Join(dir, cfgName)
		if data, err := fs.ReadFile(fsys, envCfg); err == nil {
			errs = append(errs, ini.parse(envCfg, data)...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, &Error{File: envCfg, Msg: "cannot read: " + plainErr(err)})
		}
	}
	s.Environment = environment
	if len(errs) > 0 {
		return nil, errs
	}

	s.readSections(ini)
	if _, ok := ini.section(sectGlobal); !ok {
		errs = append(errs, &Error{File: base, Msg: "no [global] section: Scap3 reads its settings from [global]"})
	}
	errs = append(errs, s.readGroups()...)
	errs = append(errs, s.readChecks()...)
	cd, e := s.boolKey("config_deploy", false)
	if e != nil {
		errs = append(errs, e)
	}
	s.ConfigDeploy = cd
	errs = append(errs, s.readConfigFiles(ini)...)
	if err := errOf(errs); err != nil {
		return nil, err
	}
	return s, nil
}

// validEnvName accepts one path element.
func validEnvName(name string) bool {
	return fs.ValidPath(name) && !strings.Contains(name, "/") && name != "."
}

// plainErr drops the "open path:" prefix of a path error.
func plainErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readSections collects [global] (over [DEFAULT]) into Keys and records
// every other section, except [config_files], as unsupported.
func (s *Settings) readSections(ini *iniFile) {
	add := func(o *iniOption) {
		if _, ok := s.Keys[o.Name]; !ok {
			s.keyOrder = append(s.keyOrder, o.Name)
		}
		s.Keys[o.Name] = Value{Value: o.Value, File: o.File, Line: o.Line}
	}
	if d, ok := ini.section(sectDefault); ok {
		for _, o := range d.Options {
			add(o)
		}
	}
	if g, ok := ini.section(sectGlobal); ok {
		for _, o := range g.Options {
			add(o)
		}
	}
	for _, sect := range ini.Sections {
		switch sect.Name {
		case sectGlobal, sectDefault, sectConfigFiles:
			continue
		}
		s.found = append(s.found, Unsupported{
			Key: "[" + sect.Name + "]", File: sect.File, Line: sect.Line,
			Why: "Scap3 applies a section named after a host or domain only on the deploy host whose FQDN ends in it; deploybot reads [global] alone, so its keys are not imported",
		})
	}
}

// key returns the [global] value of name.
func (s *Settings) key(name string) (Value, bool) {
	v, ok := s.Keys[name]
	return v, ok
}

// keyError is an *Error about key name's value.
func (s *Settings) keyError(name, format string, args ...any) *Error {
	v := s.Keys[name]
	return &Error{File: v.File, Line: v.Line, Key: name, Msg: fmt.Sprintf(format, args...)}
}

// boolKey reads a boolean as Scap3 coerces it (1/yes/true/on,
// 0/no/false/off, any case).
func (s *Settings) boolKey(name string, def bool) (bool, *Error) {
	v, ok := s.key(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v.Value) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return def, s.keyError(name, "invalid boolean %q: want true or false (also yes/no, on/off, 1/0)", v.Value)
}

// intKey reads a whole number; ok is false when the key is not set.
func (s *Settings) intKey(name string) (n int, ok bool, e *Error) {
	v, ok := s.key(name)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		return 0, true, s.keyError(name, "invalid number %q: want a whole number", v.Value)
	}
	return n, true, nil
}

// secondsKey reads a number of seconds (Scap3 coerces it to a float).
func (s *Settings) secondsKey(name string) (sec float64, ok bool, e *Error) {
	v, ok := s.key(name)
	if !ok {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	if err != nil || f != f {
		return 0, true, s.keyError(name, "invalid number of seconds %q: want a number such as 120", v.Value)
	}
	return f, true, nil
}

// serverGroups returns server_groups as Scap3 splits it, or ["default"].
func (s *Settings) serverGroups() []string {
	v, ok := s.key("server_groups")
	if !ok {
		return []string{"default"}
	}
	var out []string
	for _, g := range strings.Split(v.Value, ",") {
		out = append(out, strings.TrimSpace(g))
	}
	return out
}

// groupKey is the key naming group g's target list.
func groupKey(g string) string {
	if g == "default" {
		return "dsh_targets"
	}
	return g + "_dsh_targets"
}

// envPaths returns where Scap3 looks for a file of the scap directory:
// the environment's copy first, then the base one.
func (s *Settings) envPaths(rel string) []string {
	var ps []string
	if s.Environment != "" {
		ps = append(ps, path.Join(envsDir, s.Environment, rel))
	}
	return append(ps, path.Join(scapDir, rel))
}

// envFile returns the first of envPaths(rel) that exists as a file.
func (s *Settings) envFile(rel string) (string, bool) {
	for _, p := range s.envPaths(rel) {
		if fi, err := fs.Stat(s.fsys, p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}
