# shellcheck shell=sh
# deploy.sh: the deploy of one revision (Conn.Deploy, Target.DeployScript),
# after common.sh, op.sh, claim.sh, switch.sh, configfiles.sh and done.sh:
# the stages fetch, checkout, config (only with config files), promote and
# restart, each between "begin" and "end" markers; the first stage that
# fails ends the script with its status. Unless forced, a revision already
# current and done (and target_dir pointing at it) only prints the noop
# marker, and an existing revs/<sha> is reused (no fetch, no checkout).
# Held (DEPLOY_HOLD=1), the script then waits for deploybot's word, which
# may be to run the finalize stage in the same session (hold).
#
# Prelude variables:
#   DEPLOY_DIR         target_dir
#   DEPLOY_SHA         the revision: a full, validated git object name
#   DEPLOY_URL         the deploy repository's URL (<serve_url>/<repo>/.git)
#   DEPLOY_FORCE       1: check revs/<sha> out afresh, even if live and done
#   DEPLOY_SUBMODULES  the submodule names, blank-separated (validated: no
#                      blanks nor glob characters in a name); each is
#                      fetched into the cache from $DEPLOY_URL/modules/<name>
#                      (when its commit is not there yet) and checked out
#                      from it (checkout_module); empty: none
#   DEPLOY_RESTART     the restart command; empty: no restart stage
#   DEPLOY_CF_COUNT    the number of config files (configfiles.sh); 0: no
#                      config stage
#   DEPLOY_HOLD        1: after the last stage, hold (see hold); 0: end
#   DEPLOY_SM_PINNED   1: the path and commit of each submodule are given
#                      (below) and taken as they are; 0: module_rev reads
#                      them in the cache
#   DEPLOY_SM_PATH_<i> the path of the i-th of DEPLOY_SUBMODULES (1-based)
#                      in the revision (validated: relative, no empty, .
#                      or .. component), when pinned
#   DEPLOY_SM_COMMIT_<i> the commit its gitlink records (a full, validated
#                      git object name), when pinned
#
# Uses from common.sh: M, cache, revs, current, done_file, deploying, now.
# Uses from switch.sh: promote_to, run_restart.
# Uses from configfiles.sh: config_write, config_link.
# Uses from done.sh: mark_done.
# Uses from run.sh: disarm, _wd (the watchdog's pid), and fd 3 (the
# session's stdin).
#
# The Go side reads the functions s_<stage> and already_live from this
# file for StageResult.Command: each starts with a line "name() {" and ends
# at the next line that is "}".
: "${DEPLOY_DIR?}" "${DEPLOY_SHA?}" "${DEPLOY_URL?}" "${DEPLOY_FORCE?}" "${DEPLOY_SUBMODULES?}" "${DEPLOY_RESTART?}" "${DEPLOY_CF_COUNT?}" "${DEPLOY_HOLD?}" "${DEPLOY_SM_PINNED?}"
: "${M?}" "${cache?}" "${revs?}" "${current?}" "${done_file?}" "${deploying?}"
umask 022

# stage NAME FUNCTION runs FUNCTION between the begin and end markers of
# stage NAME, and ends the script when it fails. The end marker of a stage
# that succeeded is kept in _pend and printed with what comes next (the
# next begin marker, hold's marker, or flush at the end): one write, so
# one SSH packet, instead of two. It carries its own duration, so the
# wait changes nothing; nothing runs meanwhile that could hang.
_pend=
stage() {
	printf '%s%s begin %s\n' "$_pend" "$M" "$1"
	_pend=
	now; _t0=$NOW
	"$2"; _rc=$?
	now
	_pend="$M end $1 $_rc $((NOW - _t0))
"
	[ "$_rc" -eq 0 ] || { flush; exit "$_rc"; }
}

# flush prints the pending end marker, if any.
flush() {
	[ -z "$_pend" ] || printf '%s' "$_pend"
	_pend=
}

rev=$revs/$DEPLOY_SHA
rev_tmp=$revs/.$DEPLOY_SHA.tmp
rev_old=$revs/.$DEPLOY_SHA.old

# abort removes the half-made checkout and returns the status of the
# command that failed.
abort() { _rc=$?; rm -rf "$rev_tmp"; return "$_rc"; }

# module_rev NAME sets _p to the path of submodule NAME in revision
# DEPLOY_SHA (its .gitmodules, read in the cache) and _l to the commit its
# gitlink records; it fails when the revision has no such submodule at a
# path inside it (the deploy host lists only those it has).
module_rev() {
	_p=$(git -C "$cache" config --blob "$DEPLOY_SHA:.gitmodules" "submodule.$1.path" 2>/dev/null) && [ -n "$_p" ] || return
	# A path inside the revision only: no empty, . or .. component.
	case /$_p/ in *//* | */./* | */../*) return 1 ;; esac
	_l=$(git -C "$cache" ls-tree "$DEPLOY_SHA" -- "$_p") || return
	# One entry (a path with glob characters may match several), a gitlink.
	case $_l in *"
"*) return 1 ;; "160000 commit "*) ;; *) return 1 ;; esac
	_l=${_l#160000 commit }
	_l=${_l%%"	"*}
	case $_l in *[!0-9a-f]* | '') return 1 ;; esac
}

