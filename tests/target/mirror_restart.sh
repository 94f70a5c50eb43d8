#!/usr/bin/env bash
# A mirror leg that fell behind before a restart is not read as current after
# it. Two file legs hold different bytes, as after a leg missed writes while
# weftd ran. Without a record, reads rotate onto the stale leg (the control:
# the hazard is real). With state_dir and a record naming leg 1, every read
# comes from leg 0, leg 1 is copied back in full, and the record then says no
# leg is stale. A malformed record, or a state_dir weftd cannot write, stops
# weftd with a clear error.
# Usage: mirror_restart.sh WEFTD WEFT
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/script.sh"
weftd=$1
weft=$2
script_setup mirror_restart

mkdir "$dir/state"
head -c 1M /dev/urandom >"$dir/current"
head -c 1M /dev/zero | tr '\0' '\345' >"$dir/stale"
reset_legs() {
	cp "$dir/current" "$dir/leg0.img"
	cp "$dir/stale" "$dir/leg1.img"
}
start() {
	printf 'listen tcp 127.0.0.1 0\ndevice l0 file %s 1M\ndevice l1 file %s 1M\n%s\n%s\n' \
		"$dir/leg0.img" "$dir/leg1.img" "volume m mirror l0 l1" "allow h m rw" >"$dir/conf"
	[ -z "${1:-}" ] || echo "$1" >>"$dir/conf"
	weftd_start "$dir/log" 100 "$weftd" --config "$dir/conf"
}
stop() {
	kill -TERM "$weftd_pid"
	wait "$weftd_pid" || fail "weftd did not stop cleanly"
	weftd_pid=
}
# How many of 8 reads of the first 64 KiB returned the current leg's bytes.
current_reads() {
	local n=0
	head -c 65536 "$dir/current" >"$dir/want"
	for _ in 1 2 3 4 5 6 7 8; do
		"$weft" --transport tcp --port "$weftd_port" --host h read m --lba 0 --blocks 16 \
			>"$dir/got"
		cmp -s "$dir/got" "$dir/want" && n=$((n + 1))
	done
	echo $n
}

reset_legs
start || fail "weftd did not start"
n=$(current_reads)
stop
grep -q 'no state_dir' "$dir/log" || fail "no warning that nothing is recorded"
[ "$n" -lt 8 ] || fail "control: without a record every read still came from leg 0"
echo "mirror_restart: without a record, $n of 8 reads were current"

reset_legs
echo 'stale 0x2' >"$dir/state/m.mirror"
start "state_dir $dir/state" || fail "weftd did not start with a record"
n=$(current_reads)
[ "$n" -eq 8 ] || fail "with a record naming leg 1, only $n of 8 reads were current"
for _ in $(seq 100); do
	grep -q 'resynchronised' "$dir/log" && break
	sleep 0.1
done
grep -q 'resynchronised' "$dir/log" || fail "leg 1 was never copied back"
stop
cmp -s "$dir/leg0.img" "$dir/leg1.img" || fail "legs differ after the copy"
cmp -s "$dir/leg0.img" "$dir/current" || fail "leg 0 changed"
grep -qx 'stale 0' "$dir/state/m.mirror" ||
	fail "record after the copy: $(cat "$dir/state/m.mirror")"
echo "mirror_restart: with a record, 8 of 8 reads current, leg 1 copied back, record cleared"

echo 'stale 0x' >"$dir/state/m.mirror"
if start "state_dir $dir/state" 2>/dev/null; then
	fail "weftd started with a malformed record"
fi
weftd_pid=
grep -q 'record .*m.mirror unreadable' "$dir/log" || fail "no clear error for a malformed record"
echo 'stale 0x3' >"$dir/state/m.mirror"
start "state_dir $dir/state" 2>/dev/null && fail "weftd started with every leg stale"
weftd_pid=
grep -q 'marks legs 0x3 stale' "$dir/log" || fail "no clear error for every leg stale"
start "state_dir $dir/missing" 2>/dev/null && fail "weftd started with a state_dir it cannot write"
weftd_pid=
grep -q 'cannot write record .*missing/m.mirror' "$dir/log" ||
	fail "no clear error for a state_dir that cannot be written"
echo PASS
