#!/usr/bin/env bash
# weftd on one rxe guest, the weft CLI on the other (ci/rxe-vm --nodes 2):
# node 0 serves a RAM volume over rdma and stops on SIGTERM once the host
# has come and gone three times; node 1 lists, verifies and measures it.
# Usage: twonode.sh WEFTD WEFT
set -euo pipefail
weftd=$1
weft=$2
: "${WEFT_NODE:?run me through ci/rxe-vm --nodes 2}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

if [ "$WEFT_NODE" = 0 ]; then
	cat >"$dir/weftd.conf" <<CONF
listen rdma $WEFT_RXE_ADDR 4420
device r0 ram 64M
volume v1 linear r0
allow node1 v1 rw
CONF
	"$weftd" --config "$dir/weftd.conf" 2>"$dir/log" &
	pid=$!
	# The host connects three times (list, verify, perf); each leaves a line.
	while [ "$(grep -c 'host node1 disconnected' "$dir/log" || true)" -lt 3 ]; do
		kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; exit 1; }
		sleep 0.2
	done
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	cat "$dir/log"
	[ "$rc" = 0 ] && grep -q 'stopped cleanly' "$dir/log"
	echo "twonode: target stopped cleanly"
	exit 0
fi

w=("$weft" --transport rdma --addr "$WEFT_PEER_ADDR" --port 4420 --host node1)
# The target boots in its own guest: wait for it to answer. "auto" (the
# default) must find rxe0 and choose verbs: weftd listens on nothing else.
for i in $(seq 150); do
	if "$weft" --addr "$WEFT_PEER_ADDR" --port 4420 --host node1 list >"$dir/list" 2>"$dir/err"; then break; fi
	[ "$i" = 150 ] && { cat "$dir/err"; exit 1; }
	sleep 0.2
done
cat "$dir/list"
"${w[@]}" verify v1 --qd 16 --blocks 16384 --gen 9 | tee "$dir/verify"
grep -q ', 0 bad' "$dir/verify"
"${w[@]}" perf v1 --qd 16 --size 4K --pattern randrw --time 2
echo "twonode: host done"
