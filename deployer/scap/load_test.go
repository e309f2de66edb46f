package scap

import (
	"errors"
	"fmt"
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
			},
			wantUnsupported: []string{
				"scap/checks.yaml:2: checks.endpoints",
				"scap/scap.cfg:6: git_fat",
				"scap/scap.cfg:9: config_files./etc/eventgate/config.yaml",
				"scap/scap.cfg:12: config_files.conf/motd",
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
			},
			wantUnsupported: []string{
				"scap/checks.yaml:2: checks.endpoints",
				"scap/environments/staging/config-files.yaml:1: config_files./etc/eventgate/config.yaml",
				"scap/environments/staging/config-files.yaml:4: config_files./etc/eventgate/banner.txt",
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

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name  string
		extra string            // appended to minimalCfg
		files map[string]string // besides scap.cfg and scap/targets
		want  string
	}{
		{"no git_repo", "git_repo:\n", nil, "git_repo: missing"},
		{"relative deploy dir", "git_deploy_dir: srv\n", nil, "git_deploy_dir: invalid directory"},
		{"bad port", "service_name: svc\nservice_port: http\n", nil, "service_port: invalid port"},
		{"bad timeout", "service_name: svc\nservice_port: 80\nservice_timeout: -1\n", nil, "service_timeout: invalid timeout"},
		{"bad action", "service_name: svc=stop\n", nil, `unknown action "stop"`},
		{"empty service", "service_name: svc,\n", nil, "an empty service name"},
		{"bad failure limit", "failure_limit: many\n", nil, "failure_limit: invalid failure limit"},
		{"negative failure limit", "failure_limit: -1%\n", nil, "invalid failure limit"},
		{"bad batch", "batch_size: 0\n", nil, "batch_size: must be at least 1"},
		{"bad group size", "group_size: x\n", nil, "group_size: invalid number"},
		{"bad cache_revs", "cache_revs: 0\n", nil, "cache_revs: must be at least 1"},
		{"bad host", "", map[string]string{"scap/targets": "under_score.example.org\n"}, "invalid host"},
		{"bad group name", "server_groups: bad!\nbad!_dsh_targets: targets\n", nil, `group name "bad!"`},
		{"no command", "", map[string]string{"scap/checks.yaml": "checks:\n  x:\n    stage: promote\n"}, "checks.x: missing command"},
		{"unsplittable command", "", map[string]string{"scap/checks.yaml": "checks:\n  x:\n    stage: promote\n    command: echo 'oops\n"}, "no closing quotation"},
		{"missing script", "", map[string]string{"scap/checks.yaml": "checks:\n  x:\n    type: script\n    stage: promote\n    command: nope.sh\n"}, "scap/scripts/nope.sh is not an executable file"},
		{"script not executable", "", map[string]string{"scap/scripts/s.sh": "#!/bin/sh\n", "scap/checks.yaml": "checks:\n  x:\n    type: script\n    stage: promote\n    command: s.sh\n"}, "scap/scripts/s.sh is not an executable file"},
		{"check names clash", "", map[string]string{"scap/checks.yaml": "checks:\n  Info:\n    stage: promote\n    command: a\n  info:\n    stage: promote\n    command: b\n"}, "deploybot check names are lowercase and unique"},
		{"no hosts", "", map[string]string{"scap/targets": "# nobody\n"}, "no hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"scap/scap.cfg": strings.Replace(minimalCfg+tt.extra, "git_repo: svc/deploy\n", "", strings.Count(tt.extra, "git_repo:")), "scap/targets": "host1.example.org\nhost2.example.org\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			s, err := Load(mapFS(files), "")
			if err != nil {
				t.Fatal(err)
			}
			svc := base()
			before := fmt.Sprintf("%+v", svc)
			_, err = s.Apply(&svc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply error %v, want one saying %q", err, tt.want)
			}
			if after := fmt.Sprintf("%+v", svc); after != before {
				t.Errorf("a failed Apply changed the service:\n%s\n%s", before, after)
			}
		})
	}
}

