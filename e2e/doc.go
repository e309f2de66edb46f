// Package e2e holds deploybot's end-to-end tests: they build the real
// binary and run it against real servers on loopback (InspIRCd + Anope from
// e2e/ircd, sshd hosts from e2e/fleet), and check what a person would see in
// the channel and what ends up on disk.
//
// Nothing here is used by the product. The tests need root and the
// packages of scripts/install-deps.sh; outside CI they skip when a server
// is missing, in CI (CI set, as `make test` does) they fail naming it.
package e2e
