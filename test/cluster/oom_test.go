package cluster

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

func testOOMEvent(t *testing.T, cp *controlPlane, n *node) {
	victim := n.pods["victim"]
	app := victim.Container("app")
	oomKillIn(t, victim.CgroupPath(app))
	var event corev1.Event
	framework.Eventually(t, syncLimit, "an OOMKilling event on pod victim", func() bool {
		events, err := cp.client.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.Reason == "OOMKilling" && e.InvolvedObject.Name == "victim" {
				event = e
				return true
			}
		}
		return false
	})
	mirror := mirrorPods(t, cp)["victim"]
	if event.Type != corev1.EventTypeWarning || event.InvolvedObject.Kind != "Pod" || event.InvolvedObject.UID != mirror.UID ||
		event.InvolvedObject.FieldPath != "spec.containers{app}" || event.Source.Host != nodeName ||
		!strings.HasPrefix(event.Message, "Memory cgroup out of memory: killed process ") || !strings.HasSuffix(event.Message, " of container app") {
		t.Errorf("event %+v (mirror pod uid %s)", event, mirror.UID)
	}
	t.Logf("kubectl get events -n %s:\n%s", namespace, cp.kubectl(t, "get", "events", "-n", namespace))
}

// oomKillIn has the kernel OOM-kill a process in a container's memory
// cgroup (cgroup, relative to the hierarchy): a shell joins it, then reads
// 200 MiB into tail, far above the container's limit. The container's own
// process is small, so tail is the victim.
func oomKillIn(t *testing.T, cgroup string) {
	t.Helper()
	procs := filepath.Join("/sys/fs/cgroup/memory", cgroup, "cgroup.procs")
	if _, err := os.Stat(procs); err != nil {
		procs = filepath.Join("/sys/fs/cgroup", cgroup, "cgroup.procs") // the unified hierarchy
	}
	cmd := exec.Command("sh", "-c", "read go; head -c 200M /dev/zero | tail")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move the shell into %s: %v", procs, err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	// sh exits once tail is killed; an exit without a kill means the limit
	// was not reached, which the event wait then reports.
	if err := cmd.Wait(); err == nil {
		t.Logf("the shell in %s exited 0: no OOM kill?", cgroup)
	}
}

func testMirrorsFollowPods(t *testing.T, cp *controlPlane, n *node) {
	late, err := n.rt.RunPod(context.Background(), framework.PodSpec{Name: "late", Namespace: namespace,
		Containers: []framework.ContainerSpec{{Name: "app", Args: []string{"-mem", "4"}}}})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, syncLimit, "a Running mirror of the pod late, started after the server", func() bool {
		mirror, found := mirrorPods(t, cp)["late"]
		return found && mirror.Status.Phase == corev1.PodRunning && mirror.Annotations[mirrorAnnotation] == late.UID
	})
	if err := n.rt.RemovePod(context.Background(), n.pods["hostnet"]); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, syncLimit, "the mirror of the removed pod hostnet to go", func() bool {
		_, found := mirrorPods(t, cp)["hostnet"]
		return !found
	})
	if _, found := mirrorPods(t, cp)["busy"]; !found {
		t.Error("the mirror of busy went too")
	}
}
