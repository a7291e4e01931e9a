package collector

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestDetectMounts(t *testing.T) {
	tests := []struct {
		name      string
		dirs      []string
		files     map[string]string
		symlinks  map[string]string
		want      Hierarchy
		wantV1    []string
		wantTrees []string
		wantErr   bool
	}{
		{
			name:      "v2",
			files:     map[string]string{"cgroup.controllers": "cpu memory\n"},
			want:      HierarchyV2,
			wantTrees: []string{"."},
		},
		{
			name:      "v1",
			dirs:      []string{"cpu", "cpuacct", "memory", "pids", "cpuset", "blkio"},
			want:      HierarchyV1,
			wantV1:    []string{"cpu", "cpuacct", "memory", "pids"},
			wantTrees: []string{"memory", "cpu", "cpuacct", "pids"},
		},
		{
			name:      "hybrid",
			dirs:      []string{"cpu", "cpuacct", "memory", "pids"},
			files:     map[string]string{"unified/cgroup.controllers": "\n"},
			want:      HierarchyHybrid,
			wantV1:    []string{"cpu", "cpuacct", "memory", "pids"},
			wantTrees: []string{"memory", "cpu", "cpuacct", "pids", "unified"},
		},
		{
			name:      "co-mounted cpu,cpuacct walked once, missing pids",
			dirs:      []string{"cpu,cpuacct", "memory", "unified"},
			symlinks:  map[string]string{"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct"},
			want:      HierarchyV1,
			wantV1:    []string{"cpu", "cpuacct", "memory"},
			wantTrees: []string{"memory", "cpu"},
		},
		{
			name:    "nothing",
			dirs:    []string{"systemd"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeFiles(t, root, tt.files)
			for link, target := range tt.symlinks {
				if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			m, err := detectMounts(root)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if m.hierarchy != tt.want {
				t.Errorf("hierarchy %v, want %v", m.hierarchy, tt.want)
			}
			var v1 []string
			for h, c := range v1Controllers {
				if m.dirs[h] != "" {
					v1 = append(v1, c)
				}
			}
			wantV1 := append([]string(nil), tt.wantV1...)
			if !reflect.DeepEqual(sortedCopy(v1), sortedCopy(wantV1)) {
				t.Errorf("v1 controllers %q, want %q", v1, tt.wantV1)
			}
			var trees []string
			for _, tr := range m.trees() {
				rel, _ := filepath.Rel(root, tr.dir)
				trees = append(trees, rel)
			}
			if !reflect.DeepEqual(trees, tt.wantTrees) {
				t.Errorf("trees %q, want %q", trees, tt.wantTrees)
			}
		})
	}
}

func sortedCopy(in []string) []string {
	out := append([]string{}, in...)
	slices.Sort(out)
	return out
}
