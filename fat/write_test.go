package fat

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs/device"
)

// fsckClean runs fsck.fat -n on img and fails the test unless it is clean.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput()
	if testing.Verbose() {
		t.Logf("fsck: %s", out)
	}
	if err != nil || strings.Contains(string(out), "Dirty bit") {
		t.Fatalf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
}

// newImage formats a size-byte image file with sector size ss.
func newImage(t testing.TB, size int64, ss int, opts FormatOptions) (string, *device.File) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d, err := device.Open(img, device.Options{SectorSize: ss})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := Format(d, opts); err != nil {
		t.Fatal(err)
	}
	return img, d
}

func mountRW(t testing.TB, d device.Device) *FS {
	t.Helper()
	v, err := Open(d, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeAll(t testing.TB, v *FS, name string, data []byte) {
	t.Helper()
	f, err := v.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAllFS(t testing.TB, v *FS, name string) []byte {
	t.Helper()
	f, err := v.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkBalanced(t testing.TB, v *FS) {
	t.Helper()
	if st := v.CacheStats(); st.Pins != 0 || st.Dirty != 0 {
		t.Fatalf("cache not balanced: %+v", st)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	needTools(t, "fsck.fat", "mtype", "mdir")
	for _, c := range []struct {
		typ  string
		size int64
		ss   int
	}{
		{"fat12", 4 << 20, 512}, {"fat16", 32 << 20, 512}, {"fat32", 80 << 20, 512},
		{"fat12", 8 << 20, 2048}, {"fat16", 128 << 20, 2048}, {"fat32", 300 << 20, 2048},
	} {
		t.Run(c.typ+"-"+itoa(c.ss), func(t *testing.T) {
			img, d := newImage(t, c.size, c.ss, FormatOptions{Type: c.typ, Label: "Test Vol", SerialSet: true, Serial: 0x1234})
			v := mountRW(t, d)
			cs := v.Info().ClusterSize
			files := map[string][]byte{}
			for i, n := range []int{0, 1, c.ss - 1, c.ss, c.ss + 1, cs - 1, cs, cs + 1, 3*cs + 7} {
				name := "f" + itoa(i) + ".bin"
				files[name] = randBytes(uint64(i), n)
			}
			files["readme.txt"] = []byte("lower")
			files["README.md"] = []byte("mixed ext")
			files["A long name with spaces.text"] = []byte("long")
			files["Ünïcødé файл.txt"] = []byte("unicode")
			if err := v.Mkdir("sub", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := v.Mkdir("sub/deeper dir", 0o755); err != nil {
				t.Fatal(err)
			}
			files["sub/deeper dir/x.dat"] = randBytes(99, 2*cs+3)
			for name, data := range files {
				writeAll(t, v, name, data)
			}
			for name, data := range files {
				if got := readAllFS(t, v, name); !bytes.Equal(got, data) {
					t.Fatalf("%s: read back %d bytes, want %d", name, len(got), len(data))
				}
			}
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			checkBalanced(t, v)
			fsckClean(t, img)
			for name, data := range files {
				out, err := toolOutput("mtype", "-i", img, "::/"+name)
				if err != nil || !bytes.Equal(out, data) {
					t.Fatalf("mtype %s: %v (%d bytes, want %d)", name, err, len(out), len(data))
				}
			}
			ls, _ := toolOutput("mdir", "-i", img, "::/")
			if !strings.Contains(string(ls), "TEST VOL") {
				t.Errorf("mdir does not show the label:\n%s", ls)
			}
			// readme.txt needs no long-name entry.
			v2 := mustOpen(t, d, Options{})
			fi, err := v2.Stat("readme.txt")
			if err != nil || fi.Name() != "readme.txt" {
				t.Fatalf("stat readme.txt: %v %v", fi, err)
			}
			n := fi.Sys().(*Sys)
			if n.ShortName != "README.TXT" {
				t.Errorf("short name %q", n.ShortName)
			}
			nd, _, _ := v2.resolve("readme.txt")
			if nd.lfnOff != nd.off {
				t.Errorf("readme.txt has long-name slots")
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func toolOutput(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	return out.Bytes(), err
}

func TestReadOnlyNeverWrites(t *testing.T) {
	mem := device.NewMemory(make([]byte, 4<<20), 512)
	if err := Format(mem, FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	fd := device.NewFaulty(mem)
	v, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.OpenFile("x", os.O_CREATE|os.O_WRONLY, 0o644)
	if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, ErrReadOnlyFS) {
		t.Fatalf("create on read-only mount: %v", err)
	}
	for _, e := range []error{v.Mkdir("d", 0o755), v.Remove("x"), v.Rename("a", "b"), v.SetLabel("X"), v.Chtimes("a", time.Now(), time.Now())} {
		if !errors.Is(e, fs.ErrPermission) {
			t.Fatalf("want permission error, got %v", e)
		}
	}
	v.Info()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, w, _ := fd.Counts(); w != 0 {
		t.Fatalf("%d writes on a read-only mount", w)
	}
}

func TestDirtyFlag(t *testing.T) {
	needTools(t, "fsck.fat")
	for _, typ := range []string{"fat12", "fat16", "fat32"} {
		size := map[string]int64{"fat12": 4 << 20, "fat16": 32 << 20, "fat32": 100 << 20}[typ]
		img, d := newImage(t, size, 512, FormatOptions{Type: typ})
		v := mountRW(t, d)
		writeAll(t, v, "a.txt", []byte("hello"))
		v2 := mustOpen(t, d, Options{})
		if !v2.Info().Dirty {
			t.Errorf("%s: not dirty while changed", typ)
		}
		out, _ := exec.Command("fsck.fat", "-n", img).CombinedOutput()
		if !strings.Contains(string(out), "Dirty bit") {
			t.Errorf("%s: fsck does not see the dirty bit:\n%s", typ, out)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if mustOpen(t, d, Options{}).Info().Dirty {
			t.Errorf("%s: dirty after Close", typ)
		}
		fsckClean(t, img)
	}
}

// TestRemovedWhileOpen: as POSIX and Linux's vfat have it, a file removed
// (or replaced by a rename) while open keeps its data for its open handles
// until the last one closes; its clusters are not reused meanwhile, and
// they are freed then (or at the volume's Close).
func TestRemovedWhileOpen(t *testing.T) {
	needTools(t, "fsck.fat")
	img, d := newImage(t, 16<<20, 512, FormatOptions{Type: "fat16"})
	v := mountRW(t, d)
	a, b, c := randBytes(1, 70000), randBytes(2, 50000), randBytes(3, 90000)
	writeAll(t, v, "a.bin", a)
	writeAll(t, v, "b.bin", b)
	writeAll(t, v, "c.bin", c)
	free0 := v.Info().Free

	fa, err := v.OpenFile("a.bin", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("a.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Stat("a.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a.bin still listed after Remove: %v", err)
	}
	// Its clusters are not free while it is open: new data goes elsewhere.
	writeAll(t, v, "new.bin", randBytes(4, 200000))
	got := make([]byte, len(a))
	if n, err := fa.ReadAt(got, 0); n != len(a) || !bytes.Equal(got, a) {
		t.Fatalf("reading the removed open file: %d bytes, %v", n, err)
	}
	if _, err := fa.Write([]byte("x")); err == nil {
		t.Error("a write through a read-only handle went through")
	}
	before := v.Info().Free
	if err := fa.Close(); err != nil {
		t.Fatal(err)
	}
	if freed := v.Info().Free - before; freed < int64(len(a)) {
		t.Errorf("the last Close freed %d bytes, want the file's %d", freed, len(a))
	}

	// A file removed while open for writing: it can still grow and shrink
	// (only in memory and in the FAT: its entry is gone), and the last
	// Close frees everything it had.
	writeAll(t, v, "w.bin", randBytes(5, 3000))
	fw, err := v.OpenFile("w.bin", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("w.bin"); err != nil {
		t.Fatal(err)
	}
	more := randBytes(6, 150000)
	if _, err := fw.WriteAt(more, 3000); err != nil {
		t.Fatalf("growing a removed open file: %v", err)
	}
	got = make([]byte, 3000+len(more))
	if n, _ := fw.ReadAt(got, 0); n != len(got) || !bytes.Equal(got[:3000], randBytes(5, 3000)) || !bytes.Equal(got[3000:], more) {
		t.Fatalf("reading the grown removed file: %d bytes", n)
	}
	if err := fw.Truncate(1000); err != nil {
		t.Fatal(err)
	}
	if fi, _ := fw.Stat(); fi.Size() != 1000 {
		t.Fatalf("size %d after Truncate(1000)", fi.Size())
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}

	// A rename over an open file: the old content stays readable.
	fb, _ := v.OpenFile("b.bin", os.O_RDONLY, 0)
	if err := v.Rename("c.bin", "b.bin"); err != nil {
		t.Fatal(err)
	}
	if got := readAllFS(t, v, "b.bin"); !bytes.Equal(got, c) {
		t.Error("b.bin is not c's content after the rename")
	}
	got = make([]byte, len(b))
	if n, err := fb.ReadAt(got, 0); n != len(b) || !bytes.Equal(got, b) {
		t.Fatalf("the replaced file through its open handle: %d bytes, %v", n, err)
	}
	// Left open: the volume's Close frees it.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
	// a.bin and b.bin's clusters came back; new.bin's are taken.
	if free, want := mustOpen(t, d, Options{}).Info().Free, free0+roundCl(v, int64(len(a)))+roundCl(v, int64(len(b)))-roundCl(v, 200000); free != want {
		t.Errorf("free %d after the volume's Close, want %d", free, want)
	}
}

func roundCl(v *FS, n int64) int64 {
	cs := int64(v.g.clusterSize)
	return (n + cs - 1) / cs * cs
}
