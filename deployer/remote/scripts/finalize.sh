# shellcheck shell=sh
# finalize.sh: marks a revision done (Conn.Finalize, Target.FinalizeScript),
# after common.sh, op.sh, claim.sh and done.sh: mark_done, whose status is
# the script's (3 when the revision is not current).
#
# Prelude variables: none (done.sh's).
#
# Uses from done.sh: mark_done.
mark_done
