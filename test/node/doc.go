// Package node tests the real kubelet-stats-server binary against this
// machine's real cgroups over real HTTP: the node part of /stats/summary,
// the HTTP edge cases the kubelet answers, health and graceful shutdown.
package node
