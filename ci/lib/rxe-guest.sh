#!/bin/bash
# PID 1 of the rxe guest after switch_root: bring soft-RoCE up, then run the
# jobs that ci/rxe-vm drops into /weft-vm/jobs until told to power off.
NODE=$1
NODES=$2
CTL=/weft-vm
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}

fail() {
	echo "$*" >"$CTL/failed"
	echo "rxe-guest: $*" >/dev/console
	poweroff_now
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t configfs configfs /sys/kernel/config 2>/dev/null
# The guest has no /dev/fd, which bash process substitution needs.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
hostname "weft-vm$NODE"
ulimit -l unlimited
ip link set lo up

for m in rdma_rxe rdma_ucm ib_umad ib_uverbs; do
	modprobe "$m" || fail "modprobe $m failed"
done

addr=169.254.99.$((NODE + 1))
if [ "$NODES" -eq 1 ]; then
	netdev=rxenet0
	ip link add "$netdev" type dummy || fail "cannot create the dummy netdev"
	peer=
else
	modprobe virtio_net || fail "modprobe virtio_net failed"
	netdev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
	[ -n "$netdev" ] || fail "no NIC for the two-node wire"
	peer=169.254.99.$((2 - NODE))
fi
# A 4 KiB path MTU needs a netdev MTU above 4096.
ip link set "$netdev" mtu 9000 || fail "cannot set the MTU of $netdev"
ip addr add "$addr/24" dev "$netdev" || fail "cannot address $netdev"
ip link set "$netdev" up || fail "cannot bring $netdev up"
rdma link add rxe0 type rxe netdev "$netdev" || fail "rdma link add rxe0 failed"

port=/sys/class/infiniband/rxe0/ports/1
for _ in $(seq 100); do
	grep -q ACTIVE "$port/state" 2>/dev/null && break
	sleep 0.1
done
grep -q ACTIVE "$port/state" || fail "rxe0 port never became ACTIVE: $(cat "$port/state")"

# perftest and rdma_cm want the GID that holds our IPv4-mapped address.
want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' ${addr//./ })
gid_index=
for _ in $(seq 50); do
	for g in "$port"/gids/*; do
		[ "$(cat "$g" 2>/dev/null)" = "$want" ] && gid_index=${g##*/} && break
	done
	[ -n "$gid_index" ] && break
	sleep 0.1
done
[ -n "$gid_index" ] || fail "no GID for $addr on rxe0"

export WEFT_IN_RXE_VM=1 WEFT_NODE=$NODE WEFT_NODES=$NODES WEFT_RXE_DEV=rxe0
export WEFT_RXE_ADDR=$addr WEFT_RXE_GID_INDEX=$gid_index
[ -z "$peer" ] || export WEFT_PEER_ADDR=$peer

echo "rxe0 ACTIVE on $netdev $addr gid $gid_index, uptime $(cut -d' ' -f1 /proc/uptime)s" >"$CTL/ready"

run_job() {
	local job=$1 t rc
	t=$(cat "$job/timeout")
	timeout -k 10 "$t" bash "$job/cmd" >"$job/out" 2>"$job/err" </dev/null
	rc=$?
	# timeout(1) says 137 when it had to escalate to KILL; both mean "timed out".
	[ $rc -eq 137 ] && rc=124
	echo $rc >"$job/rc"
	touch "$job/done"
}

# Under TCG every fork is expensive, so idle with bash's builtin read on a
# fifo that never gets data rather than forking sleep(1).
mkfifo /run/idle
exec 3<>/run/idle
shopt -s nullglob
running=()
while [ ! -f "$CTL/poweroff" ]; do
	for go in "$CTL"/jobs/*/go; do
		job=${go%/go}
		mv "$go" "$job/taken" 2>/dev/null || continue
		run_job "$job" &
		running+=($!)
	done
	live=()
	for pid in "${running[@]}"; do
		kill -0 "$pid" 2>/dev/null && live+=("$pid")
	done
	running=("${live[@]}")
	# A look at the job folder is a few 9p round trips, milliseconds of a
	# vCPU under TCG. While a job runs, it is what the guest is for (often a
	# benchmark), so look ten times less often: the next job waits at most
	# a second, and an idle guest still answers within a tenth of one.
	wait_s=0.1
	[ ${#running[@]} -eq 0 ] || wait_s=1
	read -r -t $wait_s -u 3 _
done
poweroff_now
