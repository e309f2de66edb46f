# shellcheck shell=sh
# switch.sh: switching the live revision and restarting the service, for
# the deploy and rollback scripts (after common.sh).
#
# Prelude variables:
#   DEPLOY_DIR      target_dir
#   DEPLOY_RESTART  the restart command (operator's shell code, evaluated,
#                   never spliced); empty: the service has none
#
# Uses from common.sh: M, current, cur_tmp, dir_tmp, restart_log.
: "${DEPLOY_DIR?}" "${DEPLOY_RESTART?}"
: "${M?}" "${current?}" "${cur_tmp?}" "${dir_tmp?}" "${restart_log?}"

# promote_to REL: points current at REL (a path relative to <target_dir>-cache)
# and makes target_dir point at current, each atomically: a symlink under
# a temporary name, renamed over the old one. Returns the status of the
# step that failed (the temporary link removed), 0 on success.
promote_to() {
	# shellcheck disable=SC2015 # the cleanup is meant to run when either step fails
	ln -sfn "$1" "$cur_tmp" && mv -T "$cur_tmp" "$current" || { _rc=$?; rm -f "$cur_tmp"; return "$_rc"; }
	# shellcheck disable=SC3013 # targets' /bin/sh has test -ef (see doc.go)
	if [ -L "$DEPLOY_DIR" ] && [ "$DEPLOY_DIR" -ef "$current" ]; then :; else
		# shellcheck disable=SC2015 # as above
		ln -sfn "$current" "$dir_tmp" && mv -T "$dir_tmp" "$DEPLOY_DIR" || { _rc=$?; rm -f "$dir_tmp"; return "$_rc"; }
	fi
}

# run_restart DIR SHA: runs the restart command in DIR with DEPLOY_REV=SHA
# in its environment (and no positional parameters), its output in the
# restart log (a service it starts in the background may keep that open,
# not our session's output) and the session's stdin closed (fd 3), then
# prints the log's tail with every marker prefix in it defused
# ("##deploybot " becomes "##deploybot: "): what the command or the
# service prints is output, and can neither end the stage nor name a
# revision. The command's status is left in _rc.
#
# The command runs in a session and process group of its own (setsid; the
# background subshell is never a group leader, so setsid does not fork and
# $! is that group), so that what it leaves running — the service — is
# outside the script's group, which the watchdog, a timeout and Stop kill:
# a script that goes on after its restart (a held deploy) can be stopped
# without its service. While the command runs, they kill its group too:
# its /bin/sh's command line holds the line ": deploybot-restart-of <the
# script's pid>", by which restart_groups (groups.sh) finds it. The
# caller brackets it with markers (the deploy's stage restart, the
# rollback's "restart begin" and "restart end"), which tell deploybot that
# a timed-out script may have left one running (Conn.kill).
run_restart() {
	( cd "$1" && DEPLOY_REV=$2 && export DEPLOY_REV && exec setsid /bin/sh -c "
: deploybot-restart-of $$
eval \"set --
\$1\"" deploybot-restart "$DEPLOY_RESTART") >"$restart_log" 2>&1 </dev/null 3<&- &
	wait "$!"
	_rc=$?
	[ ! -s "$restart_log" ] || tail -c 3072 "$restart_log" | sed "s/$M /$M: /g"
}
