#!/usr/bin/env bash
# weftd's poll-group thread at queue depth 1: with the default spin budget it
# polls through the gap between a reply and the host's next command, so it
# sleeps on fewer than one I/O in four; with spin_us 0 it sleeps on nearly
# every one. Sleeps are the threads' voluntary context switches.
# Usage: spin.sh WEFTD WEFT
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/script.sh"
weftd=$1
weft=$2
script_setup spin

sleeps() {
	cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s }'
}

# Prints "sleeps ios" for one second of QD1 reads against weftd with @1 extra config.
measure() {
	local before after ios
	printf 'listen tcp 127.0.0.1 0\ndevice n0 null 64M\nvolume v linear n0\nallow h v rw\n%s\n' \
		"$1" >"$dir/conf"
	weftd_start "$dir/log" 100 "$weftd" --config "$dir/conf" || fail "weftd did not start"
	before=$(sleeps "$weftd_pid")
	ios=$("$weft" --transport tcp --port "$weftd_port" --host h perf v --qd 1 --time 1 --json |
		sed -n 's/.*"ios":\([0-9]*\).*/\1/p')
	after=$(sleeps "$weftd_pid")
	kill -TERM "$weftd_pid"
	wait "$weftd_pid" || fail "weftd did not stop cleanly"
	weftd_pid=
	[ -n "$ios" ] && [ "$ios" -ge 200 ] || fail "too few I/O to judge: '$ios'"
	echo "$((after - before)) $ios"
}

# A spin that loses its CPU to another task backs off to sleeping for a
# while (core/spin.h), and weftd says so when it stops: measure again.
for try in 1 2 3 4 5; do
	read -r spun ios_spun <<<"$(measure '')"
	contended=$(grep -c 'spinning lost the CPU' "$dir/log" || true)
	[ "$contended" -gt 0 ] && [ $((spun * 4)) -ge "$ios_spun" ] || break
	echo "spin: weftd lost its CPU while spinning (try $try): measuring again"
done
read -r slept ios_slept <<<"$(measure 'spin_us 0')"
echo "spin: default budget: $spun sleeps in $ios_spun I/O; spin_us 0: $slept sleeps in $ios_slept I/O"
[ $((slept * 4)) -gt $((ios_slept * 3)) ] || fail "spin_us 0 slept on only $slept of $ios_slept I/O"
if [ $((spun * 4)) -ge "$ios_spun" ]; then
	[ "$contended" -eq 0 ] || fail "weftd lost its CPU on every try: this machine is too busy to judge"
	fail "the default budget slept on $spun of $ios_spun I/O"
fi
