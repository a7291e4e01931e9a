package cadvisor

import (
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// newV1Manager returns a reader over existing v1 directories. fs.NewManager
// only fails without Resources, which we always pass, so the error cannot
// happen; Apply and Set are never called.
func newV1Manager(paths map[string]string) statsManager {
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return failingManager{err: err}
	}
	return m
}

// newV2Manager returns a reader over an existing cgroup2 directory;
// fs2.NewManager only records the path when it is given one.
func newV2Manager(dir string) statsManager {
	m, err := fs2.NewManager(&cgroups.Cgroup{}, dir)
	if err != nil {
		return failingManager{err: err}
	}
	return m
}

// failingManager stands in for a manager that could not be built, so that
// the error surfaces (once) through the normal read path.
type failingManager struct{ err error }

func (f failingManager) Stats(*cgroups.StatsOptions) (*cgroups.Stats, error) { return nil, f.err }
func (f failingManager) OOMKillCount() (uint64, error)                       { return 0, f.err }
