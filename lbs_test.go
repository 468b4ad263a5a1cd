package mediafs_test

// The regression tests for Microsoft KB Q142687: ISO 9660 media whose
// logical block size (512 or 1024) is smaller than the 2048-byte sector.
// The images come from our own writer (iso9660/mkiso), which packs files
// block by block so that they start and end mid-sector; the reader must
// read every file byte-exact through a device that, like a real drive,
// refuses any read that is not whole 2048-byte sectors or that reaches past
// the last sector (reference-drivers.md T-ISO-1..9, T-ISO-12).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"
	"testing/fstest"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// payload returns n bytes that differ from every other file's.
func payload(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// lbsTree is the source tree of the block-size fixtures: every size of
// T-ISO-2, a 3000-byte file (T-ISO-1), neighbours in the same sector
// (T-ISO-5), empty files, and nested directories.
func lbsTree() fstest.MapFS {
	m := fstest.MapFS{}
	sizes := []int{1, 511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 70000}
	for i, n := range sizes {
		m[fmt.Sprintf("SIZES/F%05d.BIN", n)] = &fstest.MapFile{Data: payload(i, n), Mode: 0o644}
	}
	m["ODD3000.BIN"] = &fstest.MapFile{Data: payload(100, 3000), Mode: 0o644}
	m["NEXT.BIN"] = &fstest.MapFile{Data: payload(101, 700), Mode: 0o644}
	m["EMPTY.TXT"] = &fstest.MapFile{Data: nil, Mode: 0o644}
	m["A/B/C/DEEP.TXT"] = &fstest.MapFile{Data: []byte("deep\n"), Mode: 0o644}
	m["A/B/EMPTY2.TXT"] = &fstest.MapFile{Data: nil, Mode: 0o644}
	m["LAST.BIN"] = &fstest.MapFile{Data: payload(102, 1500), Mode: 0o644}
	return m
}

type lbsImage struct {
	name     string
	img      []byte
	manifest *mkiso.Manifest
	src      fstest.MapFS
}

func buildLBS(t *testing.T, src fstest.MapFS, opts mkiso.Options) lbsImage {
	t.Helper()
	var w memWriter
	man, err := mkiso.Write(&w, src, opts)
	if err != nil {
		t.Fatalf("mkiso.Write(%+v): %v", opts, err)
	}
	return lbsImage{name: fmt.Sprintf("lbs%d", opts.BlockSize), img: w.b, manifest: man, src: src}
}

// memWriter is an io.WriterAt over a growing byte slice.
type memWriter struct{ b []byte }

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, end-int64(len(w.b)))...)
	}
	return copy(w.b[off:], p), nil
}

// openStrict opens img through a device that behaves as a CD drive does:
// whole 2048-byte sectors only, nothing past the last sector. The image's
// missing tail (it may end mid-sector) reads as zeros.
func openStrict(t *testing.T, img []byte) (mediafs.FS, *device.Strict) {
	t.Helper()
	strict := device.NewStrict(device.NewMemory(img, 2048))
	f, err := mediafs.OpenDevice(strict)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return f, strict
}

func checkAllFiles(t *testing.T, f fs.FS, src fstest.MapFS, alloc map[string]int64) {
	t.Helper()
	for name, mf := range src {
		if mf.Mode.IsDir() {
			continue
		}
		fi, err := fs.Stat(f, name)
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if fi.Size() != int64(len(mf.Data)) {
			t.Errorf("%s: size %d, want %d", name, fi.Size(), len(mf.Data))
		}
		if s, ok := fi.Sys().(*iso9660.Sys); !ok {
			t.Errorf("%s: Sys() is %T", name, fi.Sys())
		} else if want, ok := alloc[name]; ok && s.Alloc != want {
			t.Errorf("%s: alloc %d, want %d (rounded to the logical block, not to 2048)", name, s.Alloc, want)
		}
		got, err := fs.ReadFile(f, name)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, mf.Data) {
			t.Errorf("%s: content differs from the source", name)
		}
		// Page-sized reads, as mmap page-ins make them (R-ISO-6): the
		// page past EOF is short, never an error, never the neighbour's
		// bytes (T-ISO-5).
		file, err := f.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ra := file.(io.ReaderAt)
		page := make([]byte, 4096)
		for off := int64(0); off < int64(len(mf.Data)); off += 4096 {
			n, err := ra.ReadAt(page, off)
			want := min(4096, int64(len(mf.Data))-off)
			if int64(n) != want || (n < 4096 && !errors.Is(err, io.EOF)) || (n == 4096 && err != nil && !errors.Is(err, io.EOF)) {
				t.Errorf("%s: ReadAt(4096 at %d) = %d, %v; want %d", name, off, n, err, want)
				break
			}
			if !bytes.Equal(page[:n], mf.Data[off:off+int64(n)]) {
				t.Errorf("%s: page at %d differs", name, off)
				break
			}
		}
		if n, err := ra.ReadAt(page[:1], int64(len(mf.Data))); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("%s: ReadAt at EOF = %d, %v; want 0, EOF", name, n, err)
		}
		file.Close()
	}
}

