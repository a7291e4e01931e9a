package register

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

const testNode = "node-a"

// fakeSource is a provider snapshot the test sets.
type fakeSource struct {
	mu     sync.Mutex
	pods   *corev1.PodList
	health error
	owners map[string][3]string
}

func (s *fakeSource) Pods() *corev1.PodList {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pods == nil {
		return nil
	}
	return s.pods.DeepCopy()
}

func (s *fakeSource) setPods(pods ...corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods = &corev1.PodList{Items: pods}
}

func (s *fakeSource) setHealth(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = err
}

func (s *fakeSource) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *fakeSource) Owner(cgroup string) (string, string, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[cgroup]
	return o[0], o[1], o[2], ok
}

// newClient is a fake clientset that gives every created object a UID, as
// the API server does.
func newClient(objects ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset(objects...)
	var n atomic.Int64
	client.PrependReactor("create", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		obj := action.(k8stesting.CreateAction).GetObject()
		if accessor, err := meta.Accessor(obj); err == nil && accessor.GetUID() == "" {
			accessor.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
		}
		return false, nil, nil
	})
	return client
}

// typedClient is a client-go clientset (the fake here) as registration's
// Client: the typed clients' methods are the ones it calls.
type typedClient struct{ cs kubernetes.Interface }

func (c typedClient) Nodes() NodeClient { return c.cs.CoreV1().Nodes() }
func (c typedClient) Leases(namespace string) LeaseClient {
	return c.cs.CoordinationV1().Leases(namespace)
}
func (c typedClient) Pods(namespace string) PodClient     { return c.cs.CoreV1().Pods(namespace) }
func (c typedClient) Events(namespace string) EventClient { return c.cs.CoreV1().Events(namespace) }

func testMachine() *cadvisor.Machine {
	return &cadvisor.Machine{
		NumCores:       2,
		MemoryCapacity: 4 << 30,
		MachineID:      "machine-id",
		SystemUUID:     "system-uuid",
		BootID:         "boot-2",
		KernelVersion:  "6.1.0-test",
		OSVersion:      "Debian GNU/Linux 12 (bookworm)",
		HugePages:      []cadvisor.HugePages{{PageSizeKB: 2048, NumPages: 4}},
	}
}

func testConfig(t *testing.T, client *fake.Clientset, src Source) Config {
	return Config{
		NodeName: testNode,
		Client:   typedClient{client},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "192.0.2.10"},
			{Type: corev1.NodeExternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: testNode},
		},
		KubeletPort:    20250,
		Machine:        testMachine(),
		RootFsCapacity: func() (uint64, error) { return 100 << 30, nil },
		RuntimeVersion: "containerd://1.6.20",
		Version:        "v0.1.0",
		Source:         src,
		StatusInterval: 20 * time.Millisecond,
		Logger:         ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(4))),
	}
}

// eventually polls check every 10 ms until it returns nil, and fails the
// test with its last error after limit.
func eventually(t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countActions counts the client's actions of verb on resource (and
// subresource, "" for the object itself).
func countActions(client *fake.Clientset, verb, resource, subresource string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == subresource {
			n++
		}
	}
	return n
}
