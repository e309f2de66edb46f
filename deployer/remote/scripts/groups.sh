# shellcheck shell=sh
# groups.sh: finding the restart commands a script started, for the
# watchdog (run.sh, which it comes before), stop.sh and kill.sh.
#
# A restart command runs in a session and process group of its own
# (switch.sh's run_restart): the /bin/sh that runs it is that group's
# leader, and its command line holds the line
#
#   : deploybot-restart-of <pid of the script that started it>
#
# Once that shell has ended, the group is what the command left running
# (the service): it is never found, so never killed, from then on.
#
# Prelude variables: none.
#
# Defines (for the fragments after it):
#   restart_groups PGID  prints the process groups of the restart
#            commands that the script of process group PGID started and
#            that still run, one per line; nothing without /proc. The
#            pattern is written so that the grep that looks for it does
#            not find itself.
restart_groups() {
	# shellcheck disable=SC2013 # the names found are /proc/<pid>/cmdline: no blanks
	for _f in $(grep -lx -e ": deploybot-restart-of[ ]$1" /proc/[0-9]*/cmdline 2>/dev/null); do
		_f=${_f#/proc/}
		_f=${_f%/cmdline}
		case $_f in '' | 0* | 1 | *[!0-9]*) ;; *) echo "$_f" ;; esac
	done
}
