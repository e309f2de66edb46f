package scap

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	gonjacfg "github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"gopkg.in/yaml.v3"

	"deploybot/config"
)

// ConfigFile is one config file Scap3 renders on each target during its
// config_deploy stage.
type ConfigFile struct {
	// Path is where the file goes on the target: an absolute path (Scap3
	// renders it into the revision and links it there at promote), or a
	// path relative to the revision directory (written there directly).
	Path string
	// Template is the template file within the repository: templates/
	// of the environment, else scap/templates/.
	Template string
	// Source is the template's text.
	Source string
	// RemoteVars is a YAML file on each target (put there by its
	// configuration management, often holding secrets) whose variables
	// override the repository's; empty when not set.
	RemoteVars string
	// ERBSyntax selects the <% %> delimiters: <%= expr %>, <% block %>,
	// <%# comment %>.
	ERBSyntax bool
	// OutputFormat is "yaml" when the output is YAML (said so, or guessed
	// from Path's extension, .yaml or .yml before an optional .j2): true,
	// false and None then print as true, false and null. Otherwise "".
	OutputFormat string
	// File and Line say where the entry is defined.
	File string
	Line int
}

// configFileOptions are the options of a config-files.yaml entry.
var configFileOptions = map[string]bool{
	"template": true, "remote_vars": true, "erb_syntax": true, "output_format": true,
}

// readConfigFiles reads the variables and, when config_deploy is on, the
// config files: config-files.yaml of the environment, else of scap/, else
// the [config_files] section of scap.cfg.
func (s *Settings) readConfigFiles(ini *iniFile) Errors {
	var errs Errors
	s.Vars = map[string]any{}
	for _, dir := range reverse(s.envPaths("")) {
		p := path.Join(dir, "vars.yaml")
		data, err := fs.ReadFile(s.fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: "cannot read: " + plainErr(err)})
			continue
		}
		var vars map[string]any
		if err := yaml.Unmarshal(data, &vars); err != nil {
			errs = append(errs, &Error{File: p, Msg: "want a YAML mapping of variable names to values: " + err.Error()})
			continue
		}
		maps.Copy(s.Vars, vars)
	}

	var entries []ConfigFile
	source := ""
	for _, dir := range s.envPaths("") {
		file, ok, e := s.oneOf(dir, "config-files.yaml", "config-files.yml")
		if e != nil {
			errs = append(errs, e)
		}
		if ok {
			source = file
			es, e2 := s.parseConfigFilesYAML(file)
			entries, errs = es, append(errs, e2...)
			break
		}
	}
	if sect, ok := ini.section(sectConfigFiles); ok {
		if source != "" {
			s.found = append(s.found, Unsupported{Key: "[" + sectConfigFiles + "]", File: sect.File, Line: sect.Line,
				Why: fmt.Sprintf("%s defines the config files; this older form is not read, as Scap3 reads only config-files.yaml", source)})
		} else {
			source = sect.File
			es, e2 := s.parseConfigFilesSection(sect)
			entries, errs = es, append(errs, e2...)
		}
	}
	if !s.ConfigDeploy {
		if len(entries) > 0 {
			s.found = append(s.found, Unsupported{Key: "config_deploy", File: source,
				Why: fmt.Sprintf("%d config file(s) are defined but config_deploy is not true: Scap3 does not render them, and they are not imported", len(entries))})
		}
		return errs
	}
	for i := range entries {
		e := &entries[i]
		p, err := s.templatePath(e.Template)
		if err != nil {
			errs = append(errs, &Error{File: e.File, Line: e.Line, Key: "config_files." + e.Path, Msg: err.Error()})
			continue
		}
		data, err := fs.ReadFile(s.fsys, p)
		if err != nil {
			errs = append(errs, &Error{File: p, Key: "config_files." + e.Path, Msg: "cannot read the template: " + plainErr(err)})
			continue
		}
		e.Template, e.Source = p, string(data)
		s.ConfigFiles = append(s.ConfigFiles, *e)
	}
	return errs
}

