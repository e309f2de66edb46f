# shellcheck shell=sh
# kill.sh: kills a timed-out script's process group, best effort, from a
# session of its own (the fallback of Conn.Run when sshd ignores the
# signal request). Sent with /bin/sh -c like every script, without run.sh
# (its output is not read).
#
# The restart command the script was running, if any, is in a group of
# its own: it is killed too (restart_groups, from groups.sh, which comes
# before kill.sh).
#
# Prelude variables:
#   DEPLOY_PGID  the process group to kill (the pid run.sh printed)
: "${DEPLOY_PGID?}"
_rg=$(restart_groups "$DEPLOY_PGID")
kill -s KILL -- "-$DEPLOY_PGID" 2>/dev/null
for _g in $_rg; do kill -s KILL -- "-$_g" 2>/dev/null; done
true
