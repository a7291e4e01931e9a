package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podVolumeDirs finds pods' volumes where the kubelet mounts them:
// <root-dir>/pods/<uid>/volumes/<plugin>/<name>, the plugin's name escaped
// ("kubernetes.io~empty-dir").
type podVolumeDirs struct {
	rootDir string
}

func (d podVolumeDirs) podDir(uid string) string { return filepath.Join(d.rootDir, "pods", uid) }

// list returns the pod's volumes of the plugins that name their directory
// after the pod's volume, sorted by name. A missing directory gives none.
func (d podVolumeDirs) list(uid string) []corev1.Volume {
	volumesDir := filepath.Join(d.podDir(uid), "volumes")
	plugins, err := os.ReadDir(volumesDir)
	if err != nil {
		return nil
	}
	var volumes []corev1.Volume
	for _, plugin := range plugins {
		names, err := os.ReadDir(filepath.Join(volumesDir, plugin.Name()))
		if err != nil {
			continue
		}
		for _, name := range names {
			source, ok := volumeSource(filepath.Join(volumesDir, plugin.Name(), name.Name()), plugin.Name())
			if ok {
				volumes = append(volumes, corev1.Volume{Name: name.Name(), VolumeSource: source})
			}
		}
	}
	sort.Slice(volumes, func(i, j int) bool { return volumes[i].Name < volumes[j].Name })
	return volumes
}

// volumeSource is the type of a volume by its plugin directory. Only the
// type is known: a configMap's or secret's name, an emptyDir's size limit
// are not on disk. Persistent volumes and in-tree network plugins name
// their directory after the PersistentVolume, not the pod's volume, and
// hostPath volumes have no directory: none of those are listed.
func volumeSource(dir, plugin string) (corev1.VolumeSource, bool) {
	switch plugin {
	case "kubernetes.io~empty-dir":
		return corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}, true
	case "kubernetes.io~configmap":
		return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}, true
	case "kubernetes.io~secret":
		return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}, true
	case "kubernetes.io~projected":
		return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}, true
	case "kubernetes.io~downward-api":
		return corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{}}, true
	case "kubernetes.io~git-repo":
		return corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{}}, true
	case "kubernetes.io~csi":
		return inlineCSIVolume(dir)
	}
	return corev1.VolumeSource{}, false
}

// csiVolumeData is the part of the CSI plugin's vol_data.json that tells an
// inline (ephemeral) volume, named after the pod's volume, from a
// persistent one, named after its PersistentVolume.
type csiVolumeData struct {
	DriverName string `json:"driverName"`
	Mode       string `json:"volumeLifecycleMode"`
}

func inlineCSIVolume(dir string) (corev1.VolumeSource, bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "vol_data.json"))
	if err != nil {
		return corev1.VolumeSource{}, false
	}
	var data csiVolumeData
	if json.Unmarshal(raw, &data) != nil || data.Mode != "Ephemeral" {
		return corev1.VolumeSource{}, false
	}
	return corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: data.DriverName}}, true
}

// mounts maps a container's mounts back to the pod's volumes by their host
// paths: <pod dir>/volumes/<plugin>/<name>[/...] and, for subPath mounts,
// <pod dir>/volume-subpaths/<name>/... The kubelet's own mounts (/etc/hosts,
// the termination log) and hostPath volumes have other host paths and are
// left out.
func (d podVolumeDirs) mounts(uid string, mounts []*runtimeapi.Mount) []corev1.VolumeMount {
	podDir := d.podDir(uid) + "/"
	var out []corev1.VolumeMount
	for _, mount := range mounts {
		rest, inPod := strings.CutPrefix(mount.GetHostPath(), podDir)
		if !inPod {
			continue
		}
		parts := strings.Split(rest, "/")
		var name string
		switch {
		case parts[0] == "volumes" && len(parts) >= 3:
			name = parts[2]
		case parts[0] == "volume-subpaths" && len(parts) >= 2:
			name = parts[1]
		default:
			continue
		}
		out = append(out, corev1.VolumeMount{Name: name, MountPath: mount.ContainerPath, ReadOnly: mount.Readonly})
	}
	return out
}
