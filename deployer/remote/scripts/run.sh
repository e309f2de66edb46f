# shellcheck shell=sh
# run.sh: the start of every script Conn.Run sends (see wrapScript): stderr
# joins stdout (one ordered stream), the script's stdin is empty, and the
# first line is the pid of the shell, which sshd made a session and
# process-group leader (Conn.Run kills that group when the script outlives
# its timeout).
#
# The watchdog: the session's stdin stays open as long as Conn.Run waits
# for the script (it never writes to it). A background subshell, in the
# script's process group but with its output on /dev/null (it never holds
# the session open), reads it; end of file means the session is gone
# before the script ended (the deploying process died, the connection
# dropped, Conn.Run gave up on it): the watchdog sends TERM to the whole
# process group, ignoring it itself, and KILL 2 s later. When the script
# ends by itself, its EXIT trap disarms the watchdog (disarm), so what the
# script started and left running in its group is not killed afterwards.
# A fragment that sets an EXIT trap of its own calls disarm from it.
#
# The session's stdin stays open on fd 3 for a script that reads
# deploybot's word after its work (deploy.sh's hold, once the watchdog is
# stopped); a command that may leave processes running (the restart) gets
# it closed.
#
# A restart command runs in a process group of its own (switch.sh's
# run_restart): while it runs, the watchdog sends it the same signals
# (restart_groups, from groups.sh, which comes before run.sh), so a
# session gone mid-restart leaves no restart running; once it has ended,
# what it started is left alone.
#
# Arguments: $1, when given, is the unix time at which deploybot started
# the session (Conn.Run passes its own clock, so that the operation file
# needs no date process); it is kept in the variable started, and the
# positional parameters are cleared.
#
# Prelude variables: none.
#
# Defines (for the fragments after it):
#   disarm   kills the watchdog (the EXIT trap)
#   _wd      the watchdog's pid
#   started  $1: digits, or empty when not given
exec 2>&1 3<&0 </dev/null
started=${1-}
case $started in *[!0-9]*) started= ;; esac
set --
echo "##deploybot pid $$"
(
	while read -r _l; do :; done
	trap '' TERM
	_rg=$(restart_groups $$)
	kill -s TERM -- "-$$"
	for _g in $_rg; do kill -s TERM -- "-$_g"; done
	sleep 2
	kill -s KILL -- "-$$"
	for _g in $_rg; do kill -s KILL -- "-$_g"; done
) <&3 3<&- >/dev/null 2>&1 &
_wd=$!
disarm() { kill "$_wd" 2>/dev/null; }
trap disarm EXIT