# checkout_module NAME checks submodule NAME out at _p, commit _l (as
# module_rev set them in s_fetch), in rev_tmp, as git submodule update
# would but from the cache, where s_fetch put the commit (fetched from
# $DEPLOY_URL/modules/NAME when it was not there yet, and kept by
# refs/deploybot/modules/<sha>/<commit> until finalize prunes the
# revision; refs/deploybot/module-fetch/ holds the refs of the last
# submodule fetched, each kept only until the next fetch):
# a repository of its own in the submodule's directory, borrowing the
# cache's objects, with nothing to fetch. The submodule's own submodules,
# if any, are updated by git, from the URLs its .gitmodules gives
# (relative ones against $DEPLOY_URL/modules/NAME, its origin).
checkout_module() {
	git -C "$rev_tmp" config "submodule.$1.url" "$DEPLOY_URL/modules/$1" || return
	git -c init.defaultBranch=deploy init -q --template= "$rev_tmp/$_p" || return
	printf '%s\n' "$cache/objects" >"$rev_tmp/$_p/.git/objects/info/alternates" || return
	git -C "$rev_tmp/$_p" -c advice.detachedHead=false checkout -q --detach "$_l" || return
	[ -f "$rev_tmp/$_p/.gitmodules" ] || return 0
	git -C "$rev_tmp/$_p" config remote.origin.url "$DEPLOY_URL/modules/$1" || return
	GIT_TERMINAL_PROMPT=0 git -C "$rev_tmp/$_p" submodule update -q --init --recursive
}

s_fetch() {
	[ -d "$revs" ] || mkdir -p "$revs" || return
	printf '%s\n' "$DEPLOY_SHA" >"$deploying" || return
	if [ "$DEPLOY_FORCE" != 1 ] && [ -d "$rev" ]; then echo "revs/$DEPLOY_SHA is already checked out"; return 0; fi
	[ -d "$cache" ] || git -c init.defaultBranch=deploy init -q --bare "$cache" || return
	if git -C "$cache" cat-file -e "$DEPLOY_SHA^{commit}" 2>/dev/null; then
		echo "$DEPLOY_SHA is already in the cache"
	else
		GIT_TERMINAL_PROMPT=0 git -C "$cache" -c maintenance.auto=false fetch -q --no-tags "$DEPLOY_URL" '+HEAD:refs/remotes/deploy/HEAD' '+refs/*:refs/remotes/deploy/*' || return
	fi
	# The keep-refs of the revision and of its submodules' commits, made
	# by one git at the end; update-ref refuses a ref to an object the
	# cache lacks (missing_from_url then says which).
	_refs="update refs/deploybot/revs/$DEPLOY_SHA $DEPLOY_SHA"
	# Each submodule's path and commit are kept for s_checkout: _mp<i> and
	# _ml<i>, i counting the names of DEPLOY_SUBMODULES from 1.
	_i=0
	# shellcheck disable=SC2086 # split on blanks; names have no glob characters
	for _m in $DEPLOY_SUBMODULES; do
		_k=$((_i + 1))
		if [ "$DEPLOY_SM_PINNED" = 1 ]; then
			eval "_p=\$DEPLOY_SM_PATH_$_k _l=\$DEPLOY_SM_COMMIT_$_k"
		elif ! module_rev "$_m"; then
			missing_from_url && printf '%s\n' "submodule $_m: no gitlink for it at a path inside $DEPLOY_SHA"
			return 2
		fi
		_i=$_k
		eval "_mp$_i=\$_p _ml$_i=\$_l"
		if ! git -C "$cache" cat-file -e "$_l^{commit}" 2>/dev/null; then
			GIT_TERMINAL_PROMPT=0 git -C "$cache" -c maintenance.auto=false fetch -q --no-tags "$DEPLOY_URL/modules/$_m" '+HEAD:refs/deploybot/module-fetch/HEAD' '+refs/*:refs/deploybot/module-fetch/refs/*' || return
		fi
		_refs="$_refs
update refs/deploybot/modules/$DEPLOY_SHA/$_l $_l"
	done
	if ! git -C "$cache" update-ref --stdin 2>/dev/null <<EOF
$_refs
EOF
	then
		missing_from_url || return 2
		git -C "$cache" update-ref --stdin <<EOF || return
$_refs
EOF
	fi
	auto_maintenance
}

# missing_from_url, after the fetches of s_fetch, says which revision the
# cache still lacks (the revision, or the commit of one of the first _i
# submodules, as module_rev found them) and is false; true when it lacks
# none.
missing_from_url() {
	if ! git -C "$cache" cat-file -e "$DEPLOY_SHA^{commit}" 2>/dev/null; then
		printf '%s\n' "revision $DEPLOY_SHA is not in $DEPLOY_URL"
		return 1
	fi
	_j=0
	# shellcheck disable=SC2086 # split on blanks; names have no glob characters
	for _m in $DEPLOY_SUBMODULES; do
		_j=$((_j + 1))
		[ "$_j" -le "$_i" ] || break
		eval "_l=\$_ml$_j"
		if ! git -C "$cache" cat-file -e "$_l^{commit}" 2>/dev/null; then
			printf '%s\n' "submodule $_m: revision $_l is not in $DEPLOY_URL/modules/$_m"
			return 1
		fi
	done
}

