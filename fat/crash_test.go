package fat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mediafs/mediafs/device"
)

// fsckTolerable are the fsck.fat findings a crash may leave: the dirty
// mark, lost clusters, a chain longer or shorter than the size of the file
// being written, FAT copies that differ (the crash fell between two
// copies), and the backup boot sector that differs while the primary is
// marked dirty.
var fsckTolerable = regexp.MustCompile(`(?i)dirty bit|free cluster summary|unused clusters|lost|reclaim|truncating|file size|differences between boot sector and its backup|fats differ|using first fat|cluster chain length|mostly harmless|^/|not automatically fixing|using first fat|cluster chain length|^\s*\d+:|offset|leaving|^\s*$|fsck\.fat|automatically removing|bytes of|clusters? (?:starting|are) |\d+ files|perform changes|\(y/n\)|auto-correcting|^\s*\d+:\w+/\w+$`)

func fsckCrashCheck(t *testing.T, img string, n int) {
	t.Helper()
	out, _ := exec.Command("fsck.fat", "-n", img).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if !fsckTolerable.MatchString(l) {
			t.Fatalf("crash after %d writes: fsck.fat -n says %q:\n%s", n, l, out)
		}
	}
}

// TestCrashEveryWrite runs a scenario (create, grow, rename, remove) with
// every write after the N-th dropped, for every N, and checks that the
// untouched files are intact and fsck finds nothing worse than lost
// clusters or the changed file short.
func TestCrashEveryWrite(t *testing.T) {
	needTools(t, "fsck.fat")
	for _, c := range []struct {
		typ  string
		size int64
		ss   int
	}{{"fat12", 2 << 20, 512}, {"fat16", 32 << 20, 2048}, {"fat32", 36 << 20, 512}} {
		t.Run(c.typ, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base.img")
			img0, d0 := newImage(t, c.size, c.ss, FormatOptions{Type: c.typ})
			v0 := mountRW(t, d0)
			keep := randBytes(1, 9000)
			writeAll(t, v0, "keep.bin", keep)
			if err := v0.Mkdir("d", 0o755); err != nil {
				t.Fatal(err)
			}
			writeAll(t, v0, "d/victim with long name.txt", randBytes(2, 3000))
			// A file already on the medium that the scenario appends to,
			// and enough clusters after it that the appended ones' FAT
			// entries fall two FAT sectors past its last one: with a clean
			// sector between them, the cache writes the link and the new
			// chain in two requests, so that a crash can fall between them
			// (adjacent dirty sectors go out in one, and then linkFrom's
			// ordering was never tested: the test passed without it).
			writeAll(t, v0, "grow.bin", randBytes(4, 3000))
			perSector := c.ss * 8 / map[string]int{"fat12": 12, "fat16": 16, "fat32": 32}[c.typ]
			writeAll(t, v0, "filler.bin", randBytes(6, (2*perSector+16)*v0.g.clusterSize))
			if err := v0.Close(); err != nil {
				t.Fatal(err)
			}
			d0.Close()
			pristine, err := os.ReadFile(img0)
			if err != nil {
				t.Fatal(err)
			}
			scenario := func(v *FS) {
				f, err := v.OpenFile("new file.dat", os.O_CREATE|os.O_RDWR, 0o644)
				if err != nil {
					return
				}
				for i := range 4 {
					if _, err := f.Write(randBytes(uint64(i), 2500)); err != nil {
						break
					}
				}
				f.Close()
				if g, err := v.OpenFile("grow.bin", os.O_RDWR|os.O_APPEND, 0); err == nil {
					g.Write(randBytes(5, 9000))
					g.Close()
				}
				v.Rename("d/victim with long name.txt", "moved.txt")
				v.Mkdir("d2", 0o755)
				v.Rename("d", "d2/d")
				v.Remove("moved.txt")
				v.Close()
			}
			// Both write modes: every change written through, and batched.
			for _, through := range []bool{true, false} {
				mount := func(d device.Device) *FS {
					v, err := Open(d, Options{Writable: true, WriteThrough: through})
					if err != nil {
						t.Fatal(err)
					}
					return v
				}
				// Count the writes of a full run.
				mem := device.NewMemory(append([]byte(nil), pristine...), c.ss)
				fd := device.NewFaulty(mem)
				scenario(mount(fd))
				_, total, _ := fd.Counts()
				step := int64(1)
				if total > 25 && !*long {
					step = total / 25
				}
				for n := int64(0); n <= total; n += step {
					mem := device.NewMemory(append([]byte(nil), pristine...), c.ss)
					fd := device.NewFaulty(mem)
					fd.DropWritesAfter(n)
					scenario(mount(fd))
					if err := os.WriteFile(base, mem.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					fsckCrashCheck(t, base, int(n))
					// Not mustOpen: its cleanup would hold every
					// iteration's image until the subtest ends.
					v, err := Open(device.NewMemory(mem.Bytes(), c.ss), Options{})
					if err != nil {
						t.Fatalf("write-through %v, crash after %d writes: open: %v", through, n, err)
					}
					if got := readAllFS(t, v, "keep.bin"); !bytes.Equal(got, keep) {
						t.Fatalf("write-through %v, crash after %d writes: keep.bin damaged", through, n)
					}
					if st := v.CacheStats(); st.Pins != 0 || st.Pinned != 0 || st.Dirty != 0 {
						t.Errorf("cache not clean after the check: %+v", st)
					}
					v.Close()
				}
			}
		})
	}
}
