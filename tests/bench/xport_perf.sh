#!/usr/bin/env bash
# bench/xport_perf, every test, briefly, over one transport: each prints a
# RESULT line whose figures are positive numbers. It measures nothing here;
# it keeps the benchmark that compare-transport and compare-rxe run working
# (cmd_lat also checks that the reply's data was placed in the buffer).
#
# Usage: xport_perf.sh BUILD_DIR verbs|tcp
set -euo pipefail
perf=$1/bench/xport_perf kind=$2
addr=${WEFT_RXE_ADDR:-127.0.0.1}
# Other tests run alongside and pick ports too: a server that cannot listen
# on its port (xport_perf then says "server did not start") tries another.
run() {
	local out
	for _ in 1 2 3; do
		out=$("$perf" --transport "$kind" --addr "$addr" --port $((20000 + RANDOM % 20000)) \
			--test "$1" --size "$2" --iters 50 --poll busy 2>&1) && break
		case $out in *"server did not start"*) continue ;; *) break ;; esac
	done
	echo "$out"
}
for t in send_lat read_lat cmd_lat write_bw read_bw; do
	for size in 64 131072; do
		out=$(run $t $size)
		line=$(echo "$out" | grep '^RESULT') ||
			{ echo "FAIL: $t $size gave no RESULT line: $out" >&2; exit 1; }
		echo "$line"
		case $t in *_bw) key=mib_s ;; *) key=usec_typical ;; esac
		echo "$line" | tr ' ' '\n' | awk -F= -v k=$key '$1 == k && $2 > 0 { f = 1 } END { exit !f }' ||
			{ echo "FAIL: $t $size: no positive $key" >&2; exit 1; }
	done
done
echo PASS
