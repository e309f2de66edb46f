package remote

import (
	"embed"
	"fmt"
	"strings"
)

// The shell code run on targets lives in scripts/*.sh, embedded here:
// static POSIX sh fragments, never assembled from values. A script is a
// prelude, one assignment per parameter, each value quoted with
// ShellQuote:
//
//	DEPLOY_DIR=/srv/deployment/citoid/deploy
//	DEPLOY_SHA=0123abcd…
//	DEPLOY_RESTART='systemctl restart citoid'
//
// followed by the fragments it needs, in order (for a deploy: common.sh,
// op.sh, claim.sh, switch.sh, configfiles.sh, done.sh, deploy.sh). Each fragment's header says which prelude
// variables it reads; optional parts (force, submodules, the restart
// command) are shell conditionals on them. Values only ever reach the
// shell as the contents of those variables.
//
// Comment lines and blank lines are dropped when a fragment is loaded
// (they need not travel to every target nor fill the journal), so no line
// of a multi-line string in a fragment may start with '#'.
//
//go:embed scripts/*.sh
var scriptFiles embed.FS

var (
	groupsSh      = loadScript("groups.sh")      // restart_groups, before run.sh and kill.sh
	runSh         = loadScript("run.sh")         // starts every script Conn.Run sends
	killSh        = loadScript("kill.sh")        // kills a process group (Conn.kill's fallback)
	commonSh      = loadScript("common.sh")      // marker prefix and layout
	opSh          = loadScript("op.sh")          // reading the operation file
	claimSh       = loadScript("claim.sh")       // refuse while busy, record the operation
	switchSh      = loadScript("switch.sh")      // promote_to, run_restart
	configFilesSh = loadScript("configfiles.sh") // config_write, config_link
	doneSh        = loadScript("done.sh")        // mark_done, for Finalize and a held Deploy
	deploySh      = loadScript("deploy.sh")      // Deploy
	finalizeSh    = loadScript("finalize.sh")    // Finalize
	rollbackSh    = loadScript("rollback.sh")    // Rollback
	statusSh      = loadScript("status.sh")      // Status, State
	checkSh       = loadScript("check.sh")       // CheckCommand
	stopSh        = loadScript("stop.sh")        // Stop
	opstateSh     = loadScript("opstate.sh")     // Op
)

// deployFuncs are the shell functions of deploy.sh that make each stage
// (and the no-op test), for StageResult.Command.
var deployFuncs = map[string]string{
	StageFetch:    shellFunc(deploySh, "s_fetch"),
	StageCheckout: shellFunc(deploySh, "s_checkout"),
	StageConfig:   shellFunc(deploySh, "s_config"),
	StagePromote:  shellFunc(deploySh, "s_promote"),
	StageRestart:  shellFunc(deploySh, "s_restart"),
	StageNoop:     shellFunc(deploySh, "already_live"),
}

// loadScript returns scripts/<name> without its comment and blank lines.
func loadScript(name string) string {
	b, err := scriptFiles.ReadFile("scripts/" + name)
	if err != nil {
		panic("remote: " + err.Error())
	}
	return stripComments(string(b))
}

// stripComments drops the lines that are blank or only a comment.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// shellFunc returns the definition of function name in script: from its
// line "name() {" to the next line "}". It panics when there is none (a
// broken fragment, caught by the package's tests).
func shellFunc(script, name string) string {
	head := name + "() {\n"
	i := strings.Index(script, head)
	if i < 0 || (i > 0 && script[i-1] != '\n') {
		panic(fmt.Sprintf("remote: no function %s in the deploy script", name))
	}
	n := strings.Index(script[i:], "\n}\n")
	if n < 0 {
		panic(fmt.Sprintf("remote: function %s in the deploy script has no end", name))
	}
	return script[i : i+n+3]
}

// shellVar is one prelude assignment.
type shellVar struct{ name, value string }

// prelude returns the assignments that start a script, one a line, each
// value quoted with ShellQuote (so values must have been validated: no
// NUL byte).
func prelude(vars ...shellVar) string {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v.name)
		b.WriteByte('=')
		b.WriteString(ShellQuote(v.value))
		b.WriteByte('\n')
	}
	return b.String()
}

// boolVar is a prelude flag: "1" or "0".
func boolVar(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
