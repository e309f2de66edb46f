# shellcheck shell=sh
# rollback.sh: puts the target back on the last revision marked done
# (Conn.Rollback, Target.RollbackScript), after common.sh, op.sh, claim.sh
# and switch.sh. It prints "##deploybot rev <sha>" for that revision,
# then, when the target already is on it and no deploy or rollback is
# unfinished there (no .deploying), "##deploybot noop <sha>"; otherwise it
# switches current and target_dir to it and runs the restart command
# there, whose status is the script's. .deploying is removed once the
# restart succeeded, so a rollback interrupted between the switch and the
# restart restarts the service when it is run again. Exit status 3 (and no rev marker): no revision was ever
# marked done, or its directory is gone.
#
# With DEPLOY_UNDO set (a revision the deploy being rolled back may have
# marked done already), a .done naming it is first undone: the revision
# before it in .history is marked done again and DEPLOY_UNDO leaves the
# history, then that revision is restored as above (exit status 3 when
# there is none).
#
# Prelude variables:
#   DEPLOY_DIR      target_dir
#   DEPLOY_RESTART  the restart command; empty: none
#   DEPLOY_UNDO     the revision to undo when it is the done one; empty: none
#
# Uses from common.sh: M, revs, current, done_file, history, deploying.
# Uses from switch.sh: promote_to, run_restart.
: "${DEPLOY_DIR?}" "${DEPLOY_RESTART?}" "${DEPLOY_UNDO?}"
: "${M?}" "${revs?}" "${current?}" "${done_file?}" "${history?}" "${deploying?}"
_d=
[ ! -f "$done_file" ] || read -r _d <"$done_file" || :
if [ -n "$DEPLOY_UNDO" ] && [ "$_d" = "$DEPLOY_UNDO" ]; then
	_p='' _h=''
	if [ -f "$history" ]; then
		while read -r _s; do
			case $_s in "$DEPLOY_UNDO" | '' | *[!0-9a-f]*) ;; *) _p=$_s _h="$_h$_s
" ;; esac
		done <"$history"
	fi
	[ -n "$_p" ] || { echo "$DEPLOY_UNDO was the first revision marked done here: nothing to roll back to"; exit 3; }
	[ -d "$revs/$_p" ] || { echo "revs/$_p (the done revision before $DEPLOY_UNDO) is missing: nothing to roll back to"; exit 3; }
	printf '%s' "$_h" >"$history.tmp" && mv -f "$history.tmp" "$history" || exit
	printf '%s\n' "$_p" >"$done_file.tmp" && mv -f "$done_file.tmp" "$done_file" || exit
	echo "undid done $DEPLOY_UNDO: $_p is done again"
	_d=$_p
fi
case $_d in
'') echo 'no revision was ever marked done here: nothing to roll back to'; exit 3 ;;
*[!0-9a-f]*) printf '%s\n' "$done_file holds no revision"; exit 3 ;;
esac
_rev=$revs/$_d
[ -d "$_rev" ] || { echo "revs/$_d (the done revision) is missing: nothing to roll back to"; exit 3; }
printf '%s rev %s\n' "$M" "$_d"
# shellcheck disable=SC3013 # targets' /bin/sh has test -ef (see doc.go)
if [ ! -e "$deploying" ] && [ "$current" -ef "$_rev" ] && [ -L "$DEPLOY_DIR" ] && [ "$DEPLOY_DIR" -ef "$_rev" ]; then
	echo "already at the done revision $_d: nothing to do"
	printf '%s noop %s\n' "$M" "$_d"
	exit 0
fi
promote_to "revs/$_d" || exit
echo "current -> revs/$_d"
_rc=0
if [ -n "$DEPLOY_RESTART" ]; then
	printf '%s restart begin\n' "$M"
	run_restart "$_rev" "$_d"
	printf '%s restart end\n' "$M"
fi
[ "$_rc" -ne 0 ] || rm -f "$deploying"
exit "$_rc"