// templatePath finds a template: the environment's templates/ first.
func (s *Settings) templatePath(name string) (string, error) {
	rel := path.Clean(name)
	if name == "" || strings.HasPrefix(name, "/") || !fs.ValidPath(rel) || rel == "." {
		return "", fmt.Errorf("invalid template %q: want a file name under scap/templates", name)
	}
	if p, ok := s.envFile(path.Join("templates", rel)); ok {
		return p, nil
	}
	return "", fmt.Errorf("template %q not found in %s", name, strings.Join(s.envPaths(path.Join("templates", rel)), " or "))
}

// parseConfigFilesYAML reads config-files.yaml: a mapping of destination
// paths to their options.
func (s *Settings) parseConfigFilesYAML(file string) ([]ConfigFile, Errors) {
	data, err := fs.ReadFile(s.fsys, file)
	if err != nil {
		return nil, Errors{{File: file, Msg: "cannot read: " + plainErr(err)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{{File: file, Msg: "invalid YAML: " + err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Msg: "want a mapping of destination paths to their template options"}}
	}
	var out []ConfigFile
	var errs Errors
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		cf, es := s.configFile(file, k.Line, 0, k.Value, v)
		errs = append(errs, es...)
		if es == nil {
			out = append(out, cf)
		}
	}
	return out, errs
}

// parseConfigFilesSection reads the older [config_files] section of
// scap.cfg: each key a destination path, its (multi-line) value the
// options as "name: value" lines; vars_file is remote_vars's old name.
func (s *Settings) parseConfigFilesSection(sect *iniSection) ([]ConfigFile, Errors) {
	var out []ConfigFile
	var errs Errors
	for _, o := range sect.Options {
		var v yaml.Node
		if err := yaml.Unmarshal([]byte(o.Value), &v); err != nil || len(v.Content) == 0 {
			errs = append(errs, &Error{File: o.File, Line: o.Line, Key: "config_files." + o.Key,
				Msg: "want indented lines \"template: NAME\" (and optionally \"vars_file: PATH\") under the path"})
			continue
		}
		node := v.Content[0]
		if node.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(node.Content); j += 2 {
				if node.Content[j].Value == "vars_file" {
					node.Content[j].Value = "remote_vars"
				}
			}
		}
		cf, es := s.configFile(o.File, o.Line, o.Line-1, o.Key, node)
		errs = append(errs, es...)
		if es == nil {
			out = append(out, cf)
		}
	}
	return out, errs
}

