package scap

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"deploybot/config"
)

func hosts(names ...string) []config.Host {
	var hs []config.Host
	for _, n := range names {
		h, err := config.ParseHost(n)
		if err != nil {
			panic(err)
		}
		hs = append(hs, h)
	}
	return hs
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// scapEnvFor is the SCAP_ variables a check of the service at dir gets.
func scapEnvFor(dir string) string {
	return `SCAP_REV_PATH="$PWD" SCAP_CURRENT_REV_DIR="$PWD" SCAP_FINAL_PATH=` + dir +
		` SCAP_REVS_DIR=` + dir + `-cache/revs SCAP_DONE_REV_DIR="$(readlink -f ` + dir + `-cache/.done)" `
}

// base is what Apply must leave alone.
func base() config.Service {
	return config.Service{
		Name:          "svc",
		Upstream:      "https://gerrit.example.org/r/svc/deploy",
		Branch:        "main",
		PromptTimeout: dur(7 * time.Minute),
		Deployers:     config.Deployers{Accounts: []string{"carol"}},
	}
}

func TestLoadApply(t *testing.T) {
	tests := []struct {
		repo, env string
		// settings read by Load
		wantEnv    string
		wantGroups []string // name: hosts
		// the service Apply makes, from base()
		want func(s *config.Service)
		// the Unsupported items, as "file:line: key"
		wantUnsupported []string
	}{
		{
			repo: "simple",
			wantGroups: []string{
				"default: mock1001.eqiad.wmnet mock1002.eqiad.wmnet",
			},
			want: func(s *config.Service) {
				s.Repo = "mockbase/deploy"
				s.TargetDir = "/srv/deployment/mockbase/deploy"
				s.Restart = "sudo -n /usr/sbin/service mockbase restart"
				s.Port = 1134
				s.PortTimeout = dur(120 * time.Second)
				s.KeepRevs = 5
				s.Groups = []config.Group{{Name: "default", Hosts: hosts("mock1001.eqiad.wmnet", "mock1002.eqiad.wmnet"), Parallel: 2}}
			},
			wantUnsupported: []string{
				"scap/scap.cfg:5: git_repo_user",
				"scap/scap.cfg:6: ssh_user",
			},
		},
		{
			repo: "fleet",
			wantGroups: []string{
				"canary: scb1001.eqiad.wmnet",
				"eqiad: scb1002.eqiad.wmnet scb1003.eqiad.wmnet scb1004.eqiad.wmnet scb1005.eqiad.wmnet scb1006.eqiad.wmnet",
				"codfw: scb2001.codfw.wmnet scb2002.codfw.wmnet scb2003.codfw.wmnet",
			},
			want: func(s *config.Service) {
				const dir = "/srv/deployment/citoid/deploy"
				s.Repo = "citoid/deploy"
				s.TargetDir = dir
				s.Submodules = true
				s.Restart = "sudo -n /usr/sbin/service citoid restart"
				s.Port = 1970
				s.PortTimeout = dur(90 * time.Second)
				s.KeepRevs = 3
				s.Checks = []config.Check{
					{Name: "info", Command: "curl -Ss -o /dev/null http://localhost:1970/_info", Timeout: dur(time.Minute)},
					{Name: "spec", Command: scapEnvFor(dir) + `bash -c 'test -f "$SCAP_REV_PATH/spec.yaml"'`, Timeout: dur(30 * time.Second)},
				}
				s.Canary = hosts("scb1001.eqiad.wmnet")
				pct10 := config.FailureLimit{Count: 10, Percent: true}
				s.Groups = []config.Group{
					{Name: "eqiad1", Hosts: hosts("scb1002.eqiad.wmnet", "scb1003.eqiad.wmnet", "scb1004.eqiad.wmnet"), Parallel: 2, FailureLimit: pct10, Pause: true},
					{Name: "eqiad2", Hosts: hosts("scb1005.eqiad.wmnet", "scb1006.eqiad.wmnet"), Parallel: 2, FailureLimit: pct10, Pause: true},
					{Name: "codfw", Hosts: hosts("scb2001.codfw.wmnet", "scb2002.codfw.wmnet", "scb2003.codfw.wmnet"), Parallel: 2, FailureLimit: config.FailureLimit{Count: 1}, Pause: true},
				}
			},
			wantUnsupported: []string{
				"scap/checks.yaml:11: checks.warmup",
				"scap/checks.yaml:14: checks.canary_only",
				"scap/citoid-codfw:3: codfw_dsh_targets line 3",
				"scap/citoid-eqiad: eqiad_dsh_targets",
				"scap/citoid-eqiad:7: eqiad_dsh_targets line 7",
				"scap/scap.cfg:4: git_repo_user",
				"scap/scap.cfg:5: ssh_user",
				"scap/scap.cfg:11: eqiad_group_size",
				"scap/scap.cfg:20: tags_to_keep",
			},
		},
		{
			repo: "fleet", env: "beta", wantEnv: "beta",
			wantGroups: []string{
				"default: deployment-sca01.deployment-prep.eqiad1.wikimedia.cloud deployment-sca02.deployment-prep.eqiad1.wikimedia.cloud",
			},
			want: func(s *config.Service) {
				const dir = "/srv/deployment/citoid/deploy"
				s.Repo = "citoid/deploy"
				s.TargetDir = dir
				s.Submodules = true
				s.Restart = "sudo -n /usr/sbin/service citoid restart"
				s.Port = 1971
				s.PortTimeout = dur(90 * time.Second)
				s.KeepRevs = 3
				// warmup is emptied by the environment: gone, not reported.
				s.Checks = []config.Check{
					{Name: "info", Command: "curl -Ss -o /dev/null http://localhost:1970/_info", Timeout: dur(time.Minute)},
					{Name: "spec", Command: scapEnvFor(dir) + `bash -c 'test -f "$SCAP_REV_PATH/spec.yaml"'`, Timeout: dur(5 * time.Second)},
				}
				s.Groups = []config.Group{{Name: "default", Hosts: hosts("deployment-sca01.deployment-prep.eqiad1.wikimedia.cloud", "deployment-sca02.deployment-prep.eqiad1.wikimedia.cloud"),
					Parallel: 2, FailureLimit: config.FailureLimit{Count: 1}}}
			},
			wantUnsupported: []string{
				"scap/checks.yaml:14: checks.canary_only",
				"scap/scap.cfg:4: git_repo_user",
				"scap/scap.cfg:5: ssh_user",
				"scap/scap.cfg:8: canary_dsh_targets",
				"scap/scap.cfg:9: eqiad_dsh_targets",
				"scap/scap.cfg:10: codfw_dsh_targets",
				"scap/scap.cfg:11: eqiad_group_size",
				"scap/scap.cfg:18: codfw_failure_limit",
				"scap/scap.cfg:20: tags_to_keep",
			},
		},
		{
			repo: "configs",
			wantGroups: []string{
				"default: eventgate1001.eqiad.wmnet eventgate1002.eqiad.wmnet eventgate1003.eqiad.wmnet",
			},
			want: func(s *config.Service) {
				const dir = "/srv/deployment/eventgate/deploy"
				s.Repo = "eventgate/deploy"
				s.TargetDir = dir
				s.Restart = "sudo -n /usr/sbin/service eventgate restart && sudo -n /usr/sbin/service nginx reload"
				s.PortTimeout = dur(120 * time.Second)
				s.KeepRevs = 5
				s.Checks = []config.Check{{Name: "smoke", Command: scapEnvFor(dir) + "scap/scripts/smoke.sh", Timeout: dur(30 * time.Second)}}
				s.Groups = []config.Group{{Name: "default", Hosts: hosts("eventgate1001.eqiad.wmnet", "eventgate1002.eqiad.wmnet", "eventgate1003.eqiad.wmnet"), Parallel: 3}}
				vars := []string{"scap/vars.yaml"}
				s.ConfigFiles = []config.ConfigFile{
					{Path: "/etc/eventgate/config.yaml", Template: "scap/templates/config.yaml.j2", Vars: vars, OutputFormat: "yaml"},
					{Path: "conf/motd", Template: "scap/templates/motd.erb", Vars: vars, ERBSyntax: true},
				}
			},
			wantUnsupported: []string{
				"scap/checks.yaml:2: checks.endpoints",
				"scap/scap.cfg:6: git_fat",
				"scap/scap.cfg:9: config_files./etc/eventgate/config.yaml.remote_vars",
				"scap/scap.cfg:16: [deploy1001.eqiad.wmnet]",
			},
		},
		{
			repo: "configs", env: "staging", wantEnv: "staging",
			wantGroups: []string{
				"default: eventgate1001.eqiad.wmnet eventgate1002.eqiad.wmnet eventgate1003.eqiad.wmnet",
			},
			want: func(s *config.Service) {
				const dir = "/srv/deployment/eventgate/deploy"
				s.Repo = "eventgate/deploy"
				s.TargetDir = dir
				s.Restart = "sudo -n /usr/sbin/service eventgate restart && sudo -n /usr/sbin/service nginx reload"
				s.PortTimeout = dur(120 * time.Second)
				s.KeepRevs = 5
				s.Checks = []config.Check{{Name: "smoke", Command: scapEnvFor(dir) + "scap/scripts/smoke.sh", Timeout: dur(30 * time.Second)}}
				s.Groups = []config.Group{{Name: "default", Hosts: hosts("eventgate1001.eqiad.wmnet", "eventgate1002.eqiad.wmnet", "eventgate1003.eqiad.wmnet"), Parallel: 3}}
				vars := []string{"scap/vars.yaml", "scap/environments/staging/vars.yaml"}
				s.ConfigFiles = []config.ConfigFile{
					{Path: "/etc/eventgate/config.yaml", Template: "scap/templates/config.yaml.j2", Vars: vars, OutputFormat: "yaml"},
					{Path: "/etc/eventgate/banner.txt", Template: "scap/environments/staging/templates/banner.j2", Vars: vars},
				}
			},
			wantUnsupported: []string{
				"scap/checks.yaml:2: checks.endpoints",
				"scap/environments/staging/config-files.yaml:1: config_files./etc/eventgate/config.yaml.remote_vars",
				"scap/environments/staging/config-files.yaml:6: config_files./etc/eventgate/banner.txt.owner",
				"scap/scap.cfg:6: git_fat",
				"scap/scap.cfg:8: [config_files]",
				"scap/scap.cfg:16: [deploy1001.eqiad.wmnet]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.repo+"/"+tt.env, func(t *testing.T) {
			s, err := Load(os.DirFS("testdata/"+tt.repo), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if s.Environment != tt.wantEnv {
				t.Errorf("Environment = %q, want %q", s.Environment, tt.wantEnv)
			}
			var groups []string
			for _, g := range s.Groups {
				groups = append(groups, g.Name+": "+strings.Join(g.Hosts, " "))
			}
			if !reflect.DeepEqual(groups, tt.wantGroups) {
				t.Errorf("Groups:\n%s\nwant\n%s", strings.Join(groups, "\n"), strings.Join(tt.wantGroups, "\n"))
			}

			svc := base()
			un, err := s.Apply(&svc)
			if err != nil {
				t.Fatal(err)
			}
			want := base()
			tt.want(&want)
			if !reflect.DeepEqual(svc, want) {
				t.Errorf("Apply:\n got %+v\nwant %+v", svc, want)
			}
			var got []string
			for _, u := range un {
				got = append(got, strings.TrimSuffix(u.String(), ": "+u.Why))
				if u.Why == "" || u.Key == "" || u.File == "" {
					t.Errorf("incomplete Unsupported %+v", u)
				}
			}
			if !reflect.DeepEqual(got, tt.wantUnsupported) {
				t.Errorf("Unsupported:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantUnsupported, "\n"))
			}
		})
	}
}

// What the settings say, Load reads: the pieces Apply does not use.
func TestLoadConfigFiles(t *testing.T) {
	s, err := Load(os.DirFS("testdata/configs"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []ConfigFile{
		{Path: "/etc/eventgate/config.yaml", Template: "scap/templates/config.yaml.j2", RemoteVars: "/etc/eventgate/secrets.yaml", OutputFormat: "yaml", File: "scap/scap.cfg", Line: 9},
		{Path: "conf/motd", Template: "scap/templates/motd.erb", ERBSyntax: true, File: "scap/scap.cfg", Line: 12},
	}
	if !s.ConfigDeploy || len(s.ConfigFiles) != len(want) {
		t.Fatalf("ConfigDeploy %v, ConfigFiles %+v", s.ConfigDeploy, s.ConfigFiles)
	}
	for i := range want {
		got := s.ConfigFiles[i]
		if !strings.HasPrefix(got.Source, "<%#") && !strings.HasPrefix(got.Source, "# {{") {
			t.Errorf("%s: Source %q is not the template", got.Path, got.Source)
		}
		got.Source = ""
		if got != want[i] {
			t.Errorf("ConfigFiles[%d] = %+v, want %+v", i, got, want[i])
		}
	}
	if s.Vars["port"] != 8192 || s.Vars["debug"] != false {
		t.Errorf("Vars = %v", s.Vars)
	}
	st, err := Load(os.DirFS("testdata/configs"), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if st.Vars["port"] != 8292 || st.Vars["debug"] != true || st.Vars["service_name"] != "eventgate" {
		t.Errorf("staging Vars = %v", st.Vars)
	}
	if len(st.ConfigFiles) != 2 || st.ConfigFiles[1].Template != "scap/environments/staging/templates/banner.j2" || st.ConfigFiles[1].OutputFormat != "" {
		t.Errorf("staging ConfigFiles = %+v", st.ConfigFiles)
	}
	if s.DefaultName() != "eventgate" {
		t.Errorf("DefaultName = %q", s.DefaultName())
	}
	c := s.Checks[0]
	if c.Name != "endpoints" || c.Type != "nrpe" || c.Stage != "promote" || c.Command != "check_eventgate_endpoints" {
		t.Errorf("Checks[0] = %+v", c)
	}
}

// mapFS is a deploy repository in memory: name → content.
func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "+x ") {
			name, mode = name[3:], 0o755
		}
		m[name] = &fstest.MapFile{Data: []byte(data), Mode: mode}
	}
	return m
}

const minimalCfg = "[global]\ngit_repo: svc/deploy\ndsh_targets: targets\n"

func TestEnvironmentFromScapCfg(t *testing.T) {
	fsys := mapFS(map[string]string{
		"scap/scap.cfg":                         minimalCfg + "environment: beta\n",
		"scap/targets":                          "prod1.example.org\n",
		"scap/environments/beta/targets":        "beta1.example.org\n",
		"scap/environments/beta/vars.yaml":      "a: 1\n",
		"scap/environments/other/scap.cfg":      "[global]\nservice_port: 1\n",
		"scap/environments/other/checks.yaml":   "checks: {}\n",
		"scap/environments/beta/unrelated-file": "x",
	})
	s, err := Load(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Environment != "beta" || len(s.Groups) != 1 || s.Groups[0].Hosts[0] != "beta1.example.org" || s.Vars["a"] != 1 {
		t.Errorf("got environment %q, groups %+v, vars %v", s.Environment, s.Groups, s.Vars)
	}
	// Asked for explicitly, another environment wins.
	s, err = Load(fsys, "other")
	if err != nil {
		t.Fatal(err)
	}
	if s.Environment != "other" || s.Groups[0].Hosts[0] != "prod1.example.org" || s.Keys["service_port"].Value != "1" {
		t.Errorf("got environment %q, groups %+v", s.Environment, s.Groups)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   string
		want  []string // each a substring of one error, in order
	}{
		{"no scap.cfg", map[string]string{"README": ""}, "", []string{"scap/scap.cfg: cannot read"}},
		{"no environment", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n"}, "beta", []string{`environment "beta" does not exist`}},
		{"bad environment", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n"}, "../x", []string{"invalid environment"}},
		{"syntax", map[string]string{"scap/scap.cfg": "[global]\nnot a key\n"}, "", []string{"scap/scap.cfg:2: "}},
		{"no global", map[string]string{"scap/scap.cfg": "[other]\na: b\n"}, "", []string{"no [global] section", "dsh_targets: missing"}},
		{"missing list", map[string]string{"scap/scap.cfg": minimalCfg}, "", []string{`scap/scap.cfg:3: dsh_targets: target list "targets" not found in scap/targets (Scap3 would also look in /etc/dsh/group`}},
		{"absolute list", map[string]string{"scap/scap.cfg": "[global]\ndsh_targets: /etc/dsh/group/x\n"}, "", []string{"/etc/dsh/group/x is outside the deploy repository"}},
		{"escaping list", map[string]string{"scap/scap.cfg": "[global]\ndsh_targets: ../../etc/passwd\n"}, "", []string{"invalid target list"}},
		{"group without list", map[string]string{"scap/scap.cfg": minimalCfg + "server_groups: canary, default\n", "scap/targets": "a\n"}, "", []string{"canary_dsh_targets: missing"}},
		{"group twice", map[string]string{"scap/scap.cfg": minimalCfg + "server_groups: default, default\n", "scap/targets": "a\n"}, "", []string{`group "default" is listed twice`}},
		{"bad checks yaml", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n", "scap/checks.yaml": "checks: [\n"}, "", []string{"scap/checks.yaml: invalid YAML"}},
		{"checks not a mapping", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n", "scap/checks.yaml": "checks:\n  x: 1\n"}, "", []string{"scap/checks.yaml:2: checks.x: want a mapping"}},
		{"bad timeout", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n", "scap/checks.yaml": "checks:\n  x:\n    command: true\n    stage: promote\n    timeout: soon\n"}, "", []string{"scap/checks.yaml:5: checks.x.timeout: invalid timeout"}},
		{"two checks files", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n", "scap/checks.yaml": "checks: {}\n", "scap/checks.yml": "checks: {}\n"}, "", []string{"both scap/checks.yaml and scap/checks.yml exist"}},
		{"bad bool", map[string]string{"scap/scap.cfg": minimalCfg + "config_deploy: maybe\n", "scap/targets": "a\n"}, "", []string{"scap/scap.cfg:4: config_deploy: invalid boolean"}},
		{"missing template", map[string]string{"scap/scap.cfg": minimalCfg + "config_deploy: yes\n", "scap/targets": "a\n", "scap/config-files.yaml": "/etc/x:\n  template: x.j2\n"}, "", []string{`template "x.j2" not found in scap/templates/x.j2`}},
		{"no template key", map[string]string{"scap/scap.cfg": minimalCfg + "config_deploy: yes\n", "scap/targets": "a\n", "scap/config-files.yaml": "/etc/x:\n  remote_vars: /etc/y\n"}, "", []string{"config_files./etc/x: missing template"}},
		{"bad output format", map[string]string{"scap/scap.cfg": minimalCfg + "config_deploy: yes\n", "scap/targets": "a\n", "scap/templates/x": "", "scap/config-files.yaml": "/etc/x:\n  template: x\n  output_format: json\n"}, "", []string{`invalid output_format "json"`}},
		{"bad vars", map[string]string{"scap/scap.cfg": minimalCfg, "scap/targets": "a\n", "scap/vars.yaml": "- a list\n"}, "", []string{"scap/vars.yaml: want a YAML mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(mapFS(tt.files), tt.env)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", s)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not Errors", err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("errors:\n%v\nwant %d: %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d %q does not say %q", i, errs[i], w)
				}
			}
		})
	}
}
