#!/bin/sh
# Runs the guest plan (/v2vm/plan, written by the host: one `run` line per
# test binary), then writes /out as a tar archive onto the first virtio disk
# (vda, the host's out.img) and powers the VM off. Every step has a deadline:
# `run` kills a binary after its seconds, and the host kills qemu after its
# own, longer, timeout.
export PATH=/usr/sbin:/usr/bin HOME=/root
# The guest tests read the layout (cgroupfs or systemd) from here.
KSS_V2VM_LAYOUT=$(sed -n 's/.*v2vm\.layout=\([a-z]*\).*/\1/p' /proc/cmdline)
export KSS_V2VM_LAYOUT
# The e2e framework's StartCluster uses the layout's cgroup driver (the
# layouts are named after the drivers).
KSS_E2E_CGROUP_DRIVER=$KSS_V2VM_LAYOUT
export KSS_E2E_CGROUP_DRIVER
out=/out
console=$(sed -n 's/.*v2vm\.console=\(1\).*/\1/p' /proc/cmdline)
mkdir -p "$out"

stamp() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> "$out/timings"; }

watchdog() {
	echo "v2vm: $1 is about to reach its deadline; processes:"
	ps
	echo w > /proc/sysrq-trigger
	dmesg | tail -n 80
}

# run NAME SECONDS DIR COMMAND...: COMMAND runs in DIR (its package's
# directory, as under go test), its output goes to NAME.log, its exit code
# to NAME.rc (137 when the deadline killed it).
run() {
	name=$1 seconds=$2 dir=$3
	shift 3
	cd "$dir" || return
	echo "v2vm: $name started at $(cut -d' ' -f1 /proc/uptime)s"
	stamp "start $name"
	# Shortly before the deadline, show on the console what still runs and
	# where the kernel has blocked tasks, for a run the host times out.
	( sleep $((seconds - 15)) && watchdog "$name" ) &
	watchdog_pid=$!
	if [ -n "$console" ]; then
		# Debugging (KSS_V2VM_DEBUG): stream the output to the console too.
		{ timeout -s KILL "$seconds" "$@" 2>&1; echo $? > "$out/$name.rc.tmp"; } | tee "$out/$name.log"
		rc=$(cat "$out/$name.rc.tmp")
		rm -f "$out/$name.rc.tmp"
	else
		timeout -s KILL "$seconds" "$@" > "$out/$name.log" 2>&1
		rc=$?
	fi
	kill "$watchdog_pid" 2>/dev/null
	stamp "end $name"
	echo "$rc" > "$out/$name.rc"
	echo "v2vm: $name exited $rc at $(cut -d' ' -f1 /proc/uptime)s"
	cd /
}

stamp guest
# Every controller for the children of the root, as a node's init does.
for controller in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$controller" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
		echo "v2vm: cannot enable $controller at the root"
done
{
	uname -r
	cat /proc/cmdline
	grep cgroup /proc/self/mountinfo
	echo "root controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
	echo "own cgroup: $(cat /proc/self/cgroup)"
	cat /proc/swaps
} > "$out/environment" 2>&1

. /v2vm/plan

stamp done
dmesg > "$out/dmesg.log"
tar -cf /dev/vda -C "$out" . && sync
echo "v2vm: results written, powering off at $(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
