#!/usr/bin/env bash
# bench/xport_perf, every test, briefly, over one transport: each prints a
# RESULT line whose figures are positive numbers. It measures nothing here;
# it keeps the benchmark that compare-transport and compare-rxe run working
# (cmd_lat, with and without --cpl-data, and cmd_bw, with and without
# --cpl-imm, also check that the
# replies' data was placed in the buffer, cmd_write_bw that the server's
# READs fetched the client's), and that --cpus pins or says why it cannot.
#
# Usage: xport_perf.sh BUILD_DIR verbs|tcp
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/bench/lib/result.sh"
perf=$1/bench/xport_perf kind=$2
addr=${WEFT_RXE_ADDR:-127.0.0.1}
for t in send_lat read_lat cmd_lat write_bw read_bw cmd_bw cmd_write_bw; do
	for size in 64 131072; do
		# Port 0: the server takes a free one, so tests running alongside never collide.
		out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test $t --size $size \
			--iters 50 --poll busy 2>&1) ||
			{ echo "FAIL: $t $size: xport_perf failed: $out" >&2; exit 1; }
		line=$(echo "$out" | grep '^RESULT') ||
			{ echo "FAIL: $t $size gave no RESULT line: $out" >&2; exit 1; }
		echo "$line"
		case $t in *_bw) key=mib_s ;; *) key=usec_typical ;; esac
		awk -v v="$(result_field "$line" $key)" 'BEGIN { exit !(v > 0) }' ||
			{ echo "FAIL: $t $size: no positive $key" >&2; exit 1; }
	done
done
# With one pair of xfers to answer from, the server must now and then hold a
# command until the answer before it is done: on verbs that answer's SEND may
# still be out when the client, which has its reply, sends the next one.
for t in send_lat cmd_lat cmd_bw cmd_write_bw; do
	out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test $t --size 4096 \
		--iters 2000 --window 1 --pairs 1 --poll busy 2>&1) && echo "$out" | grep '^RESULT' ||
		{ echo "FAIL: $t with one pair: $out" >&2; exit 1; }
done
# cmd_lat --cpl-data: the data comes back as the reply, with immediate data, up to 4 KiB
# (the capsule holds 4 KiB and 64 bytes); the client checks it as it does the WRITE's.
for size in 64 4096; do
	out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test cmd_lat --size $size \
		--iters 2000 --cpl-data --pairs 1 --poll busy 2>&1) && echo "$out" | grep '^RESULT' ||
		{ echo "FAIL: cmd_lat --cpl-data $size: $out" >&2; exit 1; }
done
# refused TEST OPTION: a reply form TEST has no use for is refused, not run.
refused() {
	if out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test $1 --size 4096 \
		--iters 50 $2 2>&1); then
		echo "FAIL: $1 $2 ran: $out" >&2
		exit 1
	fi
}
refused cmd_bw --cpl-data
# cmd_bw --cpl-imm: the reply is the WRITE's immediate data, with a window of 16 and of 1.
for w in 16 1; do
	out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test cmd_bw --size 131072 \
		--iters 200 --window $w --pairs 1 --cpl-imm --poll busy 2>&1) &&
		echo "$out" | grep '^RESULT' ||
		{ echo "FAIL: cmd_bw --cpl-imm window $w: $out" >&2; exit 1; }
done
refused cmd_lat --cpl-imm
# --cpus pins each side: a CPU every machine has works, one no machine has is refused aloud.
out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test send_lat --size 64 --iters 50 \
	--poll busy --cpus 0,0 2>&1) && echo "$out" | grep -q '^RESULT' ||
	{ echo "FAIL: send_lat pinned to CPU 0: $out" >&2; exit 1; }
if out=$("$perf" --transport "$kind" --addr "$addr" --port 0 --test send_lat --size 64 \
	--iters 50 --poll busy --cpus 1023,0 2>&1); then
	echo "FAIL: --cpus 1023,0 ran: $out" >&2
	exit 1
fi
echo "$out" | grep -q 'cannot run on CPU 1023' ||
	{ echo "FAIL: --cpus 1023,0 gave no clear error: $out" >&2; exit 1; }
echo PASS
