package golden

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from this run instead of comparing")

func TestMain(m *testing.M) {
	// The trees are plain files, not cgroupfs: the cgroup library refuses
	// to read them otherwise. Nothing here writes a cgroup.
	cgroups.TestMode = true
	os.Exit(m.Run())
}

// goldenCase is one tree the server runs over.
type goldenCase struct {
	name string
	tree string
	// withoutUnified hides cgroup/unified: a hybrid machine's tree minus
	// its cgroup2 mount is the same machine on pure cgroup v1.
	withoutUnified bool
}

var goldenCases = []goldenCase{
	{name: "hybrid", tree: "hybrid"},
	{name: "v1", tree: "hybrid", withoutUnified: true},
	{name: "v2", tree: "v2"},
	{name: "v2-systemd", tree: "v2-systemd"},
}

// endpoint is one answer compared with its golden file.
type endpoint struct {
	path, file string
	normalize  func(string) string
}

var endpoints = []endpoint{
	{path: "/stats/summary", file: "summary.json", normalize: normalizeJSON},
	{path: "/stats/summary?only_cpu_and_memory=true", file: "summary-cpu-memory.json", normalize: normalizeJSON},
	{path: "/metrics/resource", file: "metrics-resource.txt", normalize: normalizeMetrics},
	{path: "/metrics/cadvisor", file: "metrics-cadvisor.txt", normalize: normalizeMetrics},
}

// TestGolden runs the collector, provider and read-only server over each
// captured tree and compares their answers with testdata/golden/<case>.
// go test ./test/golden -update rewrites the goldens; review the diff.
func TestGolden(t *testing.T) {
	staged := stageTrees(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			tree, ok := staged[tc.tree]
			if !ok {
				t.Skipf("no %s tree captured yet (testdata/trees/%s)", tc.tree, tc.tree)
			}
			mount := filepath.Join(tree.root, "cgroup")
			if tc.withoutUnified {
				mount = v1View(t, tree.root)
			}
			handler := serveTree(t, tree.root, mount, tree.manifest)
			for _, ep := range endpoints {
				got := ep.normalize(get(t, handler, ep.path))
				compareGolden(t, filepath.Join("testdata", "golden", tc.name, ep.file), got)
			}
		})
	}
}

// get answers one request, which must succeed.
func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// compareGolden compares got with the golden file, or writes it with -update.
func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (go test ./test/golden -update writes it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test ./test/golden -update rewrites it; review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists, in order, the lines only one side has, at most 40.
func lineDiff(want, got string) string {
	wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
	count := func(lines []string) map[string]int {
		m := map[string]int{}
		for _, l := range lines {
			m[l]++
		}
		return m
	}
	inWant, inGot := count(wantLines), count(gotLines)
	var b strings.Builder
	shown := 0
	report := func(prefix string, lines []string, other map[string]int) {
		for i, l := range lines {
			if other[l] > 0 {
				other[l]--
				continue
			}
			if shown++; shown <= 40 {
				fmt.Fprintf(&b, "%s%d: %s\n", prefix, i+1, l)
			}
		}
	}
	report("-want ", wantLines, copyCounts(inGot))
	report("+got  ", gotLines, copyCounts(inWant))
	if shown > 40 {
		fmt.Fprintf(&b, "... and %d more lines\n", shown-40)
	}
	return b.String()
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stagedTree is a captured tree copied where its files can be given their
// captured modification times.
type stagedTree struct {
	root     string
	manifest *Manifest
}

// stageTrees stages every tree the cases name that has been captured,
// each once (the hybrid and v1 cases share one).
func stageTrees(t *testing.T) map[string]stagedTree {
	t.Helper()
	staged := map[string]stagedTree{}
	for _, tc := range goldenCases {
		src := filepath.Join("testdata", "trees", tc.tree)
		if _, done := staged[tc.tree]; done {
			continue
		}
		if _, err := os.Stat(filepath.Join(src, ManifestFile)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		root, manifest := stageTree(t, src)
		staged[tc.tree] = stagedTree{root: root, manifest: manifest}
	}
	return staged
}

// stageTree copies the tree into a temporary directory and gives the
// cgroups the modification times they were captured with, from which the
// collector derives creation (start) times.
func stageTree(t *testing.T, src string) (string, *Manifest) {
	t.Helper()
	manifest, err := ReadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := copyTree(src, root); err != nil {
		t.Fatal(err)
	}
	for rel, nanos := range manifest.ModTimes {
		at := time.Unix(0, nanos)
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(rel)), at, at); err != nil {
			t.Fatalf("manifest names a file the tree lacks: %v", err)
		}
	}
	return root, manifest
}

// v1View is a cgroup mount of the staged tree without its cgroup2 mount:
// links to each v1 hierarchy (as co-mounted controllers are links on a
// real machine), so that both cases read the same files.
func v1View(t *testing.T, root string) string {
	t.Helper()
	mount := filepath.Join(t.TempDir(), "cgroup")
	if err := os.Mkdir(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "unified" {
			continue
		}
		if err := os.Symlink(filepath.Join(root, "cgroup", e.Name()), filepath.Join(mount, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return mount
}

// copyTree copies regular files, directories and symlinks (co-mounted v1
// controllers are links) from src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
