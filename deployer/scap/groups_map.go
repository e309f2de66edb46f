package scap

import (
	"math"
	"strconv"
	"strings"

	"deploybot/config"
)

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
