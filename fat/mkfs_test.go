package fat

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mediafs/mediafs/device"
)

// toolImage is a FAT image made by mkfs.fat and filled by mtools, with the
// host tree it was filled from.
type toolImage struct {
	path     string
	src      string // host directory whose contents are the image's root
	fatType  int
	ss, spc  int
	clusters int
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeToolImage formats an image of about the given cluster count and
// fills it with files whose sizes sit on the sector and cluster edges,
// long and non-ASCII names, a lower-case 8.3 name, a name with a space,
// nested directories and a fragmented file.
func makeToolImage(t testing.TB, fatType, ss, spc, clusters int) *toolImage {
	t.Helper()
	needTools(t, "mkfs.fat", "mcopy", "mmd", "mdel", "mdir")
	dir := t.TempDir()
	cs := ss * spc
	fatBytes := (clusters + 2) * fatType / 8
	size := int64(clusters)*int64(cs) + int64(32*ss) + 2*int64(fatBytes+ss) + 512*32 + int64(16*ss)
	img := filepath.Join(dir, "fat.img")
	runTool(t, "mkfs.fat", "-C", "-F", strconv.Itoa(fatType), "-S", strconv.Itoa(ss), "-s", strconv.Itoa(spc),
		"-i", "1234abcd", "-n", "MEDIAFS", img, strconv.FormatInt((size+1023)/1024, 10))

	src := filepath.Join(dir, "src")
	var seed uint64
	add := func(rel string, n int) {
		seed++
		writeFile(t, filepath.Join(src, rel), randBytes(seed, n))
	}
	for _, n := range []int{0, 1, ss - 1, ss, ss + 1, cs - 1, cs, cs + 1, 3 * cs, 70000} {
		add(fmt.Sprintf("size-%d.bin", n), n)
	}
	add("A long file name with spaces.txt", 100)
	add("£ price list.txt", 200)
	add("Ünïcödé.txt", 300)
	add("readme.txt", 42)
	add("UPPER.TXT", 43)
	add("my dir/inner file.dat", 5000)
	add("my dir/deeper/still deeper/leaf.bin", 1234)
	add("NESTED/A/B/C.BIN", 77)
	if err := os.MkdirAll(filepath.Join(src, "empty dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-Q", "-i", img}
	for _, e := range entries {
		args = append(args, filepath.Join(src, e.Name()))
	}
	runTool(t, "mcopy", append(args, "::/")...)

	// A fragmented file: fill, punch holes, then write into them.
	frag := filepath.Join(dir, "frag")
	for i := 1; i <= 5; i++ {
		writeFile(t, filepath.Join(frag, fmt.Sprintf("f%d", i)), randBytes(uint64(100+i), 2*cs))
		runTool(t, "mcopy", "-Q", "-i", img, filepath.Join(frag, fmt.Sprintf("f%d", i)), "::/")
	}
	runTool(t, "mdel", "-i", img, "::/f2", "::/f4")
	for _, i := range []int{1, 3, 5} {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%d", i)), randBytes(uint64(100+i), 2*cs))
	}
	add("fragmented.bin", 7*cs+5)
	runTool(t, "mcopy", "-Q", "-i", img, filepath.Join(src, "fragmented.bin"), "::/")
	return &toolImage{path: img, src: src, fatType: fatType, ss: ss, spc: spc, clusters: clusters}
}

// mdirPaths lists an image with mtools: every path, directories with a
// trailing slash.
func mdirPaths(t testing.TB, img string) []string {
	out := runTool(t, "mdir", "-/", "-a", "-b", "-i", img, "::/")
	var paths []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "::/") {
			continue
		}
		paths = append(paths, strings.TrimPrefix(l, "::/"))
	}
	slices.Sort(paths)
	return paths
}

