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
# Prelude variables:
#   DEPLOY_DIR      target_dir
#   DEPLOY_RESTART  the restart command; empty: none
#
# Uses from common.sh: M, revs, current, done_file, deploying.
# Uses from switch.sh: promote_to, run_restart.
: "${DEPLOY_DIR?}" "${DEPLOY_RESTART?}"
: "${M?}" "${revs?}" "${current?}" "${done_file?}" "${deploying?}"
_d=
[ ! -f "$done_file" ] || read -r _d <"$done_file" || :
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
[ -z "$DEPLOY_RESTART" ] || run_restart "$_rev" "$_d"
[ "$_rc" -ne 0 ] || rm -f "$deploying"
exit "$_rc"
