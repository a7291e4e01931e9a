package v2vm

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRenderPlan(t *testing.T) {
	got := renderPlan([]planEntry{{name: "pods", timeout: 10 * time.Minute, binary: "pods.test",
		env: []string{"A=1", "B=it's"}, args: []string{"-test.run", "^(X|Y)$"}}})
	want := "run pods 600 /v2vm/src/test/e2e/pods env A=1 'B=it'\\''s' /v2vm/bin/pods.test -test.v -test.count=1 -test.timeout=9m30s -test.run '^(X|Y)$'\n"
	if got != want {
		t.Errorf("renderPlan =\n%s\nwant\n%s", got, want)
	}
}

func TestSelectEntries(t *testing.T) {
	plan := guestPlan(false)
	if got := selectEntries(plan, ""); len(got) != len(plan) {
		t.Errorf("no selection kept %d of %d entries", len(got), len(plan))
	}
	got := selectEntries(plan, "legacy,live")
	if len(got) != 2 || got[0].name != "live" || got[1].name != "legacy" {
		t.Errorf("selection = %v, want live and legacy in plan order", got)
	}
}

func TestMissingConfig(t *testing.T) {
	config := "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n"
	got := missingConfig(config, []string{"CONFIG_A=y", "CONFIG_B=y", "CONFIG_C=y", "CONFIG_C=m"})
	if strings.Join(got, " ") != "CONFIG_B=y CONFIG_C=y" {
		t.Errorf("missing = %v, want CONFIG_B=y CONFIG_C=y", got)
	}
}

// TestCPIOWriter reads the newc archive back: headers, names, data and
// 4-byte alignment, ending with the trailer.
func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.dir("bin")
	w.file("init", 0o755, []byte("#!/bin/sh\n"))
	w.symlink("bin/sh", "busybox")
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name string
		mode uint64
		data string
	}
	var got []entry
	data := buf.Bytes()
	for off := 0; off < len(data); {
		hdr := string(data[off : off+110])
		if hdr[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, hdr[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(hdr[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, nameSize := field(1), field(6), field(11)
		name := string(data[off+110 : off+110+nameSize-1])
		off = align4(off + 110 + nameSize)
		got = append(got, entry{name, uint64(mode), string(data[off : off+size])})
		off = align4(off + size)
		if name == "TRAILER!!!" {
			if off != len(data) {
				t.Errorf("%d bytes after the trailer", len(data)-off)
			}
			break
		}
	}
	want := []entry{{"bin", cpioDir | 0o755, ""}, {"init", cpioFile | 0o755, "#!/bin/sh\n"}, {"bin/sh", cpioSymlink | 0o777, "busybox"}, {"TRAILER!!!", 0, ""}}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

// TestExtractTar unpacks what busybox tar writes to the results disk: the
// archive followed by the disk's zeros; an entry escaping the directory is
// refused.
func TestExtractTar(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "out.img")
	writeTar(t, image, map[string]string{"./": "", "./live.rc": "0\n", "./sub/": "", "./sub/x.log": "ok"})
	out := filepath.Join(dir, "out")
	if err := extractTar(image, out); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"live.rc": "0\n", "sub/x.log": "ok"} {
		if got := readOr(filepath.Join(out, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	writeTar(t, image, map[string]string{"../escape": "x"})
	if err := extractTar(image, filepath.Join(dir, "out2")); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("extract of ../escape: %v", err)
	}
	if err := createSparse(image, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := extractTar(image, filepath.Join(dir, "out3")); err == nil {
		t.Error("a disk without an archive extracted without error")
	}
}

func writeTar(t *testing.T, image string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// The rest of the disk is zeros.
	if err := os.WriteFile(image, append(buf.Bytes(), make([]byte, 64<<10)...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
