package image

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	nodeName = "kss-image-e2e"
	// privateFileBytes are written into a 0700 directory of another user
	// inside the busy pod's emptyDir: only CAP_DAC_READ_SEARCH lets the
	// server's du count them.
	privateFileBytes = 2 << 20
	otherUID         = 1000
)

func TestImage(t *testing.T) {
	img := makeImage(t)
	ds := loadDaemonSet(t)
	c := framework.StartCluster(t, "kss-image")
	rt := c.Runtime
	images := imageService(t, rt.Socket())

	// Both archives import; both are the same image (one config digest).
	importArchive(t, rt, img.DockerArchive)
	dockerID := waitImage(t, images, img.Tag).GetId()
	importArchive(t, rt, img.OCIArchive)
	status := waitImage(t, images, img.Tag)
	if status.GetId() != dockerID {
		t.Errorf("the OCI archive's image is %s, the docker archive's %s", status.GetId(), dockerID)
	}
	if uid := status.GetUid(); uid == nil || uid.GetValue() != 65532 {
		t.Errorf("image user %v, want 65532 (nonroot)", uid)
	}

	busy := runBusyPod(t, rt)
	sandbox := runSandbox(t, c, "kubelet-stats-server", namespaces(ds.Spec.Template.Spec))
	ports := struct{ readOnly, healthz, secure int }{serverproc.FreePort(t), serverproc.FreePort(t), serverproc.FreePort(t)}
	pki := t.TempDir()
	cfg, err := containerConfig(ds, img.Tag, podEnv{
		NodeName: nodeName,
		HostPaths: map[string]string{
			"/var/lib/kubelet": sharedMount(t, rt.RootDir()),
			"/var/log/pods":    rt.PodLogDir(),
			"/run/containerd":  filepath.Dir(rt.Socket()),
		},
		EmptyDirs: map[string]string{"pki": pki},
	}, []string{
		// The harness has no API server: standalone secure port.
		"--kubeconfig=", "--client-ca-file=",
		"--address=127.0.0.1",
		"--read-only-port=" + strconv.Itoa(ports.readOnly),
		"--port=" + strconv.Itoa(ports.secure),
		"--healthz-port=" + strconv.Itoa(ports.healthz),
		"--container-runtime-endpoint=unix:///run/containerd/" + filepath.Base(rt.Socket()),
		"--cgroup-root=" + c.CgroupRoot, "--cgroup-driver=cgroupfs",
		"--housekeeping-interval=1s", "--stats-retention=10s", "--volume-stats-agg-period=1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	server := sandbox.start(t, cfg)
	base := "http://127.0.0.1:" + strconv.Itoa(ports.readOnly)

	t.Run("liveness probe answers", func(t *testing.T) {
		probe := ds.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet
		url := fmt.Sprintf("http://%s:%d%s", probe.Host, ports.healthz, probe.Path)
		framework.Eventually(t, 30*time.Second, "healthz ok", func() bool {
			status, body := get(t, url)
			return status == http.StatusOK && body == "ok"
		})
	})

	t.Run("summary sees the pod's network, logs and private volume files", func(t *testing.T) {
		var pod *statsapi.PodStats
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("last stats of the busy pod: %s", mustJSON(pod))
			}
		})
		framework.Eventually(t, 60*time.Second, "busy pod with network, logs and its private volume files", func() bool {
			pod = findPod(t, base, busy.UID)
			return pod != nil && podComplete(pod)
		})
	})

	t.Run("secure port serves TLS from the emptyDir certificate", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			// The certificate is self-signed; this checks only that the
			// port serves TLS and authenticates.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/stats/summary", ports.secure))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous /stats/summary on the secure port: %d, want 401", resp.StatusCode)
		}
		if _, err := os.Stat(filepath.Join(pki, "kubelet-stats-server.crt")); err != nil {
			t.Errorf("the certificate was not kept in the emptyDir: %v", err)
		}
	})

	t.Run("startup log carries the stamped version", func(t *testing.T) {
		if log := server.log(t); !strings.Contains(log, "Starting kubelet-stats-server") || !strings.Contains(log, img.Version) {
			t.Errorf("no startup line with version %s in:\n%s", img.Version, log)
		}
	})

	t.Run("--version as the image's default user", func(t *testing.T) {
		cfg := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "version"},
			Image:    &runtimeapi.ImageSpec{Image: img.Tag},
			Args:     []string{"--version"},
			LogPath:  "version/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: namespaces(ds.Spec.Template.Spec),
			}},
		}
		ctr := sandbox.start(t, cfg)
		code := ctr.waitExited(t)
		if log := ctr.log(t); code != 0 || !strings.Contains(log, "kubelet-stats-server "+img.Version+" (") {
			t.Errorf("--version exited %d, printed:\n%s", code, log)
		}
	})

	logMemory(t, rt, server.id)
	if t.Failed() {
		t.Logf("server log:\n%s", server.log(t))
	}
}

