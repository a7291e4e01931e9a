package image

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

// sandbox is a pod sandbox made through CRI like the
// kubelet's, for containers the framework's PodSpec cannot describe
// (host mounts, capabilities). The harness removes every sandbox at Stop.
type sandbox struct {
	rt     *framework.Runtime
	id     string
	config *runtimeapi.PodSandboxConfig
}

func runSandbox(t *testing.T, c *framework.Cluster, name string, ns *runtimeapi.NamespaceOption) *sandbox {
	t.Helper()
	uid := newUID(t)
	const namespace = "kubelet-stats-server"
	logDir := filepath.Join(c.Runtime.PodLogDir(), namespace+"_"+name+"_"+uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		LogDirectory: logDir,
		Labels: map[string]string{
			framework.LabelPodName: name, framework.LabelPodNamespace: namespace, framework.LabelPodUID: uid,
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: c.CgroupRoot + "/kubepods/burstable/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: ns,
			},
		},
	}
	resp, err := c.Runtime.CRI().RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	return &sandbox{rt: c.Runtime, id: resp.PodSandboxId, config: cfg}
}

// container is one started container of a sandbox.
type container struct {
	rt      *framework.Runtime
	id      string
	logPath string
}

func (s *sandbox) start(t *testing.T, cfg *runtimeapi.ContainerConfig) *container {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.config.LogDirectory, cfg.Metadata.Name), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.config.Labels {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
	cri := s.rt.CRI()
	created, err := cri.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: s.id, Config: cfg, SandboxConfig: s.config})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	if _, err := cri.StartContainer(t.Context(), &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		t.Fatalf("StartContainer %s: %v", cfg.Metadata.Name, err)
	}
	return &container{rt: s.rt, id: created.ContainerId, logPath: filepath.Join(s.config.LogDirectory, cfg.LogPath)}
}

// log is the container's CRI log so far.
func (c *container) log(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(data)
}

// waitExited polls until the container has exited and returns its code.
func (c *container) waitExited(t *testing.T) int32 {
	t.Helper()
	var status *runtimeapi.ContainerStatus
	framework.Eventually(t, 30*time.Second, "container "+c.id+" to exit", func() bool {
		resp, err := c.rt.CRI().ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: c.id})
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		status = resp.GetStatus()
		return status.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	return status.GetExitCode()
}

func newUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
