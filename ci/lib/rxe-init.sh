#!/bin/busybox sh
# /init of the rxe guest's initramfs: mount the host's / read-only over 9p
# under a tmpfs overlay, bind the unpacked kernel's modules, then hand over to
# ci/lib/rxe-guest.sh, which runs with the host's own tools.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
	echo "rxe-init: $*" >/dev/console
	echo o >/proc/sysrq-trigger
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for arg in $(cat /proc/cmdline); do
	case $arg in
	weft.*=*) key=${arg%%=*}; key=${key#weft.}; eval "WEFT_$key=\${arg#*=}" ;;
	esac
done

for m in $(cat /modules.order); do
	insmod /lib/modules/$m || fail "insmod $m failed"
done

p9="trans=virtio,version=9p2000.L,msize=512000"
mkdir -p /mnt/ro /mnt/rw
mount -t 9p -o "$p9,cache=loose,ro" hostroot /mnt/ro || fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/ro,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work \
	/newroot || fail "cannot mount the overlay root"

mkdir -p "/newroot/lib/modules/$WEFT_kver" /newroot/weft-vm
mount --bind "/newroot$WEFT_kmod" "/newroot/lib/modules/$WEFT_kver" || fail "no module tree"
mount -t 9p -o "$p9" wfctl /newroot/weft-vm || fail "cannot mount the control share"

# Writable host folders appear at the same path as on the host.
i=0
while [ "$i" -lt "$WEFT_nshares" ]; do
	path=$(sed -n "$((i + 1))p" /newroot/weft-vm/shares)
	mkdir -p "/newroot$path"
	mount -t 9p -o "$p9" "wfshare$i" "/newroot$path" || fail "cannot mount share $path"
	i=$((i + 1))
done

mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /bin/bash "$WEFT_stage2" "$WEFT_node" "$WEFT_nodes"