func TestLogicalBlockSizes(t *testing.T) {
	for _, lbs := range []int{512, 1024, 2048} {
		for _, variant := range []struct {
			name string
			opts mkiso.Options
		}{
			{"packed", mkiso.Options{}},
			{"unaligned-dirs", mkiso.Options{UnalignedDirs: true}},      // T-ISO-7
			{"empty-at-zero", mkiso.Options{EmptyAtZero: true}},         // T-ISO-12
			{"joliet-rr", mkiso.Options{Joliet: true, RockRidge: true}}, // T-ISO-11 (own writer)
		} {
			t.Run(fmt.Sprintf("%d/%s", lbs, variant.name), func(t *testing.T) {
				opts := variant.opts
				opts.BlockSize = lbs
				src := lbsTree()
				im := buildLBS(t, src, opts)
				alloc := map[string]int64{}
				midSector := 0
				for _, fe := range im.manifest.Files {
					alloc[fe.Path] = fe.Alloc
					if want := (fe.Size + int64(lbs) - 1) / int64(lbs) * int64(lbs); fe.Alloc != want {
						t.Fatalf("manifest %s: alloc %d, want %d", fe.Path, fe.Alloc, want)
					}
					if fe.StartsMidSector {
						midSector++
					}
				}
				if lbs < 2048 && midSector == 0 {
					t.Fatal("no file starts mid-sector: the fixture does not test what it should")
				}
				f, strict := openStrict(t, im.img)
				defer f.Close()
				if in := f.Info(); in.BlockSize != lbs {
					t.Fatalf("block size %d, want %d", in.BlockSize, lbs)
				}
				checkAllFiles(t, f, src, alloc)
				if err := fstest.TestFS(f, "ODD3000.BIN", "SIZES/F03000.BIN", "A/B/C/DEEP.TXT"); err != nil {
					t.Fatal(err)
				}
				if strict.Reads.Load() == 0 {
					t.Fatal("nothing was read through the strict device")
				}
				if cs, ok := f.(mediafs.CacheStatser); ok {
					if st := cs.CacheStats(); st.Pins != 0 {
						t.Fatalf("blocks left pinned: %+v", st)
					}
				}
			})
		}
	}
}

// T-ISO-1, spelled out.
func TestOdd3000At512(t *testing.T) {
	src := lbsTree()
	im := buildLBS(t, src, mkiso.Options{BlockSize: 512})
	f, _ := openStrict(t, im.img)
	defer f.Close()
	fi, err := fs.Stat(f, "ODD3000.BIN")
	if err != nil {
		t.Fatal(err)
	}
	if a := fi.Sys().(*iso9660.Sys).Alloc; a != 3072 {
		t.Fatalf("alloc %d, want 3072", a)
	}
	file, _ := f.Open("ODD3000.BIN")
	defer file.Close()
	ra := file.(io.ReaderAt)
	buf := make([]byte, 4096)
	n, err := ra.ReadAt(buf, 0)
	if n != 3000 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt(0, 4096) = %d, %v; want 3000, EOF", n, err)
	}
	if n, err := ra.ReadAt(buf[:1], 2999); n != 1 || buf[0] != src["ODD3000.BIN"].Data[2999] || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("ReadAt(2999, 1) = %d, %v", n, err)
	}
	if n, err := ra.ReadAt(buf[:1], 3000); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt(3000, 1) = %d, %v", n, err)
	}
	// Seek and Read work the same way.
	sk := file.(io.Seeker)
	if _, err := sk.Seek(2990, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(file)
	if err != nil || !bytes.Equal(rest, src["ODD3000.BIN"].Data[2990:]) {
		t.Fatalf("read after seek: %d bytes, %v", len(rest), err)
	}
}

