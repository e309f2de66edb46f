# shellcheck shell=sh
# shellcheck disable=SC2034 # the variables are read by the fragments after this one
# common.sh: the marker prefix and the layout on the target, read by the
# deploy, finalize, rollback and status scripts (it comes right after the
# prelude). See "Layout on a target" in doc.go.
#
# Prelude variables:
#   DEPLOY_DIR  target_dir: an absolute, clean path
#
# Defines (for the fragments after it):
#   M            the marker prefix, without its trailing blank
#   root         <target_dir>-cache
#   cache        root/cache, the bare repository fetched into
#   revs         root/revs, one checkout per revision
#   current      root/current, the symlink to the live revs/<sha>
#   cur_tmp      the temporary name current is switched through
#   dir_tmp      the temporary name target_dir is switched through
#   done_file    root/.done, the last revision marked done
#   history      root/.history, the done revisions kept, oldest first
#   deploying    root/.deploying, the revision being deployed
#   restart_log  root/.restart.log, the last restart command's output
#   op_file      root/.deploybot-op, the operation running here (op.sh)
#   now          a function: sets NOW to the milliseconds since boot (10 ms
#                resolution; seconds since the epoch without /proc/uptime),
#                without forking
: "${DEPLOY_DIR?}"
M='##deploybot'
root=$DEPLOY_DIR-cache
cache=$root/cache
revs=$root/revs
current=$root/current
cur_tmp=$root/.current.tmp
dir_tmp=$DEPLOY_DIR.deploybot-tmp
done_file=$root/.done
history=$root/.history
deploying=$root/.deploying
restart_log=$root/.restart.log
op_file=$root/.deploybot-op

if [ -r /proc/uptime ]; then
	now() {
		read -r _u _x </proc/uptime
		_u=${_u%.*}${_u#*.}
		while :; do case $_u in 0?*) _u=${_u#0} ;; *) break ;; esac; done
		NOW=$((_u * 10))
	}
else
	now() { NOW=$(($(date +%s) * 1000)); }
fi
