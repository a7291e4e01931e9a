// Package load is the load scenario behind `make bench`: it lays out 110 pod
// cgroups with 3 container cgroups each (real cgroups, a sleeping process in
// every container), starts the real binary against them and measures
// /stats/summary latency over loopback, steady-state CPU and RSS. It only runs
// with KSS_LOAD=1 because it takes minutes; numbers go to docs/performance.md.
package load
