// Package v2vm is the cgroup v2 VM tier: it boots a real cgroup v2 kernel
// under QEMU on a machine that has only cgroup v1 (hybrid), and runs the
// project's tests inside it, once per layout:
//
//   - cgroupfs: no init system; the plan runs in /system.slice/v2vm.service
//     and the kubelet's cgroupfs layout (/kubepods/burstable/pod<uid>/<id>);
//   - systemd: systemd is PID 1 and runs the plan as v2vm.service;
//     containerd and runc use the systemd driver
//     (/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope).
//
// The plan (guestPlan): the guest package's TestLiveCollector (the
// collector against the kernel's files) and TestPodsOnV2 (pods on
// containerd against their v2 files, OOM kills from kmsg and
// memory.events), then the e2e suites test/e2e/pods and test/e2e/legacy
// unchanged on containerd inside the VM. With KSS_V2VM_CAPTURE=<dir> the
// guest's TestCaptureTree runs instead and <dir>/capture-<layout>.tar.gz
// is a small captured tree of a v2 node (make golden-import takes it).
//
// Everything comes from Debian's packages and the module proxy, on a fresh
// machine: TestCgroupV2VM (run by make e2e-v2 with KSS_V2VM=1) downloads
// the current cloud kernel package with apt-get download into
// bin/v2vm/cache and unpacks it (never installs it), builds the Go binaries
// statically (the server, the e2e images' programs, the test binaries with
// go test -c), writes an initramfs (busybox-static, the kernel modules it
// needs, /init) and an ext4 root image (mkfs.ext4 -d) holding this
// machine's containerd, runc, CNI plugins, iproute2 and systemd with their
// shared libraries (ldd), the binaries and the scripts. The guest writes
// its results (each binary's log and exit code, timings, dmesg) as a tar
// archive to a raw virtio disk; the host unpacks it into
// bin/v2vm/runs/<layout>/out and fails when the VM did not power off in
// time, wrote nothing, or a binary failed or skipped its tests.
//
// Knobs: KSS_V2VM_LAYOUTS=cgroupfs (one layout), KSS_V2VM_PLAN=live,pods-v2
// (some entries), KSS_V2VM_DEBUG=1 (the guest's test output on the
// console, bin/v2vm/runs/<layout>/console.log), KSS_V2VM_SOURCE=<dir> (build
// the guest's binaries from another checkout), KSS_V2VM_KERNEL_PACKAGE
// (another kernel package).
package v2vm
