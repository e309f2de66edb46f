# shellcheck shell=sh
# kill.sh: kills a timed-out script's process group, best effort, from a
# session of its own (the fallback of Conn.Run when sshd ignores the
# signal request). Sent with /bin/sh -c like every script, without run.sh
# (its output is not read).
#
# Prelude variables:
#   DEPLOY_PGID  the process group to kill (the pid run.sh printed)
: "${DEPLOY_PGID?}"
kill -s KILL -- "-$DEPLOY_PGID" 2>/dev/null; true
