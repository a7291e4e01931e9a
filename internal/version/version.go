package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at link time:
//
//	-ldflags "-X github.com/kubelet-stats-server/kubelet-stats-server/internal/version.version=v1.2.3
//	          -X github.com/kubelet-stats-server/kubelet-stats-server/internal/version.commit=<sha>"
//
// The linker can only set package-level string variables, so these are
// written by the linker and never by code. The commit is stamped too
// because builds with -buildvcs=false (set in GOFLAGS on some machines)
// carry no VCS information.
var version, commit string

// Dev is the version of a build that carries neither a linker stamp nor
// module or VCS information (go run, go test, -buildvcs=false).
const Dev = "v0.0.0-dev"

// Info describes the running binary.
type Info struct {
	// Version is the linker stamp, else the main module version, else
	// Dev with the short VCS revision appended.
	Version string
	// Commit is the VCS revision the binary was built from, empty if
	// unknown; Modified says the work tree had uncommitted changes.
	Commit   string
	Modified bool
	// CommitTime is the revision's commit time (RFC 3339), empty if unknown.
	CommitTime string
	GoVersion  string
	Platform   string // GOOS/GOARCH
}

// Get returns the running binary's version information.
func Get() Info {
	build, _ := debug.ReadBuildInfo()
	return resolve(version, commit, build)
}

// String is the one line that --version prints and the startup log holds.
func (i Info) String() string {
	details := []string{}
	if i.Commit != "" {
		commit := i.Commit
		if i.Modified {
			commit += "-dirty"
		}
		details = append(details, "commit "+commit)
	}
	if i.CommitTime != "" {
		details = append(details, "committed "+i.CommitTime)
	}
	details = append(details, i.GoVersion, i.Platform)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(details, ", "))
}

// resolve merges the linker stamps with the toolchain's build information;
// build may be nil.
func resolve(stampedVersion, stampedCommit string, build *debug.BuildInfo) Info {
	info := Info{Version: stampedVersion, Commit: stampedCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if build == nil {
		if info.Version == "" {
			info.Version = Dev
		}
		return info
	}
	for _, s := range build.Settings {
		switch s.Key {
		case "vcs.revision":
			if stampedCommit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			info.CommitTime = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Version != "" {
		return info
	}
	// "(devel)" is what go build records for a main module without VCS
	// information (go run, -buildvcs=false); go install ...@v1.2.3 records
	// v1.2.3, and go build in a git checkout a pseudo-version.
	if v := build.Main.Version; v != "" && v != "(devel)" {
		info.Version = v
		return info
	}
	info.Version = Dev
	if info.Commit != "" {
		info.Version += "+" + shortCommit(info.Commit)
	}
	return info
}

func shortCommit(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
