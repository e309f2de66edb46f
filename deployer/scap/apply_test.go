package scap

import (
	"fmt"
	"strings"
	"testing"

	"deploybot/config"
)

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
