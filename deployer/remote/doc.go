// Package remote is everything deploybot does ON a deploy target: the SSH
// connection to it, the stage scripts run there, and the health checks.
//
// What lives here:
//
//   - Dialer and Conn: SSH connections over golang.org/x/crypto/ssh,
//     authenticated with a key file and/or the ssh-agent, host keys checked
//     against known_hosts (a mismatch is a *HostError saying so), with
//     timeouts on the dial and on every command, and keepalives that close
//     a Conn whose peer has gone silent. One Conn per host is meant to be
//     reused for every step of a deploy; a Dialer and a Conn are safe for
//     concurrent use. The caller bounds how many hosts it works on at once.
//   - Target and the stage scripts: Scap3's layout on the target
//     (<target_dir>-cache/cache, revs/<sha>, the current and <target_dir>
//     symlinks, .done, .history, .deploying), built as POSIX sh scripts from
//     validated values only, every value quoted with ShellQuote. A deploy
//     (fetch, checkout, promote, restart) is ONE SSH session running ONE
//     script that prints machine-readable stage markers, so the caller still
//     gets a StageResult per stage for its journal (see "Stage markers"
//     below). Finalize, Rollback and State are one session each.
//   - Checks: the port check and HTTP checks run through the SSH connection
//     to the target's own loopback (ssh.Client.Dial: no session, no tool
//     needed on the target); command checks are one session each.
//
// What does not live here: the orchestration of canary and groups,
// failure limits, locks and the journal (package deployer), the deploy
// repository and the HTTP server targets fetch from (the deploy host), and
// anything about IRC.
//
// # Layout on a target
//
// For target_dir /srv/deployment/citoid/deploy (C below is
// /srv/deployment/citoid/deploy-cache):
//
//	C/cache                 bare git repository, fetched over (dumb) HTTP from
//	                        <serve_url>/<repo>/.git; refs/deploybot/revs/<sha>
//	                        keeps every checked-out revision's objects alive
//	C/revs/<sha>            a checkout of <sha> (its objects borrowed from
//	                        C/cache through objects/info/alternates), with
//	                        submodules cloned from
//	                        <serve_url>/<repo>/.git/modules/<name>
//	C/current -> revs/<sha> the live revision (relative symlink)
//	target_dir -> C/current (absolute symlink)
//	C/.done                 the last revision marked done (Finalize)
//	C/.history              the done revisions kept, oldest first, one a line
//	C/.deploying            the revision being deployed (removed by Finalize
//	                        and Rollback)
//	C/.restart.log          the last restart command's output
//
// Symlinks are switched atomically: ln -sfn to a temporary name, then
// mv -T over the old one (GNU coreutils). A revision directory is checked
// out under a temporary name and renamed into place when complete, so
// revs/<sha> existing means it is complete.
//
// # Stage markers
//
// Every script run by Conn.Run starts with `exec 2>&1` (stdout and stderr
// arrive in order on one stream) and prints, as its first line,
//
//	##deploybot pid <pid>
//
// the pid of the shell, which sshd made a session and process-group
// leader: it lets a command that outlives its timeout be killed with its
// whole process group. The deploy script then brackets each stage:
//
//	##deploybot begin <stage>
//	... the stage's output ...
//	##deploybot end <stage> <exit code> <milliseconds>
//
// with stages fetch, checkout, promote and restart (restart only when the
// target has a restart command); the first stage that fails ends the
// script with its exit code. A deploy of the revision that is already
// current and done prints only
//
//	##deploybot noop <sha>
//
// Other markers: "##deploybot rev <sha>" (the revision Rollback restores,
// followed by "noop" when it already was current), and "##deploybot
// current|done|deploying <sha or nothing>" (Status, State). A marker need
// not start its line: text before it on the same line belongs to the stage
// that was running. It must end its line and be exactly in the form above
// (one space between words, numbers in decimal, stage names in lowercase
// letters); a line that only looks like one, or a marker cut off before
// its newline, is output. Durations are measured on the target from /proc/uptime
// (10 ms resolution, no process forked for it). The script's exit status
// is authoritative: a deploy succeeded only if it is 0 and every stage
// reported its end.
//
// # Sessions per host
//
// Every SSH session costs the target tens of milliseconds of CPU, so a
// whole deploy of one host is: one session for fetch+checkout+promote+
// restart (Deploy), none for the port and HTTP checks (channels on the same
// connection), one per command check (CheckCommand), and one for Finalize
// after all groups succeed — or one for Rollback.
//
// # Targets
//
// Targets need a POSIX /bin/sh with test -ef (dash, bash, busybox ash), git
// (2.x), GNU coreutils (mv -T, ln -sfn, readlink, tail -c) and the login
// user's shell able to run `exec /bin/sh -c '...'`.
package remote