// podComplete: the stats that need the DaemonSet's mounts and
// capabilities. Network comes from /host/proc/<pid>/net/dev, logs from
// /var/log/pods, the volume from du under /var/lib/kubelet, through a
// directory only CAP_DAC_READ_SEARCH may enter.
func podComplete(pod *statsapi.PodStats) bool {
	if pod.Network == nil || pod.Network.TxBytes == nil || *pod.Network.TxBytes == 0 {
		return false
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Logs == nil || pod.Containers[0].Logs.UsedBytes == nil || *pod.Containers[0].Logs.UsedBytes == 0 {
		return false
	}
	for _, v := range pod.VolumeStats {
		if v.Name == "data" && v.UsedBytes != nil && *v.UsedBytes >= privateFileBytes {
			return true
		}
	}
	return false
}

func findPod(t *testing.T, base, uid string) *statsapi.PodStats {
	t.Helper()
	status, body := get(t, base+"/stats/summary")
	if status != http.StatusOK {
		return nil
	}
	var summary statsapi.Summary
	if err := json.Unmarshal([]byte(body), &summary); err != nil {
		t.Fatalf("summary: %v", err)
	}
	if summary.Node.NodeName != nodeName {
		t.Fatalf("node name %q, want %q from $(NODE_NAME)", summary.Node.NodeName, nodeName)
	}
	for i := range summary.Pods {
		if summary.Pods[i].PodRef.UID == uid {
			return &summary.Pods[i]
		}
	}
	return nil
}

// get returns status and body, or 0 while nothing listens yet.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func mustJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// runBusyPod runs a pod that sends traffic and whose emptyDir holds a
// directory of another user that nobody else may enter.
func runBusyPod(t *testing.T, rt *framework.Runtime) *framework.Pod {
	t.Helper()
	pod, err := rt.RunPod(t.Context(), framework.PodSpec{
		Name: "busy", EmptyDirs: []string{"data"},
		Containers: []framework.ContainerSpec{{Name: "busy", Args: []string{"-net", "-net-interval", "100ms"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(pod.Volumes["data"], "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(private, "blob"), make([]byte, privateFileBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(private, "blob"), private} {
		if err := os.Chown(p, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
	}
	return pod
}

// sharedMount bind-mounts dir onto itself as a shared mount: containerd
// only gives HostToContainer propagation (the DaemonSet's /var/lib/kubelet)
// for sources on shared or slave mounts, as /var/lib/kubelet is on a node.
func sharedMount(t *testing.T, dir string) string {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("make %s shared: %v", dir, err)
	}
	return dir
}

func importArchive(t *testing.T, rt *framework.Runtime, archive string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", "--address", rt.Socket(), "--namespace", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import %s: %v\n%s", filepath.Base(archive), err, out)
	}
	t.Logf("ctr images import %s: %s", filepath.Base(archive), strings.TrimSpace(string(out)))
}

func imageService(t *testing.T, socket string) runtimeapi.ImageServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewImageServiceClient(conn)
}

// waitImage polls until CRI, which learns of imports through events,
// reports ref.
func waitImage(t *testing.T, images runtimeapi.ImageServiceClient, ref string) *runtimeapi.Image {
	t.Helper()
	var img *runtimeapi.Image
	framework.Eventually(t, 30*time.Second, "CRI to see "+ref, func() bool {
		resp, err := images.ImageStatus(t.Context(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		img = resp.GetImage()
		return err == nil && img != nil
	})
	return img
}

// logMemory records what the server in its container costs, from the
// runtime's view of its cgroup.
func logMemory(t *testing.T, rt *framework.Runtime, containerID string) {
	t.Helper()
	resp, err := rt.CRI().ContainerStats(t.Context(), &runtimeapi.ContainerStatsRequest{ContainerId: containerID})
	if err != nil {
		t.Logf("container stats: %v", err)
		return
	}
	mem := resp.GetStats().GetMemory()
	t.Logf("server container: memory working set %.1f MiB, usage %.1f MiB",
		float64(mem.GetWorkingSetBytes().GetValue())/(1<<20), float64(mem.GetUsageBytes().GetValue())/(1<<20))
}
