// Package framework takes a fresh machine to a running containerd and runs
// real pods on it through CRI, the way the kubelet does, for end-to-end
// tests of the stats server. Only tests import it; it needs root.
//
// A test typically does:
//
//	if os.Geteuid() != 0 {
//		t.Skip("needs root")
//	}
//	if err := framework.EnsureInstalled(ctx, t.Logf); err != nil { // apt-get, once per machine
//		t.Fatal(err)
//	}
//	rt, err := framework.StartContainerd(ctx, framework.Options{Logf: t.Logf})
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() { _ = rt.Stop() })
//	pod, err := rt.RunPod(ctx, framework.PodSpec{
//		Name: "busy", EmptyDirs: []string{"data"},
//		Containers: []framework.ContainerSpec{{
//			Name: "busy", Args: []string{"-cpu", "0.2", "-mem", "50", "-write", "/data"},
//			MemoryLimitBytes: 100 << 20,
//			Mounts: []framework.VolumeMount{{Volume: "data", MountPath: "/data"}},
//		}},
//	})
//	// point the server at rt.Endpoint(), rt.RootDir(), and cgroup paths from pod.CgroupParent
//
// An end-to-end package's TestMain is Main, which installs containerd when
// it is missing. Run without root such a package fails with the reason
// instead of passing untested; KSS_SKIP_E2E=1 makes it skip instead. Waits
// in tests go through Eventually, which fails the test with what it waited
// for once its limit has passed.
//
// # What a Runtime is
//
// StartContainerd starts containerd (1.6, Debian's package) as a child
// process with a work dir of its own (Runtime.Dir) holding its root, state,
// socket, config, runc state and the pods' network namespaces. The CRI
// plugin uses cgroupfs, overlayfs, restrict_oom_score_adj (the machines lack
// CAP_SYS_RESOURCE), the locally built pause image as sandbox image, and a
// CNI bridge network on a private /24 that exists only on this machine.
//
// Pods look like the kubelet's: sandbox metadata and io.kubernetes.pod.*
// labels, io.kubernetes.container.name on containers, cgroups at
// <CgroupParent>/pod<uid>/<container id> (default parent /kubepods/burstable),
// the pod cgroup made before its sandbox with the sum of the containers'
// memory limits when all have one (StartCluster also gives its pod root the
// machine's memory as limit, as node allocatable does),
// logs at /var/log/pods/<ns>_<name>_<uid>/<container>/<attempt>.log, emptyDir
// volumes at <RootDir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>.
// RestartContainer starts attempt+1 and keeps the exited instance.
//
// On cgroup v2 each cgroup the harness creates gets its parents'
// controllers delegated first (cgroup.subtree_control), as runc and the
// kubelet do; otherwise it would have no memory.max to set. With
// Options.CgroupDriver systemd (systemd as PID 1, as in the cgroup v2 VM of
// test/v2vm) containerd and runc use the systemd driver: pod cgroups are
// slices made through systemd with their memory limit, like the kubelet's
// (<parent>/kubepods-burstable-pod<uid>.slice), and containers
// cri-containerd-<id>.scope. StartCluster picks that driver when
// CgroupDriverEnv says so.
//
// The images are two static Go programs from test/e2e/images, built and
// imported on first use: PauseImage sleeps; WorkImage burns CPU, holds
// memory, writes files, sends UDP to the pod's gateway, logs, and exits on
// request (see its package comment for the flags).
//
// Kill and Restart simulate a runtime crash and recovery; pods survive.
//
// # Parallel use
//
// Each `go test` package runs as its own process and tests may run in
// parallel, so every Runtime owns everything it touches: its own containerd
// and work dir, and a network slot (a host-wide flock under /run/kss-e2e)
// that gives it its own bridge (kss-e2e<N>), CNI network name and
// 10.217.<N>.0/24. Pod cgroups and log dirs are keyed by random pod UIDs.
// EnsureInstalled serialises apt-get behind a lock as well.
//
// # Teardown
//
// Stop removes every pod through CRI (restarting a killed containerd for
// that), stops containerd, kills leftover processes by PID (those whose
// command line names the work dir, and those in the pods' cgroups), unmounts
// everything under the work dir, removes the pod cgroups in every hierarchy
// and the parent cgroups it created, the pod log dirs, the bridge and the
// work dir. If a step fails, the work dir is kept for inspection and Stop
// returns the error. containerd is started with PDEATHSIG, so it dies with a
// test binary that crashes; the next harness on the same slot removes the
// leftover bridge.
//
// Traffic never leaves the machine: pods reach only their bridge (no
// masquerading, no forwarding changes), and RunPod rejects work -net in
// host-network pods.
package framework
