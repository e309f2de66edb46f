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
//     symlinks, .done, .history, .deploying), managed by POSIX sh scripts
//     (see "Scripts" below). A deploy (fetch, checkout, promote, restart)
//     is ONE SSH session running ONE script that prints machine-readable
//     stage markers, so the caller still gets a StageResult per stage for
//     its journal (see "Stage markers" below). Held (DeployHeld), that
//     session then waits while the caller checks the host, and runs the
//     finalize stage in it once the host has passed (see "Sessions per
//     host"). Finalize, Rollback and State are one session each.
//   - Operations on a target, owned and stoppable: the operation file that
//     records the deploy, finalize or rollback running on a service and
//     refuses another while it lives (*BusyError), Op and Stop, and the
//     watchdog that kills a script whose session is gone (see "Operations
//     and recovery" below).
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
//	                        keeps every checked-out revision's objects alive,
//	                        refs/deploybot/modules/<sha>/<commit> the commits
//	                        of its submodules, fetched into C/cache from
//	                        <serve_url>/<repo>/.git/modules/<name> when new
//	C/revs/<sha>            a checkout of <sha> (its objects borrowed from
//	                        C/cache through objects/info/alternates); each
//	                        submodule a repository of its own in its
//	                        directory, borrowing C/cache's objects too
//	C/revs/<sha>/.git/config-files/<P>
//	                        the rendered config file of absolute path P
//	                        (Target.ConfigFiles, the config stage); P is a
//	                        symlink to C/current/.git/config-files/<P>,
//	                        made at promote
//	C/current -> revs/<sha> the live revision (relative symlink)
//	target_dir -> C/current (absolute symlink)
//	C/.done                 the last revision marked done (Finalize)
//	C/.history              the done revisions kept, oldest first, one a line
//	C/.deploying            the revision being deployed (removed by Finalize
//	                        and Rollback)
//	C/.restart.log          the last restart command's output
//	C/.deploybot-op         the operation running (see "Operations and
//	                        recovery")
//
// Symlinks are switched atomically: ln -sfn to a temporary name, then
// mv -T over the old one (GNU coreutils). A revision directory is checked
// out under a temporary name and renamed into place when complete, so
// revs/<sha> existing means it is complete.
//
// # Scripts
//
// The shell code run on targets lives in scripts/*.sh, embedded in the
// binary (go:embed): fragments of static POSIX sh, checked by shellcheck
// (make lint). A script sent to a target is a generated prelude, one
// assignment per parameter, each value validated and quoted with
// ShellQuote,
//
//	DEPLOY_DIR='/srv/deployment/citoid/deploy'
//	DEPLOY_SHA=0123456789abcdef0123456789abcdef01234567
//	DEPLOY_RESTART='systemctl restart citoid'
//
// followed by the fragments it needs: common.sh (the marker prefix and
// the layout), op.sh (reading the operation file), claim.sh (refusing to
// start while another operation lives, recording this one; for deploy,
// finalize and rollback), switch.sh (promote and restart, shared by
// deploy and rollback), done.sh (marking a revision done, shared by
// finalize and a held deploy), then deploy.sh, finalize.sh, rollback.sh,
// status.sh, check.sh, stop.sh or opstate.sh; kill.sh is Conn.Run's last
// resort against a command that outlives its timeout, and run.sh the
// start of every script (below).
// Each fragment's header lists the prelude variables it reads. No value
// is ever spliced into the code: optional parts (force, submodules, the
// restart stage) are shell conditionals on the prelude's variables, and
// the operator's restart and check commands are run with eval from
// theirs. StageResult.Command is, for a deploy stage, the prelude and the
// stage's shell function; for the other scripts, the whole script.
//
// # Stage markers
//
// Every script run by Conn.Run starts with run.sh: stdout and stderr
// arrive in order on one stream, the script's stdin is /dev/null, a
// watchdog is started (see "Operations and recovery"), and the first line
// is
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
// script with its exit code. A stage's end marker is printed together
// with what follows it (the next begin marker, the hold marker): one
// write instead of two, so fewer SSH packets. A held deploy whose stages
// all succeeded then prints
//
//	##deploybot hold
//
// and waits for one line on its stdin: "finalize" runs the stage
// finalize, bracketed like the others; anything else, or end-of-file,
// ends the script. A deploy of the revision that is already current and
// done prints only
//
//	##deploybot noop <sha>
//
// Other markers: "##deploybot restart begin|end" around the rollback's
// restart command (see "Process groups"), "##deploybot rev <sha>" (the
// revision Rollback restores, followed by "noop" when it already was
// current), "##deploybot current|done|deploying <sha or nothing>"
// (Status, State), and those of the operation file:
//
//	##deploybot op <op-id> <pgid> <kind> <unix-time> alive|dead
//	##deploybot op none
//	##deploybot busy <op-id> <pgid> <kind> <unix-time>
//	##deploybot stop none|TERM|KILL <milliseconds> gone|alive
//
// (what the file names, Op and Stop; the live operation that refused a
// script, which then exits with status 75; what Stop did). A marker need
// not start its line: text before it on the same line belongs to the stage
// that was running. It must end its line and be exactly in the form above
// (one space between words, numbers in decimal, stage names in lowercase
// letters); a line that only looks like one, or a marker cut off before
// its newline, is output. The only output not written by the scripts
// themselves, the restart command's (and the service's, which shares its
// log: C/.restart.log, whose tail is printed once the command has ended),
// reaches the stream with "##deploybot " turned into "##deploybot: ", so
// it cannot end a stage or name a revision, however it is written.
// Durations are measured on the target from /proc/uptime
// (10 ms resolution, no process forked for it). The script's exit status
// is authoritative: a deploy succeeded only if it is 0 and every stage
// reported its end.
//
// # Sessions per host
//
// Every SSH session costs the target tens of milliseconds of CPU, so a
// whole deploy of one host is: one session for fetch+checkout+promote+
// restart (Deploy), none for the port and HTTP checks (channels on the
// same connection; an HTTP check to the address a port check just reached
// sends its request on that check's channel), one per command check
// (CheckCommand), and one for Finalize once the host passed — and one for
// Rollback if the deploy is undone. Op and Stop are one session each.
//
// A caller that finalizes each host as soon as it passes saves the
// Finalize session (the engine does, when it finalizes early):
// DeployHeld keeps the deploy's session open after its last stage, the
// script waiting in deploy.sh's hold with its watchdog stopped and its
// operation still recorded, while the caller runs its checks over the
// same connection; Held.Finalize then sends "finalize", and the script
// marks the revision done and ends; Held.Release (a failed check) sends
// end-of-file, and the script ends with the revision live but not done,
// as after Deploy. A deploybot that dies meanwhile closes the connection:
// the script reads end-of-file and ends the same way. A finalize that
// outlives its timeout is killed with the script's process group, and a
// recovery's Stop of the held operation stops that group: neither
// reaches the service, which runs in the restart command's own group
// (see "Process groups" below).
//
// # Process groups
//
// sshd makes each script a session and process-group leader; the
// watchdog, a command timeout (Conn.Run, Held.Finalize) and Stop kill
// that group. The restart command runs in a session and group of its
// own (setsid, from switch.sh's run_restart), whose leader's command line
// names the script that started it (scripts/groups.sh): while that
// leader runs, each of those kills reaches its group too (a restart that
// hangs is stopped with its script); once it has ended, what it left
// running — the service — is in no group any of them kills. The stage
// restart (a deploy) or the markers "restart begin" and "restart end" (a
// rollback) bracket it, so that Conn.Run, when it kills a script that was
// restarting, also kills the restart's group from a second session
// (scripts/kill.sh).
//
// # Operations and recovery
//
// A deploybot that dies mid-deploy (SIGKILL, a crash, a lost connection)
// must not leave scripts running on its targets that a recovery would
// race: a rollback declared done, then a restart of the abandoned
// revision. Two mechanisms see to it.
//
// The watchdog (scripts/run.sh). Conn.Run keeps the session's stdin open,
// writing nothing (but a held deploy's word), until the session has ended (x/crypto/ssh would
// otherwise send end-of-file at once). Every script starts a background
// subshell in its process group, with its output on /dev/null so that it
// never holds the session open, that waits for end-of-file on that stdin:
// it comes while the script still runs only when the session is gone —
// the deploying process died (the kernel closes its connection), the
// connection dropped, Run gave up on the command — and the watchdog then
// sends TERM to the script's process group, and KILL 2 s later. A script
// that ends by itself disarms the watchdog from its EXIT trap, so what it
// left running keeps running. The watchdog needs sshd to notice the end
// of the connection: a peer that vanishes without a FIN or RST (a network
// partition) leaves it waiting until TCP gives up. Recovery does not
// depend on it.
//
// The operation file C/.deploybot-op. When Target.OpID is set, the
// deploy, finalize and rollback scripts record their operation in it
// before doing anything (scripts/claim.sh), one line
//
//	<op-id> <pgid> <kind> <unix-time>
//
// (the deploybot operation, the script's process group, deploy, finalize
// or rollback, when it started), written to a temporary file renamed over
// it, and remove it when they end if it still names them. A script that
// finds it naming a live operation (another script's process group, even
// one with the same op-id) prints the busy marker and exits with status
// 75 (ExitBusy), having changed nothing; Deploy, Finalize and Rollback return a *BusyError naming that
// operation. A file whose group is dead is stale and simply replaced. A
// group is taken for the operation's only if its leader, while alive,
// runs a script whose prelude names the operation (its
// /proc/<pgid>/cmdline), so a group number reused by an unrelated process
// is not mistaken for it. Two operations starting at the same moment are
// not excluded by the file: the deployer's lock does that.
//
// Recovery: Op reads the file (and whether its group is alive) without
// changing anything; Stop stops the operation it names — TERM to its
// process group (and to its restart command's, while one runs), KILL
// after a grace, until kill -0 fails — and removes the file, then the
// rollback can run. The watchdog usually has killed the
// group already, in which case Stop only removes the stale file.
//
// # Targets
//
// Targets need a POSIX /bin/sh with test -ef (dash, bash, busybox ash), git
// (2.x), GNU coreutils (mv -T, ln -sfn, readlink, tail -c, date +%s,
// sleep 0.1), grep (-F, -x, -l), /proc (Linux; without it, operations
// are told apart by process group alone), setsid (util-linux or busybox: the
// restart command's own session) and the login user's shell able to run
// `exec /bin/sh -c '...' deploybot <unix time>` (the time, deploybot's
// clock at the session's start, is what the operation file records).
package remote
