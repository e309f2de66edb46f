# shellcheck shell=sh
# shellcheck disable=SC2154 # op_id, op_pg, op_kind, op_since and op_state are set by op_read and op_mark (op.sh)
# stop.sh: stops the operation recorded in the operation file (Conn.Stop,
# Target.StopScript), after common.sh and op.sh. It prints what the file
# names (op_mark), then:
#   - nothing recorded: nothing to do;
#   - a dead operation (stale file): the file is removed;
#   - another live operation than DEPLOY_STOP_OP: the "busy" marker (as
#     claim.sh prints it) and exit status 75, nothing touched;
#   - the live operation: TERM to its process group (and to the group of
#     the restart command it is running, if any: restart_groups, groups.sh),
#     up to DEPLOY_STOP_GRACE milliseconds for them to be gone, then KILL
#     and up to 5 s more; once gone, the file is removed. What a restart
#     command that ended left running (the service) is not in those
#     groups: a deploy stopped after its restart leaves its service up.
# The last line is the marker "stop <signal> <milliseconds> gone|alive":
# the signal sent last (none, TERM or KILL), how long it waited for the
# group, and whether the group is gone. A group still alive after KILL
# (a process stuck in the kernel) keeps its file and ends the script with
# status 1.
#
# Prelude variables:
#   DEPLOY_STOP_OP     the operation to stop; empty: whatever is recorded
#   DEPLOY_STOP_GRACE  milliseconds between TERM and KILL (0: at once)
#
# Uses from groups.sh (before run.sh): restart_groups.
# Uses from common.sh: M, op_file, now.
# Uses from op.sh: op_read, op_mark, op_id, op_pg, op_kind, op_since,
# op_state.
: "${DEPLOY_STOP_OP?}" "${DEPLOY_STOP_GRACE?}"
: "${M?}" "${op_file?}"

# op_forget removes the operation file if it still names operation $1
# and group $2.
op_forget() {
	if op_read && [ "$op_id" = "$1" ] && [ "$op_pg" = "$2" ]; then rm -f "$op_file"; fi
}

# group_wait N: waits up to N tenths of a second for group op_pg and the
# restart groups _rg to be gone; false if they are not.
group_wait() {
	_n=$1
	while groups_alive; do
		[ "$_n" -gt 0 ] || return 1
		sleep 0.1
		_n=$((_n - 1))
	done
}

# groups_alive: whether group op_pg or one of the groups _rg is alive.
groups_alive() {
	for _g in "$op_pg" $_rg; do
		! kill -s 0 -- "-$_g" 2>/dev/null || return 0
	done
	return 1
}

# signal_groups SIG: sends SIG to group op_pg and the groups _rg.
signal_groups() {
	for _g in "$op_pg" $_rg; do kill -s "$1" -- "-$_g" 2>/dev/null; done
}

op_mark
case $op_state in
none)
	printf '%s stop none 0 gone\n' "$M"
	exit 0
	;;
dead)
	op_forget "$op_id" "$op_pg"
	echo "$op_kind $op_id (process group $op_pg) is not running: operation file removed"
	printf '%s stop none 0 gone\n' "$M"
	exit 0
	;;
esac
if [ -n "$DEPLOY_STOP_OP" ] && [ "$op_id" != "$DEPLOY_STOP_OP" ]; then
	printf '%s busy %s %s %s %s\n' "$M" "$op_id" "$op_pg" "$op_kind" "$op_since"
	echo "another deploybot operation is running here: $op_kind $op_id (process group $op_pg); not stopping it"
	exit 75
fi
now
_t0=$NOW
_sig=TERM
_rg=$(restart_groups "$op_pg")
signal_groups TERM
if ! group_wait $(((DEPLOY_STOP_GRACE + 99) / 100)); then
	_sig=KILL
	signal_groups KILL
	group_wait 50
fi
_rc=$?
now
if [ "$_rc" -ne 0 ]; then
	echo "process group $op_pg of $op_kind $op_id is still alive after KILL"
	printf '%s stop %s %s alive\n' "$M" "$_sig" "$((NOW - _t0))"
	exit 1
fi
op_forget "$op_id" "$op_pg"
echo "stopped $op_kind $op_id (process group $op_pg) with $_sig"
printf '%s stop %s %s gone\n' "$M" "$_sig" "$((NOW - _t0))"
