#!/bin/busybox sh
# /init of the cgroup v2 VM's initramfs: load the kernel modules the tier
# needs (virtio disks first), then switch to the root filesystem image on the
# second virtio disk (vdb), mounted read-write: qemu runs it with
# snapshot=on, so nothing written reaches the image. A root that is not the
# initramfs is what runc needs: pivot_root(2) refuses to move rootfs away.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo "v2vm: initramfs at $(/bin/busybox cut -d' ' -f1 /proc/uptime)s"
for module in $(/bin/busybox cat /modules/order); do
	/bin/busybox insmod "/modules/$module" || echo "v2vm: insmod $module failed"
done
# The disk appears asynchronously after virtio_blk binds to it.
for i in $(/bin/busybox seq 1 100); do
	[ -b /dev/vdb ] && break
	/bin/busybox sleep 0.1
done
if ! /bin/busybox mount -t ext4 /dev/vdb /newroot; then
	echo "v2vm: cannot mount the root image on /dev/vdb"
	/bin/busybox poweroff -f
fi
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox mount --move /sys /newroot/sys
/bin/busybox mount --move /proc /newroot/proc
exec /bin/busybox switch_root /newroot /usr/sbin/v2vm-init
