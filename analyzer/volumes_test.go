package analyzer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

func TestPodVolumes(t *testing.T) {
	pod := t.TempDir()
	for _, dir := range []string{
		"volumes/kubernetes.io~secret/token",
		"volumes/kubernetes.io~empty-dir/scratch",
		"volumes/kubernetes.io~empty-dir/cache",
		"volumes/kubernetes.io~configmap/config",
		"volumes/kubernetes.io~csi/pvc-0d2f/mount", // named after the PV: needs the pod spec
		"volumes/kubernetes.io~nfs/share",
	} {
		if err := os.MkdirAll(filepath.Join(pod, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(pod, "volumes/kubernetes.io~empty-dir/not-a-volume"), 10)

	volumes, err := PodVolumes(pod)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range volumes {
		got = append(got, v.Plugin+"/"+v.Name)
		if v.Path != filepath.Join(pod, "volumes", v.Plugin, v.Name) {
			t.Errorf("%s: path %s", v.Name, v.Path)
		}
	}
	want := []string{"kubernetes.io~empty-dir/cache", "kubernetes.io~configmap/config", "kubernetes.io~empty-dir/scratch", "kubernetes.io~secret/token"}
	if len(got) != len(want) {
		t.Fatalf("volumes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("volumes %v, want %v", got, want)
			break
		}
	}

	if volumes, err := PodVolumes(t.TempDir()); err != nil || volumes != nil {
		t.Errorf("a pod without a volumes dir: %v, %v", volumes, err)
	}
}

func TestIsLocalEphemeral(t *testing.T) {
	const ext4Magic = 0xef53
	for _, tc := range []struct {
		plugin string
		fsType int64
		want   bool
	}{
		{"kubernetes.io~empty-dir", ext4Magic, true},
		{"kubernetes.io~empty-dir", tmpfsMagic, false}, // medium: Memory
		{"kubernetes.io~git-repo", ext4Magic, true},
		{"kubernetes.io~configmap", tmpfsMagic, true},
		{"kubernetes.io~secret", tmpfsMagic, false},
		{"kubernetes.io~projected", tmpfsMagic, false},
		{"kubernetes.io~downward-api", tmpfsMagic, false},
		{"kubernetes.io~csi", ext4Magic, false},
	} {
		if got := isLocalEphemeral(tc.plugin, tc.fsType); got != tc.want {
			t.Errorf("isLocalEphemeral(%s, %#x) = %v, want %v", tc.plugin, tc.fsType, got, tc.want)
		}
	}
}

func TestMeasureVolume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "volumes", "kubernetes.io~empty-dir", "scratch")
	writeFile(t, filepath.Join(dir, "data"), 1<<20)
	stats, err := MeasureVolume(Volume{Name: "scratch", Plugin: "kubernetes.io~empty-dir", Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if stats.Used.Inodes != 2 || stats.Used.Bytes < 1<<20 || stats.Used.Bytes > 1<<20+64<<10 {
		t.Errorf("used %+v, want the directory and a 1 MiB file", stats.Used)
	}
	if stats.Capacity != st.Blocks*uint64(st.Bsize) || stats.Inodes != st.Files || stats.Available == 0 || stats.Available > stats.Capacity {
		t.Errorf("filesystem %+v, statfs says %d blocks of %d, %d inodes", stats, st.Blocks, st.Bsize, st.Files)
	}
	if !stats.Ephemeral || stats.Name != "scratch" || time.Since(stats.Time) > time.Minute {
		t.Errorf("stats %+v", stats)
	}
	if _, err := MeasureVolume(Volume{Name: "gone", Plugin: "kubernetes.io~empty-dir", Path: filepath.Join(dir, "gone")}); err == nil {
		t.Error("a vanished volume measured without error")
	}
}

func TestMemoryEmptyDirIsNotEphemeral(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "volumes", "kubernetes.io~empty-dir", "shm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	stats, err := MeasureVolume(Volume{Name: "shm", Plugin: "kubernetes.io~empty-dir", Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Ephemeral || stats.Capacity != 8<<20 {
		t.Errorf("tmpfs emptyDir: %+v, want a non-ephemeral 8 MiB volume", stats)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s", what)
}

func TestFsResourceAnalyzer(t *testing.T) {
	podsDir := t.TempDir()
	emptyDir := filepath.Join(podsDir, "uid-a", "volumes", "kubernetes.io~empty-dir", "scratch")
	configMap := filepath.Join(podsDir, "uid-a", "volumes", "kubernetes.io~configmap", "config")
	writeFile(t, filepath.Join(emptyDir, "one"), 1<<20)
	writeFile(t, filepath.Join(configMap, "settings"), 4096)
	if err := os.MkdirAll(filepath.Join(podsDir, "uid-without-volumes", "etc-hosts-dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	analyzer := NewFsResourceAnalyzer(podsDir, 20*time.Millisecond, klog.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { analyzer.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	byName := func(uid string) map[string]VolumeStats {
		stats, ok := analyzer.PodVolumeStats(uid)
		if !ok {
			return nil
		}
		out := map[string]VolumeStats{}
		for _, s := range stats {
			out[s.Name] = s
		}
		return out
	}
	waitFor(t, "first measurement", func() bool { return byName("uid-a") != nil })
	first := byName("uid-a")
	if len(first) != 2 || first["scratch"].Used.Bytes < 1<<20 || !first["config"].Ephemeral || first["config"].Used.Inodes != 2 {
		t.Fatalf("first measurement %+v", first)
	}
	if _, ok := analyzer.PodVolumeStats("uid-without-volumes"); ok {
		t.Error("a pod without volumes has volume stats")
	}

	// emptyDirs are measured again; configMaps keep their first result.
	writeFile(t, filepath.Join(emptyDir, "two"), 1<<20)
	writeFile(t, filepath.Join(configMap, "more"), 4096)
	waitFor(t, "emptyDir growth seen", func() bool { return byName("uid-a")["scratch"].Used.Bytes >= 2<<20 })
	if got := byName("uid-a")["config"]; got != first["config"] {
		t.Errorf("configMap measured again: %+v, first %+v", got, first["config"])
	}

	if err := os.RemoveAll(filepath.Join(podsDir, "uid-a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "removed pod forgotten", func() bool { _, ok := analyzer.PodVolumeStats("uid-a"); return !ok })
}

func TestFsResourceAnalyzerDisabled(t *testing.T) {
	analyzer := NewFsResourceAnalyzer(t.TempDir(), 0, klog.Background())
	analyzer.Run(context.Background()) // returns at once
	if _, ok := analyzer.PodVolumeStats("any"); ok {
		t.Error("a disabled analyzer has stats")
	}
}