# auto_maintenance runs git's automatic maintenance of the cache (gc
# --auto) when git's own thresholds say it has work: more than 50 packs
# (gc.autoPackLimit) or, estimated from objects/17 as git does, more than
# 6,700 loose objects (gc.auto). The fetches skip it
# (maintenance.auto=false): asking git after every fetch costs a process
# on every host, and the answer is almost always no.
auto_maintenance() {
	_n=0
	for _f in "$cache"/objects/pack/pack-*.pack; do [ ! -e "$_f" ] || _n=$((_n + 1)); done
	_o=0
	for _f in "$cache"/objects/17/*; do [ ! -e "$_f" ] || _o=$((_o + 1)); done
	if [ "$_n" -gt 50 ] || [ "$_o" -gt 27 ]; then git -C "$cache" gc --auto --quiet; fi
	return 0
}

s_checkout() {
	if [ "$DEPLOY_FORCE" != 1 ] && [ -d "$rev" ]; then echo "revs/$DEPLOY_SHA is already checked out"; return 0; fi
	[ ! -e "$rev_tmp" ] || rm -rf "$rev_tmp" || return
	git -c init.defaultBranch=deploy init -q --template= "$rev_tmp" || return
	printf '%s\n' "$cache/objects" >"$rev_tmp/.git/objects/info/alternates" || abort || return
	git -C "$rev_tmp" -c advice.detachedHead=false checkout -q --detach "$DEPLOY_SHA" || abort || return
	if [ -n "$DEPLOY_SUBMODULES" ] && [ -f "$rev_tmp/.gitmodules" ]; then
		_i=0
		# shellcheck disable=SC2086 # split on blanks; names have no glob characters
		for _m in $DEPLOY_SUBMODULES; do
			_i=$((_i + 1))
			eval "_p=\$_mp$_i _l=\$_ml$_i" # as s_fetch found them
			checkout_module "$_m" || abort || return
		done
	fi
	if [ "$DEPLOY_FORCE" = 1 ] && [ -e "$rev" ]; then
		[ ! -e "$rev_old" ] || rm -rf "$rev_old" || abort || return
		mv -T "$rev" "$rev_old" || abort || return
	fi
	mv -T "$rev_tmp" "$rev" || abort || return
	if [ "$DEPLOY_FORCE" = 1 ]; then [ ! -e "$rev_old" ] || rm -rf "$rev_old"; fi
	echo "checked out revs/$DEPLOY_SHA"
}

s_config() {
	config_write "$rev"
}

s_promote() {
	promote_to "revs/$DEPLOY_SHA" || return
	echo "current -> revs/$DEPLOY_SHA"
	config_link
}

s_restart() {
	run_restart "$rev" "$DEPLOY_SHA"
	return "$_rc"
}

# hold, after the last stage of a held deploy, waits for deploybot's word
# while it checks the host: finalizing in this session saves a session per
# host. The watchdog is stopped first (it reads the session's stdin too,
# and from here the script changes nothing unless told to), then the
# marker "hold" is printed (after the last stage's end) and one line read
# from the session's stdin: "finalize" runs the finalize stage
# (mark_done); anything else, or the end of the input (deploybot gone, the
# session closed), ends the script, leaving the revision live but not
# done, as a deploy session without hold does. SIGPIPE is ignored from
# here: a finalize whose session is gone (deploybot died, or gave up on
# it) runs to its end, and the EXIT trap releases the operation file,
# instead of dying at its next line of output.
hold() {
	trap '' PIPE
	disarm
	# shellcheck disable=SC2154 # _wd is set by run.sh
	wait "$_wd" 2>/dev/null
	printf '%s%s hold\n' "$_pend" "$M"
	_pend=
	IFS= read -r _w <&3 || _w=
	[ "$_w" != finalize ] || stage finalize mark_done
	flush
}

# already_live: the revision is current and done, and target_dir points
# at it.
already_live() {
	# shellcheck disable=SC3013 # targets' /bin/sh has test -ef (see doc.go)
	[ -f "$done_file" ] && read -r _done <"$done_file" && [ "$_done" = "$DEPLOY_SHA" ] && [ "$current" -ef "$rev" ] && [ -L "$DEPLOY_DIR" ] && [ "$DEPLOY_DIR" -ef "$rev" ]
}

if [ "$DEPLOY_FORCE" != 1 ] && already_live; then
	printf '%s noop %s\n' "$M" "$DEPLOY_SHA"
	exit 0
fi
stage fetch s_fetch
stage checkout s_checkout
[ "$DEPLOY_CF_COUNT" -eq 0 ] || stage config s_config
stage promote s_promote
[ -z "$DEPLOY_RESTART" ] || stage restart s_restart
[ "$DEPLOY_HOLD" != 1 ] || hold
flush