// mdirFree is the free byte count mdir reports.
func mdirFree(t testing.TB, img string) int64 {
	out := runTool(t, "mdir", "-a", "-i", img, "::/")
	m := regexp.MustCompile(`([\d ]+) bytes free`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no free count in mdir output:\n%s", out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(m[1]), " ", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// walkPaths lists a file system the way mdirPaths does.
func walkPaths(t testing.TB, fsys fs.FS) []string {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			p += "/"
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

// openImageFile mounts an image file through a strict device with the
// given sector size.
func openImageFile(t testing.TB, path string, ss int) (*FS, *device.Strict) {
	t.Helper()
	f, err := device.Open(path, device.Options{ReadOnly: true, SectorSize: ss})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	strict := device.NewStrict(f)
	return mustOpen(t, strict, Options{CodePage: 850}), strict
}

func TestToolImages(t *testing.T) {
	type cfg struct{ fat, ss, spc, clusters int }
	var cfgs []cfg
	for _, ss := range []int{512, 1024, 2048, 4096} {
		cfgs = append(cfgs, cfg{12, ss, 1, 2000}, cfg{16, ss, 1, 8000}, cfg{32, ss, 1, 66000})
	}
	cfgs = append(cfgs, cfg{12, 2048, 2, 1500}, cfg{16, 512, 4, 6000}, cfg{32, 512, 8, 66000}, cfg{16, 4096, 4, 5000})
	for _, c := range cfgs {
		t.Run(fmt.Sprintf("FAT%d-S%d-s%d", c.fat, c.ss, c.spc), func(t *testing.T) {
			t.Parallel()
			ti := makeToolImage(t, c.fat, c.ss, c.spc, c.clusters)
			v, strict := openImageFile(t, ti.path, c.ss)
			checkToolImage(t, ti, v, strict)
		})
	}
}

func checkToolImage(t *testing.T, ti *toolImage, v *FS, strict *device.Strict) {
	inf := v.Info()
	if want := fmt.Sprintf("fat%d", ti.fatType); inf.Type != want {
		t.Errorf("type %s, want %s", inf.Type, want)
	}
	if inf.SectorSize != ti.ss || inf.ClusterSize != ti.ss*ti.spc {
		t.Errorf("sector %d cluster %d, want %d %d", inf.SectorSize, inf.ClusterSize, ti.ss, ti.ss*ti.spc)
	}
	if inf.Label != "MEDIAFS" || inf.BootLabel != "MEDIAFS" || inf.Serial != 0x1234abcd {
		t.Errorf("label %q boot label %q serial %08x", inf.Label, inf.BootLabel, inf.Serial)
	}
	if inf.Dirty || inf.HardError || inf.FATsDiffer || len(inf.Warnings) != 0 {
		t.Errorf("fresh image: dirty %v harderr %v differ %v warnings %q", inf.Dirty, inf.HardError, inf.FATsDiffer, inf.Warnings)
	}
	if free := mdirFree(t, ti.path); inf.Free != free {
		t.Errorf("free %d bytes, mdir says %d", inf.Free, free)
	}

	got, want := walkPaths(t, v), mdirPaths(t, ti.path)
	if !slices.Equal(got, want) {
		t.Errorf("listing differs from mdir:\n got %q\nwant %q", got, want)
	}

	// Every file's bytes equal its source, read whole and in odd pieces.
	var nfiles int
	filepath.WalkDir(ti.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(ti.src, p)
		want, _ := os.ReadFile(p)
		got, err := fs.ReadFile(v, filepath.ToSlash(rel))
		if err != nil {
			t.Errorf("read %s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", rel, len(got), len(want))
		}
		checkPieces(t, v, filepath.ToSlash(rel), want)
		nfiles++
		return nil
	})
	if nfiles < 15 {
		t.Errorf("only %d files compared", nfiles)
	}

	// Names: lower-case 8.3 from the NT flags, short names, attributes.
	fi, err := v.Stat("readme.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name() != "readme.txt" || fi.Sys().(*Sys).ShortName != "README.TXT" {
		t.Errorf("readme.txt shows as %q (short %q)", fi.Name(), fi.Sys().(*Sys).ShortName)
	}
	for _, alias := range []string{"README.TXT", "ReadMe.Txt", "my dir/INNER FILE.DAT", "MYDIR~1/inner file.dat", "ünïcödé.TXT"} {
		if _, err := v.Stat(alias); err != nil {
			t.Errorf("case-insensitive lookup of %q: %v", alias, err)
		}
	}
	if fi.Mode() != 0o444 || fi.Sys().(*Sys).AttrString != "A" {
		t.Errorf("readme.txt mode %v attrs %q", fi.Mode(), fi.Sys().(*Sys).AttrString)
	}
	cs := int64(ti.ss * ti.spc)
	if fi, err := v.Stat(fmt.Sprintf("size-%d.bin", cs+1)); err != nil || fi.Sys().(*Sys).Alloc != 2*cs {
		t.Errorf("alloc of a cluster+1 file: %v %v", fi, err)
	}
	if fi, err := v.Stat("my dir"); err != nil || !fi.IsDir() || fi.Mode() != fs.ModeDir|0o555 {
		t.Errorf("my dir: %v %v", fi, err)
	}

	// A contiguous file is read in one device request (plus one bounce
	// for the partial last sector), straight into the caller's buffer.
	f, err := v.Open("size-70000.bin")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	before := strict.Reads.Load()
	if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if n := strict.Reads.Load() - before; n > 2 {
		t.Errorf("a contiguous 70000-byte read took %d device reads", n)
	}
	f.Close()

	if err := fstest.TestFS(v, "readme.txt", "my dir/inner file.dat", "Ünïcödé.txt", "£ price list.txt"); err != nil {
		t.Error(err)
	}
}

// checkPieces reads name with ReadAt and Seek+Read in pieces that straddle
// sectors and clusters.
func checkPieces(t *testing.T, v *FS, name string, want []byte) {
	f, err := v.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra := f.(io.ReaderAt)
	for _, piece := range []int{1, 7, 511, 513, 4097} {
		got := make([]byte, 0, len(want))
		buf := make([]byte, piece)
		for off := int64(0); ; off += int64(piece) {
			n, err := ra.ReadAt(buf, off)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s ReadAt(%d, %d): %v", name, off, piece, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s read in %d-byte pieces differs", name, piece)
		}
		if len(want) > piece*2 {
			break // one odd size is enough for big files
		}
	}
	if len(want) > 10 {
		off := int64(len(want) / 3)
		if _, err := f.(io.Seeker).Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(rest, want[off:]) {
			t.Fatalf("%s after Seek(%d): %d bytes, %v", name, off, len(rest), err)
		}
	}
}
