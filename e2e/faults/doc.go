// Package faults is deploybot's fault suite (`make faults`): end-to-end
// cases that break something real under a running bot — a target's deploy
// directory on a full file system, the upstream gone during the repository
// update, PostgreSQL restarted under the SAL during !log traffic, a target
// whose clock is two hours off, and the bot SIGKILLed at each point of a
// deploy — and check what the channel saw, what the journal holds and
// what every host runs.
//
// The cases are tests (faults_test.go and beside it) against the real
// binary and real servers: sshd hosts (e2e/fleet), InspIRCd + Anope
// (e2e/ircd, one server for the package), PostgreSQL (e2e/pgsql). Like
// every e2e test they skip when a server is missing, and fail instead in
// CI (CI set). `make faults` runs them alone and lists every case with
// its outcome (scripts/testsummary -cases). Nothing here is used by the
// product.
package faults
