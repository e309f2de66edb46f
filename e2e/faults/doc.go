// Package faults is deploybot's fault suite (`make faults`): end-to-end
// cases that break something real under a running bot, each checking what
// the channel saw, what the journal holds and what every host runs:
//
//   - diskfull_test.go: a target's deploy cache (<target_dir>-cache) on a
//     full tmpfs mounted where its SSH sessions see it: that host fails
//     with "No space left on device", !rollback restores the others, and
//     with space freed the next deploy goes through;
//   - upstream_test.go: the upstream gone during the repository update;
//   - pgrestart_test.go: PostgreSQL restarted under the SAL during a
//     stream of !log lines: each answered once, stored once, in order;
//   - clock_test.go: targets whose clocks are two hours ahead and behind
//     (libfaketime in their SSH sessions): deploys succeed, and a bot
//     killed mid-restart on each is recovered, what it left running there
//     found and stopped;
//   - kill_test.go: the bot SIGKILLed at eight points of a deploy (after
//     the repo update, mid-fetch, mid-promote on the canary, during canary
//     checks, while a prompt waits, mid-group, during rollback, during
//     finalize), then !rollback or !continue leaving every host on one
//     revision with the service answering it.
//
// The cases run the real binary against real servers: sshd hosts
// (e2e/fleet), InspIRCd + Anope (e2e/ircd, one server for the package),
// PostgreSQL (e2e/pgsql), through e2e/harness. Like every e2e test they
// skip when a server is missing, and fail instead in CI (CI set). `make
// faults` runs them alone and lists every case with its outcome
// (scripts/testsummary -cases). Nothing here is used by the product.
package faults
