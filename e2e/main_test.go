package e2e

import (
	"os"
	"os/exec"
	"testing"

	"deploybot/e2e/harness"
	"deploybot/e2e/ircd"
)

// binary is the deploybot binary built for this test run.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(simBotEnv) != "" {
		os.Exit(simBotMain()) // the bot process of the simulated-fleet benchmark
	}
	harness.Main(m, &binary, &shared)
}

// shared is one IRC server for the whole package (with TLS).
var shared = harness.SharedServer{Options: ircd.Options{TLS: true}}

// bot is a running `deploybot serve`.
type bot = harness.Bot

// startBot writes config and files (name → content) into a fresh
// directory and runs `deploybot serve` on that config until the test ends.
func startBot(t testing.TB, config string, files map[string]string) *bot {
	t.Helper()
	return harness.StartBot(t, binary, config, files)
}

// runBot starts cmd, a `deploybot serve` of config; see harness.RunBot.
func runBot(t testing.TB, cmd *exec.Cmd, config, dir string) *bot {
	t.Helper()
	return harness.RunBot(t, cmd, config, dir)
}

var (
	freeAddr  = harness.FreeAddr
	inChannel = harness.InChannel
)
