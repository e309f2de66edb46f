# shellcheck shell=sh
# opstate.sh: what Conn.Op reads on a target (Target.OpScript), after
# common.sh and op.sh: the operation file's fields and whether its process
# group is alive, as the marker "op ... alive|dead" or "op none"; nothing
# is changed.
#
# Prelude variables: none.
#
# Uses from op.sh: op_mark.
op_mark
