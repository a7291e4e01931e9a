// Package register makes the server stand in for the kubelet towards the
// API server (--register-node), for clusters whose machines run no kubelet:
// test clusters made of an API server and this server, kwok-style. It is
// never used beside a kubelet, which owns the same objects.
//
// A Registrar (New, Run, RecordOOMKill) does what the kubelet does, with the
// kubelet's object shapes and periods (pkg/kubelet/kubelet_node_status.go,
// pkg/kubelet/nodestatus, component-helpers' lease controller,
// pkg/kubelet/pod/mirror_client.go, pkg/kubelet/oom):
//
//   - the Node: created at start, or reconciled when it exists (default
//     labels, capacity); its status holds the addresses, capacity and
//     allocatable from the machine facts, nodeInfo, daemonEndpoints with the
//     secure port (so that the API server's node proxy reaches this server)
//     and a Ready condition, which follows Source.Healthy. The status is
//     patched every StatusInterval when it changed and at least every five
//     minutes, and patched NotReady once Run's context ends;
//   - the node's Lease in kube-node-lease, renewed every 10 s (40 s lease);
//   - mirror Pods of the pods the runtime runs (Source.Pods): created with
//     the kubernetes.io/config.mirror annotation (the runtime's pod UID) and
//     the Node as controlling owner, their status (phase, IPs, conditions,
//     containerStatuses) patched as it changes, deleted when the sandbox
//     goes. Only pods carrying the annotation are ever deleted;
//   - Events: Starting and NodeReady/NodeNotReady on the Node, SystemOOM on
//     the Node for a machine-wide OOM kill (the kubelet's message), and
//     OOMKilling on the pod for a kill of one of its containers.
//
// It reads the provider's snapshot through Source and imports neither
// provider nor server; cmd wires it. It talks to the API server through
// Client, a subset of client-go's typed clients that they satisfy (tests
// use the fake clientset) and that RESTClient provides over
// internal/kubeclient: client-go's clientset and tools/record register
// every API group's types when the binary starts, megabytes of resident
// memory for a server that writes four kinds of objects. Events go through
// a small recorder that posts what tools/record posts for the kubelet and
// counts identical repeats as its correlator does, without its spam
// filter and aggregation. Without --register-node nothing of
// this package runs and nothing is written to the API server.
package register