// T-ISO-6: an image that ends mid-sector, with the last file in the final
// partial sector.
func TestImageEndsMidSector(t *testing.T) {
	for _, lbs := range []int{512, 1024} {
		src := lbsTree()
		im := buildLBS(t, src, mkiso.Options{BlockSize: lbs})
		if im.manifest.VolumeBlocks*int64(lbs)%2048 == 0 {
			// One more block makes the volume end mid-sector.
			src["PAD.BIN"] = &fstest.MapFile{Data: payload(103, 10), Mode: 0o644}
			im = buildLBS(t, src, mkiso.Options{BlockSize: lbs})
		}
		want := im.manifest.VolumeBlocks * int64(lbs)
		img := im.img[:min(int64(len(im.img)), want)]
		if len(img)%2048 == 0 {
			t.Fatalf("lbs %d: fixture is a whole number of sectors (%d bytes); it must end mid-sector", lbs, len(img))
		}
		f, _ := openStrict(t, img)
		checkAllFiles(t, f, src, nil)
		f.Close()
	}
}

// T-ISO-8 and T-ISO-9: multi-extent files with holes between sections and
// interleaved files, read against the source bytes (no third-party reader
// gets interleaving right, so the source is the only oracle).
func TestMultiExtentAndInterleave(t *testing.T) {
	for _, lbs := range []int{512, 2048} {
		src := fstest.MapFS{
			"MULTI.BIN":  &fstest.MapFile{Data: payload(7, 9000), Mode: 0o644},
			"INTER.BIN":  &fstest.MapFile{Data: payload(8, 7*lbs+100), Mode: 0o644},
			"INTER2.BIN": &fstest.MapFile{Data: payload(9, 5*lbs-3), Mode: 0o644},
			"PLAIN.BIN":  &fstest.MapFile{Data: payload(10, 5000), Mode: 0o644},
		}
		im := buildLBS(t, src, mkiso.Options{BlockSize: lbs,
			MultiExtent: map[string]int{"MULTI.BIN": 2},
			Interleave:  map[string][2]int{"INTER.BIN": {2, 1}, "INTER2.BIN": {1, 1}}})
		for _, fe := range im.manifest.Files {
			if fe.Path == "MULTI.BIN" && len(fe.Extents) < 2 {
				t.Fatalf("lbs %d: MULTI.BIN was written as %d extent(s)", lbs, len(fe.Extents))
			}
		}
		f, _ := openStrict(t, im.img)
		checkAllFiles(t, f, src, nil)
		fi, _ := fs.Stat(f, "MULTI.BIN")
		if s := fi.Sys().(*iso9660.Sys); len(s.Extents) < 2 {
			t.Errorf("lbs %d: reader saw %d sections of MULTI.BIN", lbs, len(s.Extents))
		}
		f.Close()
	}
}

// T-ISO-10: block sizes other than 512, 1024 and 2048 are refused, and so
// is a block size whose two byte orders disagree.
func TestBadBlockSizeRefused(t *testing.T) {
	im := buildLBS(t, fstest.MapFS{"A.TXT": &fstest.MapFile{Data: []byte("a")}}, mkiso.Options{BlockSize: 512})
	for _, tc := range []struct {
		le, be uint16
	}{{0, 0}, {256, 256}, {4096, 4096}, {3000, 3000}, {512, 1024}} {
		img := bytes.Clone(im.img)
		pvd := img[16*2048:]
		pvd[128], pvd[129] = byte(tc.le), byte(tc.le>>8)
		pvd[130], pvd[131] = byte(tc.be>>8), byte(tc.be)
		_, err := mediafs.OpenDevice(device.NewMemory(img, 2048))
		if err == nil {
			t.Errorf("block size LE %d / BE %d accepted", tc.le, tc.be)
		} else if !bytes.Contains([]byte(err.Error()), []byte("block size")) {
			t.Errorf("block size LE %d / BE %d: error %q does not say what is wrong", tc.le, tc.be, err)
		}
	}
}

