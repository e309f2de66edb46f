// Package deployer is the deployment engine: it updates a service's deploy
// repository, ships the revision to the canary and then to each group of
// targets over SSH, restarts, checks, finalizes or rolls back, and keeps a
// journal of every step.
//
// It knows nothing of IRC or of the Server Admin Log: it reports through
// events and asks questions through a small prompt interface, so the bot
// answers in a channel and the command line on a terminal.
//
// The engine itself is not built yet; this package holds its place in the
// layout.
package deployer
