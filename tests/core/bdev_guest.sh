#!/usr/bin/env bash
# The file device where this host cannot exercise it, inside the rxe guest
# (Debian's 6.1 kernel): a tmpfs file, which that kernel's tmpfs refuses
# O_DIRECT for (buffered fallback, 512-byte blocks, a log line saying so),
# and a real block device (a loop device: BLKGETSIZE64, its logical sector
# size, O_DIRECT). Usage: bdev_guest.sh BDEV_TEST
set -euo pipefail
bdev_test=$1
: "${WEFT_IN_RXE_VM:?run me through ci/rxe-vm}"
dir=$(mktemp -d)
loop=
cleanup() {
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	umount "$dir/t" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "bdev_guest: $*" >&2
	exit 1
}

mkdir "$dir/t"
mount -t tmpfs -o size=64m none "$dir/t"
truncate -s 8M "$dir/t/img"
"$bdev_test" "$dir/t/img" 512 2>"$dir/log" || { cat "$dir/log"; fail "tmpfs file"; }
grep -q 'does not allow O_DIRECT, using buffered I/O' "$dir/log" ||
	fail "no log line for the buffered fallback: $(cat "$dir/log")"
echo "bdev_guest: tmpfs file: buffered fallback, said so, data checked"

modprobe loop 2>/dev/null || true
loop=$(losetup -f --show "$dir/t/img") || fail "no loop device"
[ -b "$loop" ] || fail "$loop is not a block device"
"$bdev_test" "$loop" "$(blockdev --getss "$loop")" 2>"$dir/log" || { cat "$dir/log"; fail "block device"; }
grep -q 'does not allow O_DIRECT' "$dir/log" && fail "a block device fell back to buffered I/O"
echo "bdev_guest: block device $loop: O_DIRECT, $(blockdev --getss "$loop")-byte sectors, data checked"
