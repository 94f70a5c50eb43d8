#!/usr/bin/env bash
# The long-running pieces under valgrind's memcheck: weftd serving authenticated
# and unauthenticated hosts (list, verify, perf, refusals) until SIGTERM, the
# weft CLI itself, and the in-process hostile run of 10,000 bad inputs. Any
# memcheck error or definite leak fails the test (exit status 99 from valgrind).
# Usage: valgrind.sh WEFTD WEFT SECURITY_TEST
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/script.sh"
weftd=$1
weft=$2
security=$3
script_setup valgrind_test
fail_detail() {
	for f in "$dir"/vg-*.log "$dir/log"; do [ -s "$f" ] && { echo "== $f"; cat "$f"; } >&2; done
}
vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
	--show-leak-kinds=definite,indirect --num-callers=30)
secret=valgrind-secret-0123456789

cat >"$dir/weftd.conf" <<CONF
listen tcp 127.0.0.1 0
device r0 ram 32M
volume v1 linear r0
allow weft-cli v1 rw
allow anon v1 ro
secret weft-cli $secret
threads 2
CONF
chmod 600 "$dir/weftd.conf"
weftd_start "$dir/log" 600 "${vg[@]}" --log-file="$dir/vg-weftd.log" "$weftd" \
	--config "$dir/weftd.conf" || fail "weftd did not start"
port=$weftd_port

w=("$weft" --transport tcp --port "$port")
export WEFT_SECRET=$secret
"${w[@]}" list | grep -q v1 || fail "list"
"${vg[@]}" --log-file="$dir/vg-weft.log" "${w[@]}" verify v1 --blocks 2048 --qd 8 --gen 3 |
	grep -q ', 0 bad' || fail "verify under valgrind"
"${w[@]}" perf v1 --time 2 --qd 16 --pattern randrw --json | grep -q '"errors":0' || fail "perf"
WEFT_SECRET=wrong-secret-0123456789 "${w[@]}" list 2>/dev/null && fail "a wrong secret got in"
WEFT_SECRET= "${w[@]}" list 2>/dev/null && fail "no secret got in"
WEFT_SECRET= "${w[@]}" --host anon list | grep -q v1 || fail "anon list"
"${w[@]}" --host nobody list 2>/dev/null && fail "an unknown host got in"

kill -TERM "$weftd_pid"
rc=0
wait "$weftd_pid" || rc=$?
weftd_pid=
[ "$rc" = 0 ] || fail "weftd under valgrind exited $rc"
grep -q 'stopped cleanly' "$dir/log" || fail "weftd did not stop cleanly"
grep -q 'host anon has no secret' "$dir/log" || fail "no warning for the unauthenticated host"

"${vg[@]}" --log-file="$dir/vg-security.log" "$security" -t tcp -c hostile ||
	fail "hostile run under valgrind"
echo "valgrind_test: weftd, weft and the hostile run are memcheck-clean"
