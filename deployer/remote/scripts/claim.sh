# shellcheck shell=sh
# shellcheck disable=SC2154 # op_id, op_pg, op_kind and op_since are set by op_read (op.sh)
# claim.sh: the start of the deploy, finalize and rollback scripts (after
# common.sh and op.sh), before they change anything. When the operation
# file names an operation whose process group is alive (op_alive) —
# another script's, even one with the same op-id — the script prints
#
#   ##deploybot busy <op-id> <pgid> <kind> <unix-time>
#
# with that operation's fields and ends with status 75 (EX_TEMPFAIL),
# having changed nothing. Otherwise, with an operation id, it records its
# own operation in the file (replacing a stale one): "<DEPLOY_OP_ID> <the
# shell's pid, its process group> <DEPLOY_OP_KIND> <unix time>" (when
# deploybot started the session, by its clock: run.sh's started; the
# host's clock when that is empty), written to a temporary file renamed
# over it; its EXIT trap removes the file if it
# still names this operation and this script (a script killed by a signal
# leaves it behind: the group it names is dead, so it is stale). Without
# an id nothing is recorded. The deploy creates <target_dir>-cache for the
# file; finalize and rollback record nothing where it does not exist (they
# have nothing to do there).
#
# Two scripts starting at the same moment could both find no live
# operation: the file protects against operations left running by a
# deploybot that is gone, not against two at once (the deployer's lock).
#
# Prelude variables:
#   DEPLOY_OP_ID    the operation's id ([A-Za-z0-9._-]{1,80}); empty: not
#                   recorded (another live operation still refuses it)
#   DEPLOY_OP_KIND  deploy, finalize or rollback
#
# Uses from run.sh: disarm, started.
# Uses from common.sh: M, root, op_file.
# Uses from op.sh: op_read, op_alive, op_id, op_pg, op_kind, op_since.
: "${DEPLOY_OP_ID?}" "${DEPLOY_OP_KIND?}"
: "${M?}" "${root?}" "${op_file?}"

# op_release removes the operation file if it still names this operation
# and this script.
op_release() {
	if op_read && [ "$op_id" = "$DEPLOY_OP_ID" ] && [ "$op_pg" = "$$" ]; then rm -f "$op_file"; fi
}

if op_read && [ "$op_pg" != "$$" ] && op_alive; then
	printf '%s busy %s %s %s %s\n' "$M" "$op_id" "$op_pg" "$op_kind" "$op_since"
	echo "another deploybot operation is running here: $op_kind $op_id (process group $op_pg); nothing done"
	exit 75
fi
# The service's directories are made as deploy.sh makes the others: with
# umask 022, whatever the login's.
if [ -n "$DEPLOY_OP_ID" ] && { [ -d "$root" ] || { [ "$DEPLOY_OP_KIND" = deploy ] && (umask 022 && mkdir -p "$root"); }; }; then
	[ -n "$started" ] || started=$(date +%s)
	_op="$DEPLOY_OP_ID $$ $DEPLOY_OP_KIND $started"
	# The common case starts one process (mv). When the write or the
	# rename fails, both are done again with their errors captured — cat
	# writes the file, so that a failed write says why (a full file
	# system: "No space left on device"), which the reason ends with.
	if ! { printf '%s\n' "$_op" >"$op_file.$$" && mv -f "$op_file.$$" "$op_file"; } 2>/dev/null; then
		if ! _err=$(printf '%s\n' "$_op" | { cat >"$op_file.$$"; } 2>&1) ||
			! _err=$(mv -f "$op_file.$$" "$op_file" 2>&1); then
			rm -f "$op_file.$$"
			echo "cannot record the operation in $op_file: $(printf '%s\n' "$_err" | tail -n 1)"
			exit 1
		fi
	fi
	trap 'op_release; disarm' EXIT
fi
