package iso9660

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

// interopTree is the source tree every tool-made image is built from.
func interopTree() map[string]string {
	t := map[string]string{
		"small.txt":           "hello\n",
		"empty":               "",
		"Mixed Case Name.txt": "Mixed\n",
		"sizes/s1":            "1",
		"sizes/s2047":         strings.Repeat("a", 2047),
		"sizes/s2048":         strings.Repeat("b", 2048),
		"sizes/s2049":         strings.Repeat("c", 2049),
		"sizes/big.bin":       string(pattern(21, 300000)),
		"dir1/dir2/dir3/dir4/dir5/dir6/dir7/dir8/dir9/deep.txt": "deep\n",
		"dir1/dir2/dir3/dir4/dir5/dir6/dir7/dir8/dir9/dir10/":   "",
		"links/rel":                      "->../small.txt",
		"links/dirlink":                  "->../dir1",
		"links/chain":                    "->rel",
		strings.Repeat("n", 99) + ".txt": "long\n",
		"emptydir/":                      "",
	}
	for i := 0; i < 100; i++ {
		t[fmt.Sprintf("many/file_with_a_longer_name_%03d.dat", i)] = fmt.Sprintf("%d\n", i)
	}
	return t
}

type interopCase struct {
	name string
	tool string
	args []string
	ns   string   // namespace Open must pick
	want []string // files fstest.TestFS must find
}

var interopCases = []interopCase{
	{"plain", "genisoimage", nil, "iso", []string{"SMALL.TXT"}},
	{"level1", "genisoimage", []string{"-iso-level", "1"}, "iso", []string{"SMALL.TXT"}},
	{"level2", "genisoimage", []string{"-iso-level", "2"}, "iso", []string{"SMALL.TXT"}},
	{"level3", "genisoimage", []string{"-iso-level", "3"}, "iso", []string{"SMALL.TXT"}},
	{"level4", "genisoimage", []string{"-iso-level", "4"}, "iso", []string{"small.txt"}},
	{"joliet", "genisoimage", []string{"-J"}, "joliet", []string{"small.txt", "Mixed Case Name.txt"}},
	{"joliet-long", "genisoimage", []string{"-J", "-joliet-long"}, "joliet", []string{strings.Repeat("n", 99) + ".txt"}},
	{"rr", "genisoimage", []string{"-R"}, "rr", []string{"small.txt", "links/rel", "dir1/dir2/dir3/dir4/dir5/dir6/dir7/dir8/dir9/deep.txt"}},
	{"rr-joliet", "genisoimage", []string{"-J", "-R"}, "rr", []string{"small.txt", "links/dirlink"}},
	{"xorriso-rr-joliet", "xorriso", []string{"-R", "-J"}, "rr", []string{"small.txt", "links/chain", "dir1/dir2/dir3/dir4/dir5/dir6/dir7/dir8/dir9/deep.txt"}},
	{"xorriso-level3", "xorriso", []string{"-iso-level", "3", "-R"}, "rr", []string{"sizes/big.bin"}},
	{"xorriso-default", "xorriso", nil, "rr", []string{"small.txt"}}, // xorriso always writes Rock Ridge
}

func makeImage(t *testing.T, c interopCase, src, out string, extra ...string) {
	t.Helper()
	haveTool(t, c.tool)
	args := append(append([]string{}, c.args...), extra...)
	args = append(args, "-o", out, src)
	switch c.tool {
	case "genisoimage":
		run(t, "", "genisoimage", append([]string{"-quiet"}, args...)...)
	case "xorriso":
		run(t, "", "xorriso", append([]string{"-as", "mkisofs", "-quiet"}, args...)...)
	}
}

// TestInterop builds images with genisoimage and xorriso and compares what
// we read with bsdtar's listing and extraction (paths, types, bytes,
// symlink targets), with isoinfo's listing of the Joliet and ISO trees, and
// with the source tree (Rock Ridge modes, times, links); then runs
// fstest.TestFS on every view.
func TestInterop(t *testing.T) {
	haveTool(t, "bsdtar")
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, interopTree())
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			iso := filepath.Join(dir, "img.iso")
			makeImage(t, c, src, iso)
			img, err := os.ReadFile(iso)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := openImage(t, img, Options{})
			if got := f.Info().Namespace; got != c.ns {
				t.Fatalf("namespace %q, want %q", got, c.ns)
			}
			rows, _ := walkImage(t, f, false)
			compareWithBsdtar(t, f, rows, iso, dir)
			if c.ns == "rr" {
				compareWithSource(t, f, rows, src)
			}
			if err := fstest.TestFS(f, c.want...); err != nil {
				t.Error(err)
			}
			// The other views of the same image.
			if f.Info().Joliet {
				compareWithIsoinfo(t, img, iso, "joliet", "-J")
			}
			compareWithIsoinfo(t, img, iso, "iso")
			checkNoPins(t, f)
		})
	}
}

