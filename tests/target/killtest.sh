#!/usr/bin/env bash
# kill -9 the target under verified load, and restart it, KILLS times:
# `weft verify --time` (a write pass of generation g, then a read-back that
# wants g in every block) must ride through every restart by itself and end
# with 0 bad blocks, so no acknowledged write was lost. The volume is a file
# device: a write weftd acknowledged is in the page cache, which outlives it.
# Usage: killtest.sh WEFTD WEFT [KILLS]
# Alone: both sides over tcp on loopback. Under ci/rxe-vm --nodes 2: node 0
# runs weftd over rdma and kills it, node 1 runs verify. Verify stops once
# the kills are over: here the script says so with verify's --stop-file;
# across nodes, node 1 learns it when the last weftd lets host "final" in.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib/weftd.sh"
weftd=$1
weft=$2
kills=${3:-20}
dir=$(mktemp -d)
pid=
vpid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	[ -n "$vpid" ] && kill -KILL "$vpid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "killtest: $*" >&2
	[ -f "$dir/verify" ] && cat "$dir/verify" >&2
	exit 1
}

# The verifying host authenticates: each restart ends its session, so every
# reconnect proves the secret again instead of resuming.
secret=killtest-secret-0123456789
node=${WEFT_NODE:-local}
if [ "$node" = local ]; then
	transport=tcp addr=127.0.0.1 port=0 host_addr=127.0.0.1
else
	transport=rdma addr=${WEFT_RXE_ADDR:-} port=4420 host_addr=${WEFT_PEER_ADDR:-}
fi

# Start weftd and wait until it serves; the first start learns the port.
start() {
	cat >"$dir/weftd.conf" <<CONF
listen $transport $addr $port
device f0 file $dir/f0.img 32M
volume v1 linear f0
allow kill-host v1 rw
secret kill-host $secret
allow probe v1 ro
allow bye v1 ro
${2:-}
CONF
	weftd_start "$dir/log.$1" 100 "$weftd" --config "$dir/weftd.conf" || fail "weftd did not start"
	pid=$weftd_pid
	[ "$port" != 0 ] || port=$weftd_port
}

# Wait until the host has come back to instance $1, i.e. reconnected.
wait_host() {
	for _ in $(seq 600); do
		# Authenticated, not just connected: a kill inside the very first
		# exchange would fail the host's open, which does not reconnect.
		grep -q 'host kill-host authenticated' "$dir/log.$1" && return 0
		[ -n "$vpid" ] && ! kill -0 "$vpid" 2>/dev/null && fail "verify ended early"
		sleep 0.05
	done
	fail "the host did not come back to weftd instance $1"
}

run_verify() {
	WEFT_SECRET=$secret "$weft" --transport "$transport" --addr "$host_addr" --port "$port" --host kill-host \
		--reconnect 20000 --keep-alive 1000 --keep-alive-timeout 5000 \
		verify v1 --blocks 4096 --qd 16 --time 400 --stop-file "$dir/stop" >"$dir/verify" 2>&1
}

check_verify() {
	cat "$dir/verify"
	grep -q ', 0 bad' "$dir/verify" || fail "verify found bad blocks"
	n=$(sed -n 's/.*passes, \([0-9]*\) reconnects.*/\1/p' "$dir/verify")
	[ "${n:-0}" -ge "$kills" ] || fail "verify reconnected ${n:-0} times, not $kills"
}

if [ "$node" = 1 ]; then
	# The target boots in its own guest: wait for it to answer.
	for i in $(seq 300); do
		"$weft" --transport rdma --addr "$host_addr" --port "$port" --host probe list \
			>/dev/null 2>&1 && break
		[ "$i" = 300 ] && fail "no target at $host_addr"
		sleep 0.2
	done
	run_verify &
	vpid=$!
	# The last weftd lets "final" in: then the kills are over.
	until timeout 15 "$weft" --transport rdma --addr "$host_addr" --port "$port" --host final \
		list >/dev/null 2>&1; do
		kill -0 "$vpid" 2>/dev/null || break
		sleep 3
	done
	touch "$dir/stop"
	rc=0
	wait "$vpid" || rc=$?
	vpid=
	# Tell node 0 we are done, whatever happened.
	for _ in $(seq 10); do
		timeout 15 "$weft" --transport rdma --addr "$host_addr" --port "$port" --host bye list \
			>/dev/null 2>&1 && break
		sleep 0.2
	done
	[ "$rc" = 0 ] || fail "verify exited $rc"
	check_verify
	echo "killtest: host ok"
	exit 0
fi

start 0
t0=$SECONDS
if [ "$node" = local ]; then
	run_verify &
	vpid=$!
fi
for k in $(seq "$kills"); do
	wait_host $((k - 1))
	# Let I/O run for a while, so the kill finds commands in flight.
	sleep "0.$((RANDOM % 4 + 2))"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	if [ "$k" = "$kills" ]; then start "$k" "allow final v1 ro"; else start "$k"; fi
done
echo "killtest: killed weftd $kills times in $((SECONDS - t0)) s"
wait_host "$kills"
if [ "$node" = local ]; then
	touch "$dir/stop"
	rc=0
	wait "$vpid" || rc=$?
	vpid=
	[ "$rc" = 0 ] || fail "verify exited $rc"
	check_verify
else
	# Node 1's verify ends on its own, then node 1 connects as "bye".
	while ! grep -q 'host bye connected' "$dir/log.$kills"; do
		kill -0 "$pid" 2>/dev/null || fail "weftd died"
		sleep 0.2
	done
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "the last weftd exited $rc"
echo "killtest: ok"
