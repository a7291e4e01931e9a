package cri

import "context"

// RuntimeVersion is the runtime's name and version, which the kubelet
// reports as the node's containerRuntimeVersion ("containerd://1.6.20").
func (c *Client) RuntimeVersion(ctx context.Context) (name, version string, err error) {
	resp, err := c.version(ctx)
	if err != nil {
		return "", "", err
	}
	return resp.GetRuntimeName(), resp.GetRuntimeVersion(), nil
}
