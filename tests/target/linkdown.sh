#!/usr/bin/env bash
# The link goes down mid-I/O (ci/rxe-vm --nodes 2): node 0 serves a RAM volume
# over rdma; node 1 runs `weft verify --time` and, meanwhile, sets the netdev
# under its rxe0 down for 4 s, then up again. libweft notices (a QP error, or
# its keep-alive timeout) and reconnects. Either verify recovers and ends by
# itself with 0 bad blocks, or it fails cleanly: within its reconnect timeout,
# saying why, with no bad block found before. It must not hang, and weftd
# must let the dead connection go and still stop cleanly.
# (Soft-RoCE on the guests' 6.1 kernel does not carry new connections after
# a flap with traffic in flight, so in practice this checks the clean failure;
# see docs/PROTOCOL.md.)
# It leaves the pair unable to connect (above): ctest runs it last there.
# Usage: linkdown.sh WEFTD WEFT
set -euo pipefail
weftd=$1
weft=$2
: "${WEFT_NODE:?run me through ci/rxe-vm --nodes 2}"
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
fail() {
	echo "linkdown: $*" >&2
	[ -f "$dir/log" ] && cat "$dir/log" >&2
	[ -f "$dir/verify" ] && cat "$dir/verify" >&2
	exit 1
}

if [ "$WEFT_NODE" = 0 ]; then
	cat >"$dir/weftd.conf" <<CONF
listen rdma $WEFT_RXE_ADDR 4420
device r0 ram 32M
volume v1 linear r0
allow node1 v1 rw
allow bye v1 ro
keep_alive_timeout 5
CONF
	"$weftd" --config "$dir/weftd.conf" 2>"$dir/log" &
	pid=$!
	# Node 1 says it is done by connecting as "bye", if rdma still works;
	# else it is done within 80 s of our start (see its time limits below).
	while [ "$SECONDS" -lt 80 ]; do
		grep -q 'host bye connected' "$dir/log" && break
		kill -0 "$pid" 2>/dev/null || fail "weftd died"
		sleep 0.2
	done
	# Every connection of node1 was let go, by its QP error or keep_alive_timeout.
	up=$(grep -c 'host node1 connected' "$dir/log" || true)
	down=$(grep -c 'host node1 disconnected' "$dir/log" || true)
	[ "$up" -ge 2 ] && [ "$up" = "$down" ] || fail "node1: $up connected, $down let go"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=
	cat "$dir/log"
	[ "$rc" = 0 ] || fail "weftd exited $rc"
	echo "linkdown: target ok"
	exit 0
fi

netdev=$(ip -o -4 addr show | awk -v a="$WEFT_RXE_ADDR/" 'index($4, a) == 1 { print $2 }')
[ -n "$netdev" ] || fail "no netdev carries $WEFT_RXE_ADDR"
w=("$weft" --transport rdma --addr "$WEFT_PEER_ADDR" --port 4420)
for i in $(seq 300); do
	"${w[@]}" --host node1 list >/dev/null 2>&1 && break
	[ "$i" = 300 ] && fail "no target at $WEFT_PEER_ADDR"
	sleep 0.2
done
start=$SECONDS
"${w[@]}" --host node1 --reconnect 15000 --keep-alive 500 --keep-alive-timeout 3000 \
	verify v1 --blocks 8192 --qd 16 --time 20 >"$dir/verify" 2>&1 &
vpid=$!
sleep 6
kill -0 "$vpid" 2>/dev/null || fail "verify ended before the link went down"
echo "linkdown: $netdev down"
ip link set "$netdev" down
sleep 4
ip link set "$netdev" up
echo "linkdown: $netdev up"
rc=0
wait "$vpid" || rc=$?
took=$((SECONDS - start))
cat "$dir/verify"
# Tell node 0 we are done, if a connection can be had.
for _ in $(seq 2); do
	timeout 12 "${w[@]}" --host bye list >/dev/null 2>&1 && break
	sleep 1
done
# 20 s of verify, 15 s of reconnecting, one 10 s connect attempt, slack.
[ "$took" -le 65 ] || fail "verify took $took s: it hung"
grep -q 'bad' "$dir/verify" && ! grep -q ', 0 bad' "$dir/verify" && fail "bad blocks"
if [ "$rc" = 0 ]; then
	grep -q ', 0 bad' "$dir/verify" || fail "verify says nothing"
	echo "linkdown: host recovered in $took s"
else
	grep -q 'giving up' "$dir/verify" && grep -q 'weft: verify: Connection timed out' \
		"$dir/verify" || fail "verify exited $rc without a clear reason"
	echo "linkdown: host failed cleanly after $took s"
fi
