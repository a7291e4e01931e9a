package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeName is the runtime's name as the kubelet writes it in container
// IDs ("containerd" in "containerd://<id>").
func (c *Client) RuntimeName(ctx context.Context) (string, error) {
	resp, err := c.version(ctx)
	if err != nil {
		return "", err
	}
	return resp.GetRuntimeName(), nil
}

// PodSandboxStatus returns the status of one sandbox: its network, its
// namespace options and its state. It asks for the short form; the verbose
// one carries the runtime's whole spec, which /pods does not need.
func (c *Client) PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, c.wrap("PodSandboxStatus "+id, err)
	}
	return resp.GetStatus(), nil
}

// ContainerStatus returns the status of one container: its image by tag
// and digest, start and finish times, exit code and reason, mounts and,
// where the runtime reports them, its resources. These are what the
// kubelet's pod status is made of and ListContainers lacks. It asks for the
// verbose form, whose Info carries the runtime's own view (containerd:
// Info["info"] JSON with the OCI "runtimeSpec", which holds the resources
// the kubelet asked for when the runtime does not report them).
func (c *Client) ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, c.wrap("ContainerStatus "+id, err)
	}
	return resp, nil
}

// IsNotFound reports whether err, possibly wrapped, carries the gRPC code
// NotFound: the sandbox or container was removed since it was listed.
func IsNotFound(err error) bool {
	return err != nil && status.Code(err) == codes.NotFound
}
