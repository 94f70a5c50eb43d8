#!/usr/bin/env bash
# weftd and weft as a user runs them: --check on good and broken configs,
# then a served RAM volume, weft list/write/read/verify/perf (on one queue
# pair and on several) against it, and SIGTERM, after which weftd must exit 0.
# Usage: weftd_test.sh WEFTD WEFT [THREADS]
# With THREADS > 1 each weft command is a new host on the next poll-group
# thread, so a write and its read back go through different threads.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/script.sh"
weftd=$1
weft=$2
threads=${3:-1}
script_setup weftd_test

cat >"$dir/good.conf" <<CONF
listen tcp 127.0.0.1 0
device r0 ram 32M
device r1 ram 32M
volume v1 linear r0
allow weft-cli v1 rw
threads $threads
CONF
"$weftd" --check "$dir/good.conf" | grep -q ': ok:' || fail "--check refused a good file"

head -c 40 "$dir/good.conf" >"$dir/cut.conf"
if "$weftd" --check "$dir/cut.conf" 2>"$dir/err"; then fail "--check accepted a cut file"; fi
grep -q 'line 2: no newline at the end' "$dir/err" || fail "cut file: $(cat "$dir/err")"
printf 'listen tcp 127.0.0.1 0\n\x00\x9f garbage\n' >"$dir/garbled.conf"
if "$weftd" --check "$dir/garbled.conf" 2>"$dir/err"; then fail "--check accepted garbage"; fi
grep -q 'line 2: byte 0x00' "$dir/err" || fail "garbled file: $(cat "$dir/err")"
if "$weftd" --check "$dir/missing.conf" 2>/dev/null; then fail "--check accepted a missing file"; fi

# Serve on a port the kernel picks; weftd logs it.
weftd_start "$dir/log" 100 "$weftd" --config "$dir/good.conf" || fail "weftd did not start"
port=$weftd_port
w=("$weft" --transport tcp --port "$port")
"${w[@]}" list | grep -q 'v1' || fail "list does not show v1"
head -c 100000 /dev/urandom >"$dir/in"
"${w[@]}" write v1 --lba 7 --file "$dir/in"
"${w[@]}" read v1 --lba 7 --blocks 196 >"$dir/out"
cmp -n 100000 "$dir/in" "$dir/out" || fail "read back differs from what was written"
"${w[@]}" verify v1 --blocks 8192 --qd 8 --gen 5 | grep -q ', 0 bad' || fail "verify"
"${w[@]}" perf v1 --time 1 --qd 4 --json | grep -q '"errors":0' || fail "perf"
# --jobs N: N queue pairs at once, one per thread, measured together.
before=$(grep -c 'host weft-cli connected' "$dir/log")
"${w[@]}" perf v1 --time 1 --qd 4 --jobs 3 --json >"$dir/jobs" || fail "perf --jobs 3 failed"
grep -q '"jobs":3,' "$dir/jobs" || fail "perf --jobs 3: $(cat "$dir/jobs")"
grep -q '"errors":0,' "$dir/jobs" || fail "perf --jobs 3 had errors: $(cat "$dir/jobs")"
if grep -q '"ios":0,' "$dir/jobs"; then fail "perf --jobs 3 did no I/O"; fi
after=$(grep -c 'host weft-cli connected' "$dir/log")
[ $((after - before)) = 3 ] || fail "perf --jobs 3 connected $((after - before)) queue pairs"
if "${w[@]}" perf v1 --jobs 0 2>/dev/null; then fail "perf took --jobs 0"; fi
# --qps N: N queue pairs polled as one by each job's thread; weftd spreads them over its threads.
before=$(grep -c 'host weft-cli connected' "$dir/log")
"${w[@]}" perf v1 --time 1 --qd 6 --jobs 2 --qps 3 --json >"$dir/qps" || fail "perf --qps 3 failed"
grep -q '"jobs":2,"qps":3,' "$dir/qps" || fail "perf --qps 3: $(cat "$dir/qps")"
grep -q '"errors":0,' "$dir/qps" || fail "perf --qps 3 had errors: $(cat "$dir/qps")"
if grep -q '"ios":0,' "$dir/qps"; then fail "perf --qps 3 did no I/O"; fi
after=$(grep -c 'host weft-cli connected' "$dir/log")
[ $((after - before)) = 6 ] || fail "perf --jobs 2 --qps 3 connected $((after - before)) queue pairs"
used=$(grep 'host weft-cli connected' "$dir/log" | tail -n 6 | sed 's/.*, thread //' | sort -u | wc -l)
[ "$used" = "$threads" ] || fail "6 queue pairs landed on $used of $threads threads"
if "${w[@]}" perf v1 --qps 0 2>/dev/null; then fail "perf took --qps 0"; fi
if "${w[@]}" --host nobody list 2>/dev/null; then fail "an unknown host was let in"; fi

# SIGTERM while a host is busy: weftd drains, lets it go, and still exits 0.
before=$(grep -c 'host weft-cli connected' "$dir/log")
# --reconnect 0: this host must end with the target, not wait for another.
"${w[@]}" --reconnect 0 perf v1 --time 30 --qd 16 --pattern randwrite >"$dir/perf" 2>&1 &
perf=$!
while [ "$(grep -c 'host weft-cli connected' "$dir/log")" = "$before" ]; do
	kill -0 "$perf" 2>/dev/null || fail "perf ended early: $(cat "$dir/perf")"
	sleep 0.1
done
kill -TERM "$weftd_pid"
wait "$perf" || true # its I/O ends ABORTED or with the connection
grep -q 'host weft-cli disconnected' "$dir/log" || fail "the busy host was not let go"
rc=0
wait "$weftd_pid" || rc=$?
weftd_pid=
[ "$rc" = 0 ] || fail "weftd exited $rc after SIGTERM: $(cat "$dir/log")"
grep -q 'stopped cleanly' "$dir/log" || fail "no clean stop in the log"
echo "weftd_test: ok"
