// Package load is the load scenario behind `make bench`: it lays out pod
// cgroups with 3 container cgroups each (real cgroups, a sleeping process in
// every container; 110 pods, or KSS_LOAD_PODS), starts the real binary
// against them and measures /stats/summary latency over loopback,
// steady-state CPU and RSS. It only runs with KSS_LOAD=1 because it takes
// minutes; numbers go to docs/performance.md.
//
// TestProfile (KSS_PROFILE=<dir>) runs the collector, the provider and the
// handlers in the test process instead and writes CPU, allocation and heap
// profiles of the housekeeping ticks and of the first scrape of a snapshot.
// TestProfileServer and TestProfileRuntime (the same variable) run the
// server's own app.Run in the test process, over that tree or over real
// pods under containerd, and write heap profiles of it.
package load
