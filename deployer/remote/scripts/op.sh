# shellcheck shell=sh
# op.sh: reading the operation file, for claim.sh, stop.sh and opstate.sh
# (after common.sh). The operation file <target_dir>-cache/.deploybot-op
# names the deploy, finalize or rollback running on the service here: one
# line
#
#   <op-id> <pgid> <kind> <unix-time>
#
# (the deploybot operation, the process group of its script, deploy,
# finalize or rollback, when it started), written by claim.sh.
#
# Prelude variables: none.
#
# Uses from common.sh: M, op_file.
#
# Defines (for the fragments after it):
#   op_read   reads op_file into op_id, op_pg, op_kind and op_since; false
#             when there is none or it is not such a line
#   op_alive  whether process group op_pg is alive and still the
#             operation's (see below)
#   op_mark   op_read and op_alive, printing what they found as the marker
#             "op <op-id> <pgid> <kind> <unix-time> alive|dead", or
#             "op none"; sets op_state to alive, dead or none
: "${M?}" "${op_file?}"

op_read() {
	op_id='' op_pg='' op_kind='' op_since=''
	[ -f "$op_file" ] || return 1
	read -r op_id op_pg op_kind op_since _op_more <"$op_file" 2>/dev/null || [ -n "$op_id" ] || return 1
	case $op_id in '' | *[!A-Za-z0-9._-]*) return 1 ;; esac
	# Never 0 or 1: kill -s 0 -- -1 would be every process we may signal.
	case $op_pg in '' | 0* | 1 | *[!0-9]*) return 1 ;; esac
	case $op_kind in '' | *[!a-z]*) return 1 ;; esac
	case $op_since in '' | *[!0-9]*) return 1 ;; esac
}

# op_alive: the group exists (kill -s 0), and its leader, while it lives,
# runs the script of op_id (its command line holds the prelude line
# DEPLOY_OP_ID=<op-id>): a group whose number was reused by an unrelated
# process is not the operation. A group whose leader is gone (or without
# /proc) is taken for the operation's.
op_alive() {
	kill -s 0 -- "-$op_pg" 2>/dev/null || return 1
	[ -r "/proc/$op_pg/cmdline" ] || return 0
	grep -qxF -e "DEPLOY_OP_ID=$op_id" "/proc/$op_pg/cmdline" 2>/dev/null
}

op_mark() {
	if ! op_read; then
		op_state=none
		printf '%s op none\n' "$M"
		return
	fi
	if op_alive; then op_state=alive; else op_state=dead; fi
	printf '%s op %s %s %s %s %s\n' "$M" "$op_id" "$op_pg" "$op_kind" "$op_since" "$op_state"
}
