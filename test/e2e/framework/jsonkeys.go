package framework

// KeyPaths lists every key path of a decoded JSON value, the elements of
// arrays merged: ".pods[].containers[].cpu.usageNanoCores". Tests compare
// the shape of a summary with the kubelet's with it.
func KeyPaths(v any) map[string]bool {
	paths := map[string]bool{}
	addKeyPaths(v, "", paths)
	return paths
}

func addKeyPaths(v any, prefix string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for key, child := range v {
			out[prefix+"."+key] = true
			addKeyPaths(child, prefix+"."+key, out)
		}
	case []any:
		for _, child := range v {
			addKeyPaths(child, prefix+"[]", out)
		}
	}
}
