# shellcheck shell=sh
# done.sh: marking a revision done (mark_done), for finalize.sh and for the
# finalize stage of a held deploy (deploy.sh's hold), after common.sh.
#
# mark_done: the revision must be current (status 3 if not). It becomes
# .done and the newest line of .history, which keeps the last
# DEPLOY_KEEP_REVS done revisions; .deploying is removed, and so is every
# revision directory (and its keep-refs in the cache: the revision's, and
# its submodules' commits') that is neither kept nor current, with any
# leftover .<sha>.tmp and .<sha>.old. It returns the status of the step
# that failed, 0 when done.
#
# Prelude variables:
#   DEPLOY_SHA        the revision: a full, validated git object name
#   DEPLOY_KEEP_REVS  how many done revisions to keep (at least 1)
#
# Uses from common.sh: cache, revs, current, done_file, history, deploying.
: "${DEPLOY_SHA?}" "${DEPLOY_KEEP_REVS?}"
: "${cache?}" "${revs?}" "${current?}" "${done_file?}" "${history?}" "${deploying?}"

mark_done() {
	_dr=$revs/$DEPLOY_SHA
	# shellcheck disable=SC3013 # targets' /bin/sh has test -ef (see doc.go)
	if [ ! -d "$_dr" ] || ! [ "$current" -ef "$_dr" ]; then
		echo "current is not revs/$DEPLOY_SHA: not marking it done"
		return 3
	fi
	printf '%s\n' "$DEPLOY_SHA" >"$done_file.tmp" && mv -f "$done_file.tmp" "$done_file" || return
	_h=
	if [ -f "$history" ]; then
		while read -r _s; do
			case $_s in "$DEPLOY_SHA" | '' | *[!0-9a-f]*) ;; *) _h="$_h $_s" ;; esac
		done <"$history"
	fi
	set -f
	# shellcheck disable=SC2086 # split on blanks; the names are hex digits
	set -- $_h "$DEPLOY_SHA"
	set +f
	while [ "$#" -gt "$DEPLOY_KEEP_REVS" ]; do shift; done
	_keep=" $* "
	printf '%s\n' "$@" >"$history.tmp" && mv -f "$history.tmp" "$history" || return
	rm -f "$deploying"
	# The keep-refs of the revisions removed: listed, then deleted, by two
	# gits for all of them.
	_refs=
	for _d in "$revs"/* "$revs"/.*.tmp "$revs"/.*.old; do
		[ -e "$_d" ] || continue
		_n=${_d##*/}
		case $_keep in *" $_n "*) continue ;; esac
		# shellcheck disable=SC3013 # as above
		if [ "$current" -ef "$_d" ]; then continue; fi
		echo "removing revs/$_n"
		rm -rf "$_d" || return
		# Only a revision's name (hex digits) has keep-refs, and splits as
		# one word.
		case $_n in .* | *[!0-9a-f]*) ;; *) _refs="$_refs refs/deploybot/revs/$_n refs/deploybot/modules/$_n/" ;; esac
	done
	if [ -n "$_refs" ]; then
		# shellcheck disable=SC2086 # split on blanks; the names are hex digits
		_r=$(git -C "$cache" for-each-ref --format='delete %(refname)' $_refs)
		[ -z "$_r" ] || git -C "$cache" update-ref --stdin <<EOF
$_r
EOF
	fi
	echo "done: $DEPLOY_SHA; keeping: $*"
}
