# shellcheck shell=sh
# check.sh: a command check (Conn.CheckCommand, Target.CheckScript): the
# operator's command runs in the current revision's directory
# (<target_dir>-cache/current, resolved) with DEPLOY_REV set to that
# revision; its status is the script's. It stands alone (no common.sh).
#
# Prelude variables:
#   DEPLOY_DIR    target_dir
#   DEPLOY_CHECK  the check command (operator's shell code, evaluated,
#                 never spliced)
: "${DEPLOY_DIR?}" "${DEPLOY_CHECK?}"
cd -P "$DEPLOY_DIR-cache/current" || exit
DEPLOY_REV=${PWD##*/}
export DEPLOY_REV
eval "$DEPLOY_CHECK"
