package framework

import (
	"fmt"
	"strings"
	"time"
)

// containerdPaths are the directories and files of one harness's
// containerd, all under its work dir.
type containerdPaths struct {
	root, state, socket, runcRoot, opt, cniConfDir string
}

// containerdConfig renders a version 2 containerd config with the CRI
// plugin, as verified on the target machines:
//   - everything containerd writes lives under the harness's dirs, including
//     the runc state (runc options Root) and the pod network namespaces
//     (netns_mounts_under_state_dir), so Stop can find and remove it all;
//   - restrict_oom_score_adj, because the machines lack CAP_SYS_RESOURCE and
//     every sandbox would fail setting its -998 oom_score_adj;
//   - cgroupfs (SystemdCgroup=false), as the kubelet's cgroupDriver=cgroupfs,
//     or with systemdCgroup the systemd driver;
//   - sandbox_image is the locally imported pause image (no registry);
//   - apparmor off and the snapshotters that cannot work here disabled, to
//     keep the log quiet.
//
// statsCollectPeriod 0 keeps containerd's default (10 s).
func containerdConfig(p containerdPaths, sandboxImage string, statsCollectPeriod time.Duration, systemdCgroup bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("version = 2")
	w("root = %q", p.root)
	w("state = %q", p.state)
	w("oom_score = 0")
	w(`disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]`)
	w("")
	w("[grpc]")
	w("  address = %q", p.socket)
	w("[ttrpc]")
	w("  address = %q", p.socket+".ttrpc")
	w("[debug]")
	w(`  address = ""`)
	w("[metrics]")
	w(`  address = ""`)
	w("")
	w(`[plugins."io.containerd.internal.v1.opt"]`)
	w("  path = %q", p.opt)
	w(`[plugins."io.containerd.grpc.v1.cri"]`)
	w("  sandbox_image = %q", sandboxImage)
	w("  restrict_oom_score_adj = true")
	w("  disable_apparmor = true")
	w("  enable_selinux = false")
	w("  netns_mounts_under_state_dir = true")
	w(`  stream_server_address = "127.0.0.1"`)
	w(`  stream_server_port = "0"`)
	if statsCollectPeriod > 0 {
		w("  stats_collect_period = %d", max(1, int(statsCollectPeriod/time.Second)))
	}
	w(`  [plugins."io.containerd.grpc.v1.cri".containerd]`)
	w(`    snapshotter = "overlayfs"`)
	w(`    default_runtime_name = "runc"`)
	w(`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`)
	w(`      runtime_type = "io.containerd.runc.v2"`)
	w(`      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`)
	w("        SystemdCgroup = %t", systemdCgroup)
	w("        Root = %q", p.runcRoot)
	w(`  [plugins."io.containerd.grpc.v1.cri".cni]`)
	w("    bin_dir = %q", CNIBinDir)
	w("    conf_dir = %q", p.cniConfDir)
	w("    max_conf_num = 1")
	return b.String()
}
