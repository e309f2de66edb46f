# shellcheck shell=sh
# configfiles.sh: the config files of a deploy (Target.ConfigFiles), after
# common.sh, for deploy.sh: the config stage writes each rendered file
# into the new revision, and promote links the absolute ones into place.
#
# Prelude variables:
#   DEPLOY_CF_COUNT    how many files (0: none, no config stage)
#   DEPLOY_CF_PATH_<i> the destination of file i (1-based): an absolute
#                      path, or one relative to the revision (validated:
#                      clean, no NUL nor line break)
#   DEPLOY_CF_BODY_<i> its rendered text (no NUL byte)
#
# An absolute path P is rendered to <rev>/.git/config-files/P and P is a
# symbolic link to <target_dir>-cache/current/.git/config-files/P: the
# live revision's rendering, so a rollback (which switches current)
# restores the previous one. A relative path is written in the revision.
#
# Uses from common.sh: current.
: "${DEPLOY_CF_COUNT?}"
: "${current?}"

# cf_get I: sets _p and _b to the destination and text of file I.
cf_get() {
	_p='' _b=''
	eval "_p=\$DEPLOY_CF_PATH_$1 _b=\$DEPLOY_CF_BODY_$1"
}

# config_write DIR: writes every file into revision directory DIR, each
# through a temporary file renamed into place.
config_write() {
	_i=1
	while [ "$_i" -le "$DEPLOY_CF_COUNT" ]; do
		cf_get "$_i"
		case $_p in
		/*) _f=$1/.git/config-files$_p ;;
		*) _f=$1/$_p ;;
		esac
		mkdir -p "${_f%/*}" || return
		# shellcheck disable=SC2015 # the cleanup is meant to run when either step fails
		printf '%s' "$_b" >"$_f.deploybot-tmp" && mv -f "$_f.deploybot-tmp" "$_f" || { _rc=$?; rm -f "$_f.deploybot-tmp"; return "$_rc"; }
		printf 'rendered %s\n' "$_p"
		_i=$((_i + 1))
	done
}

# config_link: points every absolute destination at the live revision's
# rendering (one symbolic link each, switched atomically).
config_link() {
	_i=1
	while [ "$_i" -le "$DEPLOY_CF_COUNT" ]; do
		cf_get "$_i"
		_i=$((_i + 1))
		case $_p in /*) ;; *) continue ;; esac
		_t=$current/.git/config-files$_p
		if [ -L "$_p" ] && [ "$(readlink "$_p")" = "$_t" ]; then continue; fi
		mkdir -p "${_p%/*}" || return
		# shellcheck disable=SC2015 # as above
		ln -sfn "$_t" "$_p.deploybot-tmp" && mv -Tf "$_p.deploybot-tmp" "$_p" || { _rc=$?; rm -f "$_p.deploybot-tmp"; return "$_rc"; }
		printf '%s -> %s\n' "$_p" "$_t"
	done
}
