#!/usr/bin/env bash
# The contract of ci/rxe-vm that every rdma test relies on: the guest command's
# stdout, stderr and status come back separately and intact; a command that
# overruns gives 124; a guest that cannot boot gives 125 with its console
# tail; a shared folder keeps what the guest writes; the guest has rxe0.
# Usage: rxe_vm_test.sh RXE_VM SESSION SHARE
set -uo pipefail
vm=$1 session=$2 share=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

"$vm" exec --session "$session" -- sh -c 'echo to-out; echo to-err >&2; exit 7' \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 7 ] || fail "exit status: got $rc, want 7"
[ "$(cat "$tmp/out")" = to-out ] || fail "stdout: got '$(cat "$tmp/out")'"
grep -qx to-err "$tmp/err" || fail "stderr lacks to-err: $(cat "$tmp/err")"
grep -q to-err "$tmp/out" && fail "stderr leaked into stdout"

"$vm" exec --session "$session" -- sh -c 'test "$WEFT_IN_RXE_VM" = 1 &&
	grep -q ACTIVE /sys/class/infiniband/$WEFT_RXE_DEV/ports/1/state &&
	test "$(cat /sys/class/infiniband/$WEFT_RXE_DEV/ports/1/gids/$WEFT_RXE_GID_INDEX)" != \
		0000:0000:0000:0000:0000:0000:0000:0000' ||
	fail "the guest has no ACTIVE rxe0 with a GID at WEFT_RXE_GID_INDEX"

stamp=$RANDOM$RANDOM
"$vm" exec --session "$session" -- sh -c "echo $stamp > '$share/rxe_vm_test.stamp'" ||
	fail "cannot write into the shared folder"
[ "$(cat "$share/rxe_vm_test.stamp" 2>/dev/null)" = "$stamp" ] ||
	fail "what the guest wrote into $share did not reach the host"
rm -f "$share/rxe_vm_test.stamp"

# The working directory and WEFT_* variables are carried into the guest.
(cd "$tmp" && WEFT_PROBE=carried "$vm" exec --session "$session" -- sh -c \
	'test "$PWD" = "$0" && test "$WEFT_PROBE" = carried' "$tmp") ||
	fail "cwd or WEFT_* variables were not carried into the guest"

"$vm" exec --session "$session" --timeout 2 -- sleep 60 >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 124 ] || fail "timeout: got $rc, want 124"
grep -q 'timed out' "$tmp/err" || fail "timeout message missing: $(cat "$tmp/err")"

# The session must still serve after a timed-out command.
"$vm" exec --session "$session" -- true || fail "session dead after a timeout"

# A guest that cannot come up in time: 125, the console tail, and no qemu left behind.
guests() { pgrep -c -f '^qemu-system-x86_64 .*weft\.stage2=' || true; }
before=$(guests)
WEFT_VM_QUIET=1 "$vm" --boot-timeout 1 -- true >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 125 ] || fail "boot failure: got $rc, want 125"
grep -q 'console' "$tmp/err" || fail "no console tail on boot failure: $(cat "$tmp/err")"
[ "$(guests)" -eq "$before" ] || fail "a guest that failed to boot is still running"

[ $fails -eq 0 ] && echo "rxe-vm contract holds"
exit $((fails > 0))
