// Package guest holds the tests that the cgroup v2 VM tier (test/v2vm) runs
// inside its guest, a real cgroup v2 kernel under QEMU, once per layout
// (cgroupfs, systemd):
//
//   - TestLiveCollector: the collector against the kernel's own files for
//     cgroups it did not create, with real processes (a throttled spinner,
//     a memory holder, direct I/O, an OOM kill), discovery by inotify.
//   - TestPodsOnV2: pods on containerd inside the VM and the real server:
//     the summary against the pods' v2 files, OOM kills from kmsg and from
//     memory.events, the layout's cgroup names.
//   - TestCaptureTree (with KSS_V2VM_CAPTURE): the pod cgroups' files and
//     the /proc and /sys files the server reads, as a tar archive for the
//     golden tier.
//
// Anywhere else (KSS_V2VM_GUEST unset) every test is skipped: the host side
// of the tier builds this package with go test -c and boots the VM.
package guest
