// Package analyzer measures what pods occupy on disk: du of directory trees
// (DiskUsage: no device crossing, hard links once) and of log directories
// (FilesUsage: regular files only), as the kubelet's host stats provider
// does, and the pods' volumes in the background, as its fsResourceAnalyzer
// does.
//
// Exported surface:
//   - Usage, DiskUsage, FilesUsage: du.
//   - Volume, PodVolumes, VolumeStats, MeasureVolume: a pod's volumes under
//     <root-dir>/pods/<uid>/volumes/<plugin>/<name> for the plugins named
//     after the outer volume (emptyDir, gitRepo, configMap, secret,
//     projected, downwardAPI), measured like the kubelet's metricsDu and
//     classified like IsLocalEphemeralVolume (a tmpfs emptyDir is medium
//     Memory).
//   - FsResourceAnalyzer (NewFsResourceAnalyzer, Run, PodVolumeStats): one
//     calculator per pod directory, started once and stopped once, measuring
//     at once and then every one to two periods; configMap, secret,
//     projected and downwardAPI keep their first measurement, as the
//     kubelet's cachedMetrics do. Reads never measure.
package analyzer
