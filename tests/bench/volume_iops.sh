#!/usr/bin/env bash
# bench/volume-iops end to end, briefly: weftd starts, volume_ab measures all
# four rows, and every ratio and interval is a number. It measures nothing
# here; it keeps the benchmark that issue 4's figures come from runnable.
#
# Usage: volume_iops.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$("$root/bench/volume-iops" --build "$1" --pairs 3 --slice-ms 20 2>/dev/null)
echo "$out"
num='[0-9]+\.[0-9]+'
rows=$(echo "$out" | grep -cE "^(null|ram) +rand(read|write) +[0-9]+ +[0-9]+ +$num \[$num, $num\] +[0-9]+ +[0-9]+ +$num \[$num, $num\]$" || true)
[ "$rows" -eq 4 ] || { echo "FAIL: expected 4 complete rows, got $rows" >&2; exit 1; }
echo PASS
