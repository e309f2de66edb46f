package scap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files of testdata/rendered were rendered by Python's Jinja2 3.1 from
// the same templates and variables, the way Scap3 renders them (its
// Environment arguments, its YAML finalize): Render must match them byte
// for byte.
func TestRenderMatchesJinja2(t *testing.T) {
	remote := map[string]any{"secret_token": "s3cret", "log_level": "warn"}
	tests := []struct {
		env    string
		dest   string
		remote map[string]any
		golden string
	}{
		{"", "/etc/eventgate/config.yaml", nil, "config.yaml"},
		{"", "/etc/eventgate/config.yaml", remote, "config.yaml-remote"},
		{"", "conf/motd", nil, "motd"},
		{"staging", "/etc/eventgate/config.yaml", nil, "staging-config.yaml"},
		{"staging", "/etc/eventgate/banner.txt", nil, "staging-banner.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			s, err := Load(os.DirFS("testdata/configs"), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := configFileAt(s, tt.dest)
			if !ok {
				t.Fatalf("no config file %s in %+v", tt.dest, s.ConfigFiles)
			}
			got, err := s.Render(f, tt.remote)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata/rendered", tt.golden))
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Render %s:\n got %q\nwant %q", tt.dest, got, want)
			}
		})
	}
}

func configFileAt(s *Settings, dest string) (ConfigFile, bool) {
	for _, f := range s.ConfigFiles {
		if f.Path == dest {
			return f, true
		}
	}
	return ConfigFile{}, false
}

func TestRenderErrors(t *testing.T) {
	s := &Settings{Vars: map[string]any{"x": 1}}
	for name, src := range map[string]string{
		"include":  `{% include "/etc/passwd" %}`,
		"extends":  `{% extends "base.j2" %}`,
		"syntax":   `{% for x in %}`,
		"unclosed": `{{ x `,
	} {
		t.Run(name, func(t *testing.T) {
			out, err := s.Render(ConfigFile{Path: "/etc/x", Template: "scap/templates/x.j2", Source: src}, nil)
			if err == nil {
				t.Fatalf("rendered %q, want an error", out)
			}
			if !strings.Contains(err.Error(), "scap/templates/x.j2") {
				t.Errorf("error %q does not name the template", err)
			}
		})
	}
}

// Remote variables win over the repository's, as in Scap3; YAML output
// prints booleans as YAML does, other output as Jinja2 does.
func TestRenderVariables(t *testing.T) {
	s := &Settings{Vars: map[string]any{"a": "repo", "b": "repo", "on": true, "l": []any{true, false}}}
	src := "{{ a }} {{ b }} {{ on }} {{ l }}{% if on %} yes{% endif %}"
	for _, tt := range []struct {
		format string
		want   string
	}{
		{"", "repo remote True [True, False] yes"},
		{"yaml", "repo remote true [true, false] yes"},
	} {
		got, err := s.Render(ConfigFile{Path: "x", Template: "t.j2", Source: src, OutputFormat: tt.format}, map[string]any{"b": "remote"})
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("format %q: got %q, want %q", tt.format, got, tt.want)
		}
	}
	if s.Vars["b"] != "repo" || s.Vars["on"] != true {
		t.Errorf("Render changed Settings.Vars: %v", s.Vars)
	}
}
