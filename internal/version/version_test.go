package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-05-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name    string
		stamped string
		commit  string
		build   *debug.BuildInfo
		want    Info
	}{
		{
			name:    "linker stamp wins, VCS fills commit",
			stamped: "v0.3.0-2-g0123456-dirty",
			build:   &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260501100000-0123456789ab+dirty"}, Settings: vcs},
			want: Info{Version: "v0.3.0-2-g0123456-dirty", Commit: "0123456789abcdef0123456789abcdef01234567",
				Modified: true, CommitTime: "2026-05-01T10:00:00Z"},
		},
		{
			name:    "linker stamps only (-buildvcs=false)",
			stamped: "v0.3.0-2-g0123456-dirty",
			commit:  "0123456789abcdef0123456789abcdef01234567",
			build:   &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want:    Info{Version: "v0.3.0-2-g0123456-dirty", Commit: "0123456789abcdef0123456789abcdef01234567"},
		},
		{
			name:  "go install module@version",
			build: &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}},
			want:  Info{Version: "v0.3.0"},
		},
		{
			name:  "go build in a checkout: the toolchain's pseudo-version",
			build: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260501100000-0123456789ab+dirty"}, Settings: vcs},
			want: Info{Version: "v0.0.0-20260501100000-0123456789ab+dirty", Commit: "0123456789abcdef0123456789abcdef01234567",
				Modified: true, CommitTime: "2026-05-01T10:00:00Z"},
		},
		{
			name:  "devel main module with a revision",
			build: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]},
			want:  Info{Version: Dev + "+0123456789ab", Commit: "0123456789abcdef0123456789abcdef01234567"},
		},
		{
			name:  "nothing known",
			build: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want:  Info{Version: Dev},
		},
		{
			name: "no build info",
			want: Info{Version: Dev},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.stamped, tt.commit, tt.build)
			tt.want.GoVersion, tt.want.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
			if got != tt.want {
				t.Errorf("resolve = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestInfoString(t *testing.T) {
	full := Info{Version: "v0.3.0", Commit: "0123456789abcdef", Modified: true, CommitTime: "2026-05-01T10:00:00Z",
		GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if got, want := full.String(), "v0.3.0 (commit 0123456789abcdef-dirty, committed 2026-05-01T10:00:00Z, go1.26.8, linux/arm64)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	bare := Info{Version: Dev, GoVersion: "go1.26.8", Platform: "linux/amd64"}
	if got, want := bare.String(), Dev+" (go1.26.8, linux/amd64)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// The test binary has no linker stamp, so Get reports the toolchain's view.
func TestGetWithoutStamp(t *testing.T) {
	got := Get()
	if got.Version == "" || !strings.HasPrefix(got.Version, "v") {
		t.Errorf("Get().Version = %q, want a v-prefixed version", got.Version)
	}
	if got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Get().Platform = %q", got.Platform)
	}
}
