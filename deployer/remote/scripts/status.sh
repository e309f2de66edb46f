# shellcheck shell=sh
# status.sh: what Conn.Status reads on a target (Target.StatusScript),
# after common.sh: the revision current points at, the last revision
# marked done and the revision being deployed, as the markers
# "##deploybot current|done|deploying <sha or nothing>".
#
# Prelude variables:
#   DEPLOY_DIR  target_dir
#
# Uses from common.sh: M, current, done_file, deploying.
: "${DEPLOY_DIR?}"
: "${M?}" "${current?}" "${done_file?}" "${deploying?}"
_c=
if [ -L "$current" ]; then _c=$(readlink "$current") || _c=; fi
_d=
[ ! -f "$done_file" ] || read -r _d <"$done_file" || :
_p=
[ ! -f "$deploying" ] || read -r _p <"$deploying" || :
printf '%s current %s\n%s done %s\n%s deploying %s\n' "$M" "${_c##*/}" "$M" "$_d" "$M" "$_p"