// compareWithBsdtar extracts the image with bsdtar and compares paths,
// types, contents and link targets.
func compareWithBsdtar(t *testing.T, f *FS, rows map[string]entryRow, iso, dir string) {
	t.Helper()
	ex := filepath.Join(dir, "bsdtar")
	if err := os.Mkdir(ex, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "", "bsdtar", "-xf", iso, "-C", ex)
	want := map[string]bool{}
	err := filepath.WalkDir(ex, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == ex {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, ex+string(filepath.Separator)))
		want[rel] = true
		g, ok := rows[rel]
		if !ok {
			t.Errorf("%s: listed by bsdtar, not by us", rel)
			return nil
		}
		info, _ := os.Lstat(p)
		if wt := typeName(info.Mode()); g.typ != wt {
			t.Errorf("%s: type %s, bsdtar %s", rel, g.typ, wt)
			return nil
		}
		switch g.typ {
		case "file":
			b, _ := os.ReadFile(p)
			got, err := readAll(f, rel)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s: %d bytes (%v), bsdtar %d", rel, len(got), err, len(b))
			}
		case "symlink":
			target, _ := os.Readlink(p)
			if g.target != target {
				t.Errorf("%s: target %q, bsdtar %q", rel, g.target, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range rows {
		if !want[p] {
			t.Errorf("%s: listed by us, not by bsdtar", p)
		}
	}
}

// compareWithSource checks the Rock Ridge attributes against the source
// tree: permissions, modification times and symlink targets.
func compareWithSource(t *testing.T, f *FS, rows map[string]entryRow, src string) {
	t.Helper()
	for p, g := range rows {
		info, err := os.Lstat(filepath.Join(src, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s: not in the source: %v", p, err)
			continue
		}
		if g.typ != "symlink" && g.perm != info.Mode().Perm() {
			t.Errorf("%s: perm %v, source %v", p, g.perm, info.Mode().Perm())
		}
		if g.mtime.Unix() != info.ModTime().Unix() {
			t.Errorf("%s: mtime %v, source %v", p, g.mtime, info.ModTime())
		}
		if g.typ == "symlink" {
			target, _ := os.Readlink(filepath.Join(src, filepath.FromSlash(p)))
			if g.target != target {
				t.Errorf("%s: target %q, source %q", p, g.target, target)
			}
			// Stat follows the link within the image; Lstat does not.
			st, err := f.Stat(p)
			lst, lerr := f.Lstat(p)
			if err != nil || lerr != nil || st.Mode()&fs.ModeSymlink != 0 || lst.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s: Stat %v %v, Lstat %v %v", p, st, err, lst, lerr)
			}
		}
	}
}

// compareWithIsoinfo lists one namespace with isoinfo -f and compares the
// path set (isoinfo shows ";1" and the trailing dot, which we strip).
func compareWithIsoinfo(t *testing.T, img []byte, iso, ns string, flags ...string) {
	t.Helper()
	haveTool(t, "isoinfo")
	out := run(t, "", "isoinfo", append(append([]string{"-f"}, flags...), "-i", iso)...)
	want := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimPrefix(line, "/"); line == "" {
			continue
		}
		if i := strings.LastIndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSuffix(line, ".")
		want[line] = true
	}
	f, _ := openImage(t, img, Options{Namespace: ns})
	rows, _ := walkImage(t, f, false)
	var missing, extra []string
	for p := range want {
		if _, ok := rows[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range rows {
		if !want[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s view vs isoinfo: missing %q, extra %q", ns, missing, extra)
	}
	var some []string
	for p := range rows {
		some = append(some, p)
		break
	}
	if err := fstest.TestFS(f, some...); err != nil {
		t.Errorf("%s view: %v", ns, err)
	}
}

// TestInteropElTorito: a no-emulation boot image is reported and read back
// byte for byte; the boot catalog file stays an ordinary file.
func TestInteropElTorito(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	boot := string(pattern(31, 5000))
	writeTree(t, src, map[string]string{"boot/boot.img": boot, "readme.txt": "boot me\n"})
	for _, c := range []interopCase{
		{name: "genisoimage", tool: "genisoimage", args: []string{"-R", "-J"}},
		{name: "xorriso", tool: "xorriso", args: []string{"-R", "-J"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			iso := filepath.Join(t.TempDir(), "boot.iso")
			makeImage(t, c, src, iso, "-b", "boot/boot.img", "-c", "boot/boot.cat", "-no-emul-boot", "-boot-load-size", "4")
			img, err := os.ReadFile(iso)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := openImage(t, img, Options{})
			info := f.Info()
			if !info.ElTorito || len(info.Boot) != 1 {
				t.Fatalf("El Torito %v, entries %+v", info.ElTorito, info.Boot)
			}
			e := info.Boot[0]
			st, err := f.Stat("boot/boot.img")
			if err != nil {
				t.Fatal(err)
			}
			if e.Platform != "x86" || !e.Bootable || e.Emulation != "none" || e.SectorCount != 4 ||
				int64(e.LoadRBA) != st.Sys().(*Sys).Extents[0].Block || e.Size != st.Size() {
				t.Errorf("entry %+v; boot.img at block %d, %d bytes", e, st.Sys().(*Sys).Extents[0].Block, st.Size())
			}
			bi, err := f.Boot(0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(bi)
			// genisoimage patches nothing without -boot-info-table.
			if err != nil || string(got) != boot {
				t.Errorf("boot image: %d bytes, %v", len(got), err)
			}
			if _, err := f.Stat("boot/boot.cat"); err != nil {
				t.Errorf("boot catalog file: %v", err)
			}
			if err := fstest.TestFS(f, "boot/boot.img", "readme.txt"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestInteropZisofs: xorriso's zisofs filter compresses files; they read
// back decompressed, byte for byte, and bsdtar agrees.
func TestInteropZisofs(t *testing.T) {
	haveTool(t, "xorriso")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"zeros.bin":    string(make([]byte, 200000)),
		"text.txt":     strings.Repeat("zisofs compresses text in 32 KiB blocks\n", 5000),
		"random.bin":   string(pattern(41, 70000)),
		"tiny.txt":     "tiny\n",
		"sub/more.txt": strings.Repeat("more\n", 30000),
	}
	writeTree(t, src, files)
	iso := filepath.Join(dir, "z.iso")
	run(t, "", "xorriso", "-outdev", iso, "-blank", "as_needed", "-zisofs", "level=6", "-map", src, "/", "-set_filter_r", "--zisofs", "/", "--", "-commit")
	img, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := openImage(t, img, Options{})
	compressed := 0
	for name, want := range files {
		got, err := readAll(f, name)
		if err != nil || string(got) != want {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
		info, _ := f.Stat(name)
		if s := info.Sys().(*Sys); s.Compressed {
			compressed++
			if info.Size() != int64(len(want)) {
				t.Errorf("%s: size %d, want %d", name, info.Size(), len(want))
			}
		}
		checkPageReads(t, f, name, []byte(want))
	}
	if compressed < 3 {
		t.Errorf("only %d files were zisofs-compressed", compressed)
	}
	rows, _ := walkImage(t, f, false)
	compareWithBsdtar(t, f, rows, iso, dir)
	if err := fstest.TestFS(f, "zeros.bin", "sub/more.txt"); err != nil {
		t.Error(err)
	}
}

// TestRootDirEmpty: when the primary root holds only "." and ".." but a
// Joliet tree exists, the Joliet tree is shown even with Rock Ridge (Linux
// rootdir_empty).
func TestRootDirEmpty(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"a.txt": "a\n", "d/b.txt": "b\n"})
	iso := filepath.Join(t.TempDir(), "e.iso")
	makeImage(t, interopCase{tool: "genisoimage", args: []string{"-J", "-R"}}, src, iso)
	img, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := openImage(t, img, Options{})
	if f.Info().Namespace != "rr" {
		t.Fatalf("namespace %q before the damage", f.Info().Namespace)
	}
	// Blank every primary root record after "." and "..".
	pvdRoot, _ := decodeRootRecord(img[16*sectorSize+156:])
	start := int(pvdRoot.Extent) * sectorSize
	pos := start
	for i := 0; i < 2; i++ {
		pos += int(img[pos])
	}
	clear(img[pos : start+int(pvdRoot.DataLen)])
	f, _ = openImage(t, img, Options{})
	if f.Info().Namespace != "joliet" || !f.Info().RockRidge {
		t.Fatalf("namespace %q (RR %v), want joliet", f.Info().Namespace, f.Info().RockRidge)
	}
	if got, err := readAll(f, "d/b.txt"); string(got) != "b\n" {
		t.Errorf("d/b.txt = %q, %v", got, err)
	}
	// Asking for Rock Ridge still gives the (empty) primary tree.
	f, _ = openImage(t, img, Options{Namespace: "rr"})
	if ents, err := f.ReadDir("."); len(ents) != 0 || err != nil {
		t.Errorf("rr root: %d entries, %v", len(ents), err)
	}
}
