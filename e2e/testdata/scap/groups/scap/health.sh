#!/bin/sh
# The service answers 200 with this revision's VERSION.
want="200 $(cat VERSION)"
i=0
while [ $i -lt 50 ]; do
	[ "$(SVCBIN -get http://127.0.0.1:18080/health)" = "$want" ] && exit 0
	i=$((i + 1))
	sleep 0.1
done
echo "health: want $want"
exit 1
