// Package analyzer measures what pods occupy on disk: du of directory trees
// (DiskUsage: no device crossing, hard links once) and of log directories
// (FilesUsage: regular files only), as the kubelet's fsResourceAnalyzer and
// host stats provider do.
package analyzer