// configFile reads the options of one config file entry defined at line
// of file; lineBase is added to the lines of v.
func (s *Settings) configFile(file string, line, lineBase int, dest string, v *yaml.Node) (ConfigFile, Errors) {
	key := "config_files." + dest
	bad := func(format string, args ...any) (ConfigFile, Errors) {
		return ConfigFile{}, Errors{{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	if dest == "" || strings.ContainsAny(dest, "\x00\n") || path.Clean(dest) != dest || strings.HasPrefix(dest, "../") || dest == ".." {
		return bad("invalid destination %q: want a clean absolute path, or one relative to the revision directory", dest)
	}
	if v.Kind != yaml.MappingNode {
		return bad("want a mapping with at least template:")
	}
	cf := ConfigFile{Path: dest, File: file, Line: line}
	format, formatSet := "", false
	for j := 0; j+1 < len(v.Content); j += 2 {
		k, ov := v.Content[j], v.Content[j+1]
		if !configFileOptions[k.Value] {
			s.found = append(s.found, Unsupported{Key: key + "." + k.Value, File: file, Line: lineBase + k.Line,
				Why: "not an option of a config file (template, remote_vars, erb_syntax, output_format): Scap3 ignores it, and so does deploybot"})
			continue
		}
		if ov.Kind != yaml.ScalarNode {
			return bad("%s: want a single value", k.Value)
		}
		switch k.Value {
		case "template":
			cf.Template = ov.Value
		case "remote_vars":
			cf.RemoteVars = ov.Value
		case "erb_syntax":
			var b bool
			if err := ov.Decode(&b); err != nil {
				return bad("erb_syntax: want true or false")
			}
			cf.ERBSyntax = b
		case "output_format":
			format, formatSet = ov.Value, true
		}
	}
	if cf.Template == "" {
		return bad("missing template: want the name of a template under scap/templates")
	}
	if !formatSet {
		format = guessFormat(dest)
	}
	switch format {
	case "":
	case "yaml", "yml":
		cf.OutputFormat = "yaml"
	default:
		return bad("invalid output_format %q: want yaml (or leave it out)", format)
	}
	return cf, nil
}

// guessFormat is Scap3's output format guess from a file name.
func guessFormat(name string) string {
	parts := strings.Split(path.Base(name), ".")
	if len(parts) < 2 {
		return ""
	}
	if parts[len(parts)-1] == "j2" {
		parts = parts[:len(parts)-1]
	}
	switch parts[len(parts)-1] {
	case "yaml", "yml":
		return "yaml"
	}
	return ""
}

// Render renders config file f as Scap3 would on a target: its template
// with Vars and, over them, remote — the variables of f.RemoteVars as read
// on that target (nil when the file has none, or to render without them).
// The template sees no other file: include, extends and import fail, as
// in Scap3, whose loader holds only the one template.
func (s *Settings) Render(f ConfigFile, remote map[string]any) (string, error) {
	vars := make(map[string]any, len(s.Vars)+len(remote))
	maps.Copy(vars, s.Vars)
	maps.Copy(vars, remote)
	out, err := render(f.Template, f.Source, f.ERBSyntax, f.OutputFormat == "yaml", vars)
	if err != nil {
		return "", fmt.Errorf("%s: rendering %s: %w", f.Template, f.Path, err)
	}
	return out, nil
}

// RenderFile renders config file f of a deploybot service from the deploy
// repository tree fsys (a revision, see gitrepo's FSAt): its template with
// the variables of its vars files, a later file's top-level keys over an
// earlier one's; a vars file missing from the tree is skipped.
func RenderFile(fsys fs.FS, f config.ConfigFile) (string, error) {
	vars := map[string]any{}
	for _, p := range f.Vars {
		data, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s: cannot read: %s", p, plainErr(err))
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("%s: want a YAML mapping of variable names to values: %v", p, err)
		}
		maps.Copy(vars, m)
	}
	src, err := fs.ReadFile(fsys, f.Template)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the template of %s: %s", f.Template, f.Path, plainErr(err))
	}
	out, err := render(f.Template, string(src), f.ERBSyntax, f.OutputFormat == "yaml", vars)
	if err != nil {
		return "", fmt.Errorf("%s: rendering %s: %w", f.Template, f.Path, err)
	}
	return out, nil
}

// render renders one template (the file template, text source) with vars
// as Scap3's Jinja2 would.
func render(template, source string, erb, yamlOut bool, vars map[string]any) (out string, err error) {
	cfg := gonjacfg.New()
	// Jinja2's defaults, as Scap3 uses them: no autoescape, undefined
	// prints as nothing, one trailing newline dropped.
	if erb {
		cfg.BlockStartString, cfg.BlockEndString = "<%", "%>"
		cfg.VariableStartString, cfg.VariableEndString = "<%=", "%>"
		cfg.CommentStartString, cfg.CommentEndString = "<%#", "%>"
	}
	name := "/" + path.Base(template)
	loader, err := loaders.NewMemoryLoader(map[string]string{name: source})
	if err != nil {
		return "", err
	}
	env := &exec.Environment{
		Context:           exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           builtins.Methods,
	}
	defer func() {
		// A template must not take the deploy down with it.
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("failed: %v", r)
		}
	}()
	tpl, err := exec.NewTemplate(name, cfg, loader, env)
	if err != nil {
		return "", err
	}
	if yamlOut {
		for k, v := range vars {
			vars[k] = yamlValues(v)
		}
	}
	return tpl.ExecuteToString(exec.NewContext(vars))
}

// yamlBool prints as YAML does (true, false) where Jinja prints Python's
// True and False; it stays a boolean in tests and conditions.
type yamlBool bool

func (b yamlBool) String() string {
	if b {
		return "true"
	}
	return "false"
}

// yamlValues copies v with every boolean made a yamlBool.
func yamlValues(v any) any {
	switch t := v.(type) {
	case bool:
		return yamlBool(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = yamlValues(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = yamlValues(e)
		}
		return l
	}
	return v
}
