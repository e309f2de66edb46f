# shellcheck shell=sh
# run.sh: the start of every script Conn.Run sends (see wrapScript): stderr
# joins stdout (one ordered stream), stdin is empty, and the first line is
# the pid of the shell, which sshd made a session and process-group leader
# (Conn.Run kills that group when the script outlives its timeout).
#
# Prelude variables: none.
exec 2>&1 </dev/null
echo "##deploybot pid $$"
