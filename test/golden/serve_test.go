package golden

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// serveTree wires collector, provider and read-only server over the tree
// at root, its cgroup hierarchies at mount, the way
// cmd/kubelet-stats-server/app.Run does, except for what a tree cannot
// hold: no container runtime (pods come from the cgroup tree and
// their names from var/log), statfs from the manifest, no volume analyzer
// (du of directories depends on the filesystem the tree is checked out
// on), no OOM watcher. It then runs two housekeeping ticks: the files do
// not change between them, so every CPU rate is 0.
//
// In-process rather than the binary: the cgroup library the binary reads
// through refuses files that are not on a cgroup filesystem (TestMain
// lifts that), and the binary would use any runtime answering on the
// default CRI sockets.
func serveTree(t *testing.T, root, mount string, m *Manifest) http.Handler {
	t.Helper()
	logs := &logLines{}
	logger := funcr.New(logs.add, funcr.Options{Verbosity: 2})
	procRoot, sysRoot := filepath.Join(root, "proc"), filepath.Join(root, "sys")
	machine, err := collector.ReadMachine(procRoot, sysRoot)
	if err != nil {
		t.Fatal(err)
	}
	system := systemCgroups(t, procRoot, m)
	sampler, err := collector.New(collector.Config{
		CgroupMount:    mount,
		ProcRoot:       procRoot,
		SysRoot:        sysRoot,
		Tracked:        tracked(system),
		Interval:       time.Second,
		Retention:      10 * time.Second,
		RescanInterval: time.Hour,
		Logger:         logger.WithName("collector"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sampler.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	podLogs := filepath.Join(root, "var", "log", "pods")
	stats := provider.New(provider.Config{
		NodeName:         m.NodeName,
		BootTime:         machine.BootTime,
		RootDir:          filepath.Join(root, "var", "lib", "kubelet"),
		SystemCgroups:    system,
		Interval:         time.Second,
		Sampler:          sampler,
		FsStats:          capturedFs(m.RootFs),
		Rlimit:           func() cadvisor.Rlimit { return collector.ReadRlimit(procRoot) },
		PodRoot:          podCgroupRoot(m.CgroupDriver),
		Machine:          machine,
		StatsSource:      provider.StatsSourceCollector,
		PodLogsDir:       podLogs,
		ContainerLogsDir: filepath.Join(filepath.Dir(podLogs), "containers"),
		Logger:           logger.WithName("provider"),
	})
	stats.Tick(t.Context())
	stats.Tick(t.Context())
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("the collector or provider logged errors over the tree:\n%s", strings.Join(errs, "\n"))
	}
	return server.NewReadOnlyHandler(server.Config{
		Logger: logr.Discard(),
		// The kubelet's IsPsiEnabled, as app.Run decides it.
		PressureMetrics: fileExists(filepath.Join(mount, "cpu.pressure")),
	}, stats, stats)
}

// systemCgroups are app.resolveSystemCgroups over the tree: the kubelet's
// cgroup from the manifest or else found by its process in proc/, the
// runtime and misc cgroups from the manifest, the pods' root from the
// driver.
func systemCgroups(t *testing.T, procRoot string, m *Manifest) []provider.SystemCgroup {
	t.Helper()
	kubelet := provider.SystemCgroup{Name: statsapi.SystemContainerKubelet, Cgroup: m.KubeletCgroups}
	if kubelet.Cgroup != "" {
		return append([]provider.SystemCgroup{kubelet}, otherSystemCgroups(m)...)
	}
	proc, found, err := provider.DiscoverKubelet(procRoot)
	switch {
	case err != nil:
		// As app.Run: logged, and the kubelet's system container omitted,
		// which the goldens then show.
		t.Logf("look for the kubelet in the tree: %v", err)
	case found:
		kubelet.Cgroup, kubelet.StartTime = proc.Cgroup, proc.StartTime
	}
	return append([]provider.SystemCgroup{kubelet}, otherSystemCgroups(m)...)
}

func otherSystemCgroups(m *Manifest) []provider.SystemCgroup {
	return []provider.SystemCgroup{
		{Name: statsapi.SystemContainerRuntime, Cgroup: m.RuntimeCgroups},
		{Name: statsapi.SystemContainerMisc, Cgroup: m.SystemCgroups},
		{Name: statsapi.SystemContainerPods, Cgroup: podCgroupRoot(m.CgroupDriver)},
	}
}

// tracked is app.trackedCgroups: every system cgroup but "/".
func tracked(system []provider.SystemCgroup) []string {
	var out []string
	for _, sys := range system {
		if sys.Cgroup != "" && sys.Cgroup != "/" {
			out = append(out, sys.Cgroup)
		}
	}
	return out
}

func podCgroupRoot(driver string) string {
	if driver == "systemd" {
		return "/kubepods.slice"
	}
	return "/kubepods"
}

// capturedFs answers statfs of any path with the captured node filesystem.
func capturedFs(fs RootFs) func(string) (cadvisor.FsStats, error) {
	return func(string) (cadvisor.FsStats, error) {
		return cadvisor.FsStats{
			Timestamp: time.Now(), Capacity: fs.Capacity, Available: fs.Available, Usage: fs.Usage,
			Inodes: fs.Inodes, InodesFree: fs.InodesFree,
		}, nil
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// logLines keeps what the collector and provider log; discovery logs from
// its own goroutine.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

// errors are the lines logged with Error.
func (l *logLines) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, `"error"=`) {
			out = append(out, line)
		}
	}
	return out
}
