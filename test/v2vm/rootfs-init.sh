#!/bin/sh
# PID 1 of the cgroup v2 VM once on its root image. It mounts what a node
# has (cgroup2 with the kubelet's options, tmpfs /run and /tmp, zram swap),
# then either runs the guest plan itself (cgroupfs layout: no init system,
# like a node whose kubelet uses the cgroupfs driver) or hands over to
# systemd, which runs it as v2vm.service (systemd layout).
export PATH=/usr/sbin:/usr/bin
layout=$(sed -n 's/.*v2vm\.layout=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "v2vm: root image at $(cut -d' ' -f1 /proc/uptime)s, layout ${layout:-unset}"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
# /tmp (containerd's root and snapshots, the tests' kubelet root dir with
# the pods' emptyDirs) stays on the root image's ext4, as on a node's disk:
# on tmpfs the server would rightly take every emptyDir for a memory-backed
# one.
# Swap, so that memory.swap.current and the node's swap have something to
# count.
echo 256M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
hostname v2vm
ip link set lo up
# The node's interface, on a hub with nothing else: an address from the
# documentation range (RFC 5737) and no route anywhere.
ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up

case "$layout" in
systemd)
	exec /usr/lib/systemd/systemd --log-target=console --log-level=warning --show-status=false
	;;
cgroupfs)
	mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
	# Like a service of an init system, the plan (and the containerd it
	# starts) runs in a cgroup of its own, not in the root: containerd and
	# the kubelet only limit swap when their own cgroup has memory.swap.max.
	for dir in /sys/fs/cgroup /sys/fs/cgroup/system.slice; do
		mkdir -p "$dir"
		for controller in $(cat "$dir/cgroup.controllers"); do
			echo "+$controller" > "$dir/cgroup.subtree_control"
		done
	done
	mkdir -p /sys/fs/cgroup/system.slice/v2vm.service
	echo $$ > /sys/fs/cgroup/system.slice/v2vm.service/cgroup.procs
	/v2vm/guest.sh
	;;
*)
	echo "v2vm: unknown layout '$layout'"
	;;
esac
poweroff -f