// The listing of a block-size fixture is the same at every block size.
func TestListingIndependentOfBlockSize(t *testing.T) {
	var ref []string
	for _, lbs := range []int{2048, 1024, 512} {
		im := buildLBS(t, lbsTree(), mkiso.Options{BlockSize: lbs, RockRidge: true, Joliet: true})
		f, _ := openStrict(t, im.img)
		var got []string
		fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := d.Info()
			size := fi.Size()
			if d.IsDir() {
				size = 0 // a directory's size is its extent's, which depends on the block
			}
			got = append(got, fmt.Sprintf("%s %d %v %v", path.Clean(p), size, d.IsDir(), fi.Mode()))
			return nil
		})
		f.Close()
		sort.Strings(got)
		if ref == nil {
			ref = got
		} else if fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("lbs %d listing differs from lbs 2048:\n%v\n%v", lbs, got, ref)
		}
	}
}

// A file over 4 GiB is stored as several sections (ECMA-119 6.5.1, flag
// 0x80). The source and the image are sparse, so the test writes a few
// marker bytes, not 4.5 GiB.
func TestMultiExtentOver4GiB(t *testing.T) {
	dir := t.TempDir()
	const size = 4<<30 + 123457
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	big, err := os.Create(filepath.Join(src, "BIG.BIN"))
	if err != nil {
		t.Fatal(err)
	}
	markers := map[int64]byte{0: 1, 1<<32 - 2049: 2, 1<<32 - 1: 3, 1 << 32: 4, 1<<32 + 1: 5, size - 1: 6}
	for off, b := range markers {
		if _, err := big.WriteAt([]byte{b}, off); err != nil {
			t.Fatal(err)
		}
	}
	big.Close()
	os.WriteFile(filepath.Join(src, "SMALL.TXT"), []byte("after the big one\n"), 0o644)
	for _, lbs := range []int{512, 2048} {
		img := filepath.Join(dir, fmt.Sprintf("big%d.iso", lbs))
		if _, err := mkiso.WriteFile(img, os.DirFS(src), mkiso.Options{BlockSize: lbs}); err != nil {
			t.Skipf("cannot write a sparse 4 GiB image here: %v", err)
		}
		f, err := mediafs.Open(img, mediafs.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		fi, err := fs.Stat(f, "BIG.BIN")
		if err != nil || fi.Size() != size {
			t.Fatalf("lbs %d: BIG.BIN: %v, size %d, want %d", lbs, err, fi.Size(), int64(size))
		}
		if s := fi.Sys().(*iso9660.Sys); len(s.Extents) < 2 || s.Alloc != (size+int64(lbs)-1)/int64(lbs)*int64(lbs) {
			t.Fatalf("lbs %d: %d sections, alloc %d", lbs, len(s.Extents), s.Alloc)
		}
		file, _ := f.Open("BIG.BIN")
		ra := file.(io.ReaderAt)
		for off, want := range markers {
			b := make([]byte, 3)
			n, err := ra.ReadAt(b, off-1)
			if off == 0 {
				n, err = ra.ReadAt(b[1:], 0)
				n++
			}
			if n < 2 || b[1] != want || (off > 0 && b[0] != markers[off-1]) || (err != nil && !errors.Is(err, io.EOF)) {
				t.Errorf("lbs %d: bytes around %d: % x (%d, %v), want marker %d", lbs, off, b[:n], n, err, want)
			}
		}
		// A read across the section boundary is one seamless read.
		b := make([]byte, 4)
		if n, err := ra.ReadAt(b, 1<<32-2); n != 4 || err != nil || !bytes.Equal(b, []byte{0, 3, 4, 5}) {
			t.Errorf("lbs %d: read across sections: % x, %d, %v", lbs, b, n, err)
		}
		file.Close()
		if got, err := fs.ReadFile(f, "SMALL.TXT"); err != nil || string(got) != "after the big one\n" {
			t.Errorf("lbs %d: SMALL.TXT: %q %v", lbs, got, err)
		}
		f.Close()
		os.Remove(img)
	}
}