// The mapping of each setting, one at a time.
func TestApplyMapping(t *testing.T) {
	targets := "h1.example.org\nh2.example.org\nh3.example.org\nh4.example.org\nh5.example.org\n"
	tests := []struct {
		name  string
		extra string
		files map[string]string
		check func(t *testing.T, s *config.Service, un []Unsupported)
	}{
		{"defaults", "", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			g := s.Groups[0]
			if s.TargetDir != "/srv/deployment/svc/deploy" || s.KeepRevs != 5 || s.Restart != "" || s.Port != 0 || s.Submodules ||
				len(s.Groups) != 1 || g.Name != "default" || g.Parallel != 5 || g.FailureLimit != (config.FailureLimit{}) || g.Pause || len(un) != 0 {
				t.Errorf("got %+v, %v", s, un)
			}
		}},
		{"batch", "batch_size: 100\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Groups[0].Parallel != 5 {
				t.Errorf("parallel %d", s.Groups[0].Parallel)
			}
		}},
		{"stage batch", "batch_size: 4\nfetch_batch_size: 2\npromote_batch_size: 3\nrollback_batch_size: 1\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Groups[0].Parallel != 2 {
				t.Errorf("parallel %d, want the smallest batch size, 2", s.Groups[0].Parallel)
			}
			if keys := keysOf(un); keys != "promote_batch_size rollback_batch_size" {
				t.Errorf("unsupported %s", keys)
			}
		}},
		{"percent to count", "failure_limit: 50.5%\ngroup_size: 4\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			// 50.5% of 4 hosts is 2 (rounded down), of 1 host 0.
			if len(s.Groups) != 2 || s.Groups[0].FailureLimit != (config.FailureLimit{Count: 2}) || s.Groups[1].FailureLimit != (config.FailureLimit{}) ||
				s.Groups[0].Name != "default1" || s.Groups[1].Name != "default2" || !s.Groups[1].Pause || s.Groups[0].Pause {
				t.Errorf("groups %+v", s.Groups)
			}
			if keys := keysOf(un); keys != "group_size" {
				t.Errorf("unsupported %s", keys)
			}
		}},
		{"count clamped", "failure_limit: 9\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Groups[0].FailureLimit != (config.FailureLimit{Count: 5}) {
				t.Errorf("failure limit %v", s.Groups[0].FailureLimit)
			}
		}},
		{"per-group failure limit", "failure_limit: 1\ndefault_failure_limit: 2\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Groups[0].FailureLimit != (config.FailureLimit{Count: 2}) || len(un) != 0 {
				t.Errorf("failure limit %v, %v", s.Groups[0].FailureLimit, un)
			}
		}},
		{"canary later, lenient", "server_groups: default, canary\ncanary_dsh_targets: canary\nfailure_limit: 1\nbatch_size: 1\n",
			map[string]string{"scap/canary": "c1.example.org\nc2.example.org\n"}, func(t *testing.T, s *config.Service, un []Unsupported) {
				if len(s.Canary) != 2 || len(s.Groups) != 1 || !s.Groups[0].Pause || s.Groups[0].Parallel != 1 {
					t.Errorf("canary %v groups %+v", s.Canary, s.Groups)
				}
				if keys := keysOf(un); keys != "server_groups canary_dsh_targets failure_limit" {
					t.Errorf("unsupported %s", keys)
				}
			}},
		{"port without service", "service_port: 80\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Port != 0 || keysOf(un) != "service_port" {
				t.Errorf("port %d, %v", s.Port, un)
			}
		}},
		{"quoted service", "service_name: a;b\n", nil, func(t *testing.T, s *config.Service, un []Unsupported) {
			if s.Restart != "sudo -n /usr/sbin/service 'a;b' restart" {
				t.Errorf("restart %q", s.Restart)
			}
		}},
		{"unknown and conditional keys", "git_fat: false\ngit_upstream_submodules: yes\nfancy: 1\nmystery_dsh_targets: x\nperform_checks: no\n",
			map[string]string{"scap/checks.yaml": "checks:\n  a:\n    stage: promote\n    command: x\n"}, func(t *testing.T, s *config.Service, un []Unsupported) {
				if keys := keysOf(un); keys != "git_upstream_submodules fancy mystery_dsh_targets perform_checks" {
					t.Errorf("unsupported %s", keys)
				}
				if len(s.Checks) != 0 {
					t.Errorf("checks %+v with perform_checks: no", s.Checks)
				}
			}},
		{"check stages", "", map[string]string{"scap/checks.yaml": `checks:
  after_promote: {stage: promote, command: a}
  after_restart: {after: handle_service, command: b}
  before_restart: {before: restart_service, command: c}
  before_promote: {before: promote, command: d}
  after_finalize: {stage: finalize, command: e}
  new_stage: {stage: warp, command: f}
  no_stage: {command: g}
  logstash: {type: logstash, stage: promote, command: h}
  extra: {stage: promote, command: i, description: hello}
`}, func(t *testing.T, s *config.Service, un []Unsupported) {
			var names []string
			for _, c := range s.Checks {
				names = append(names, c.Name)
			}
			if strings.Join(names, " ") != "after_promote after_restart before_restart extra" {
				t.Errorf("checks %v", names)
			}
			if keys := keysOf(un); keys != "checks.before_promote checks.after_finalize checks.new_stage checks.no_stage checks.logstash checks.extra.description" {
				t.Errorf("unsupported %s", keys)
			}
		}},
		{"empty group", "server_groups: canary, default\ncanary_dsh_targets: canary\n",
			map[string]string{"scap/canary": "h1.example.org\nh2.example.org\nh3.example.org\nh4.example.org\nh5.example.org\n"}, func(t *testing.T, s *config.Service, un []Unsupported) {
				if len(s.Canary) != 5 || len(s.Groups) != 0 {
					t.Errorf("canary %v groups %+v", s.Canary, s.Groups)
				}
				if keys := keysOf(un); keys != "dsh_targets dsh_targets" {
					t.Errorf("unsupported %s", keys)
				}
			}},
		{"host section and default section", "", map[string]string{"scap/scap.cfg": "[DEFAULT]\ncache_revs: 2\n[global]\ngit_repo: svc/deploy\ndsh_targets: targets\n[eqiad.wmnet]\ncache_revs: 9\n"},
			func(t *testing.T, s *config.Service, un []Unsupported) {
				if s.KeepRevs != 2 || keysOf(un) != "[eqiad.wmnet]" {
					t.Errorf("keep_revs %d, %v", s.KeepRevs, un)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"scap/scap.cfg": minimalCfg + tt.extra, "scap/targets": targets}
			for k, v := range tt.files {
				files[k] = v
			}
			s, err := Load(mapFS(files), "")
			if err != nil {
				t.Fatal(err)
			}
			svc := base()
			un, err := s.Apply(&svc)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &svc, un)
		})
	}
}

func keysOf(un []Unsupported) string {
	var keys []string
	for _, u := range un {
		keys = append(keys, u.Key)
	}
	return strings.Join(keys, " ")
}
