package iso9660

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// guardMapping installs the T-ISO-4 hook: the mapping function must never be
// asked about a file offset at or beyond the file's allocation.
func guardMapping(t *testing.T) *int {
	calls := new(int)
	var mu sync.Mutex
	testMapHook = func(off, alloc int64) {
		mu.Lock()
		*calls++
		mu.Unlock()
		if off < 0 || off >= alloc {
			t.Errorf("mapping asked about file offset %d with allocation %d", off, alloc)
		}
	}
	t.Cleanup(func() { testMapHook = nil })
	return calls
}

var tisoSizes = []int{1, 511, 512, 513, 2047, 2048, 2049, 3000, 4097}

// TestBlockSizes covers T-ISO-1, -2, -3, -4 and -5: files of awkward sizes
// packed at block granularity (so they start and end mid-sector, next to
// each other) on 512-, 1024- and 2048-byte logical blocks, read through a
// device that refuses anything but whole 2048-byte sectors.
func TestBlockSizes(t *testing.T) {
	calls := guardMapping(t)
	for _, lbs := range []int{512, 1024, 2048} {
		for _, unaligned := range []bool{false, true} {
			t.Run(fmt.Sprintf("lbs%d/unaligned=%v", lbs, unaligned), func(t *testing.T) {
				im := tImage{lbs: lbs, unalignedDirs: unaligned}
				src := map[string][]byte{}
				for i, n := range tisoSizes {
					name := fmt.Sprintf("F%04d.BIN", n)
					src[name] = pattern(uint64(i), n)
					im.files = append(im.files, tFile{name: name, data: src[name]})
				}
				sub := tFile{name: "SUB", dir: true}
				for i := 0; i < 60; i++ { // a directory of several sectors
					name := fmt.Sprintf("SUB/LONG_FILE_NAME_%03d.TXT", i)
					src[name] = []byte(name)
					sub.children = append(sub.children, tFile{name: name[4:], data: src[name]})
				}
				im.files = append(im.files, sub)
				img, lay := im.build()
				f, dev := openImage(t, img, Options{})
				if got := f.Info().BlockSize; got != lbs {
					t.Fatalf("block size %d, want %d", got, lbs)
				}
				if w := f.Info().Warnings; len(w) != 0 {
					t.Errorf("warnings: %q", w)
				}
				for name, want := range src {
					info, err := f.Stat(name)
					if err != nil {
						t.Fatal(err)
					}
					s := info.Sys().(*Sys)
					alloc := int64((len(want) + lbs - 1) / lbs * lbs)
					if info.Size() != int64(len(want)) || s.Alloc != alloc {
						t.Errorf("%s: size %d alloc %d, want %d and %d", name, info.Size(), s.Alloc, len(want), alloc)
					}
					if s.Extents[0].Block != lay[name].extents[0].Block {
						t.Errorf("%s: extent %d, want %d", name, s.Extents[0].Block, lay[name].extents[0].Block)
					}
					got, err := readAll(f, name)
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s: content differs (%d bytes, %v)", name, len(got), err)
					}
					checkPageReads(t, f, name, want)
				}
				if dev.Reads.Load() == 0 {
					t.Error("no device reads counted")
				}
				// T-ISO-1 exactly.
				fl, _ := f.Open("F3000.BIN")
				ra := fl.(io.ReaderAt)
				buf := make([]byte, 4096)
				if n, err := ra.ReadAt(buf, 0); n != 3000 || err != io.EOF {
					t.Errorf("ReadAt(0, 4096) = %d, %v; want 3000, EOF", n, err)
				}
				if n, err := ra.ReadAt(buf[:1], 2999); n != 1 || err != nil || buf[0] != src["F3000.BIN"][2999] {
					t.Errorf("ReadAt(2999, 1) = %d, %v", n, err)
				}
				if n, err := ra.ReadAt(buf[:1], 3000); n != 0 || err != io.EOF {
					t.Errorf("ReadAt(3000, 1) = %d, %v; want 0, EOF", n, err)
				}
				fl.Close()
				if err := fstest.TestFS(f, "F3000.BIN", "SUB/LONG_FILE_NAME_059.TXT"); err != nil {
					t.Error(err)
				}
				checkNoPins(t, f)
			})
		}
	}
	if *calls == 0 {
		t.Error("the mapping hook was never called")
	}
}

// checkPageReads reads a file in 4096-byte pages at every page offset, as a
// memory mapping would (R-ISO-6): the tail page returns the rest with EOF,
// never a neighbour's bytes.
func checkPageReads(t *testing.T, f *FS, name string, want []byte) {
	t.Helper()
	fl, err := f.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	ra := fl.(io.ReaderAt)
	for off := 0; off < len(want); off += 4096 {
		page := bytes.Repeat([]byte{0x55}, 4096)
		n, err := ra.ReadAt(page, int64(off))
		end := min(off+4096, len(want))
		if n != end-off || !bytes.Equal(page[:n], want[off:end]) {
			t.Errorf("%s: page at %d: %d bytes, %v", name, off, n, err)
		}
		if end == len(want) && end-off < 4096 && err != io.EOF {
			t.Errorf("%s: tail page at %d: err %v, want EOF", name, off, err)
		}
		if !bytes.Equal(page[n:], bytes.Repeat([]byte{0x55}, 4096-n)) {
			t.Errorf("%s: page at %d: bytes past the end were written", name, off)
		}
	}
}

// TestTruncatedTail is T-ISO-6: an image cut at the end of its last logical
// block (not a multiple of 2048) still reads; the device pads the last
// sector.
func TestTruncatedTail(t *testing.T) {
	data := pattern(9, 700)
	im := tImage{lbs: 512, files: []tFile{{name: "A.BIN", data: pattern(8, 1000)}, {name: "Z.BIN", data: data}}}
	img, _ := im.build()
	if len(img)%sectorSize == 0 {
		t.Fatalf("image is %d bytes, a whole number of sectors; the test needs a partial one", len(img))
	}
	f, _ := openImage(t, img, Options{})
	got, err := readAll(f, "Z.BIN")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Z.BIN: %d bytes, %v", len(got), err)
	}
}

// TestMultiExtent is T-ISO-8: sections with holes between them add up, and
// a missing final section is a corruption error.
func TestMultiExtent(t *testing.T) {
	for _, lbs := range []int{512, 2048} {
		t.Run(fmt.Sprint(lbs), func(t *testing.T) {
			data := pattern(3, 3*lbs+100+2*lbs)
			im := tImage{lbs: lbs, files: []tFile{
				{name: "MULTI.BIN", data: data, sections: []int{3 * lbs, 2 * lbs}},
				{name: "NOEND.BIN", data: data, sections: []int{3 * lbs}, dropLast: true},
				{name: "ZZZ.TXT", data: []byte("after")},
			}}
			img, lay := im.build()
			f, _ := openImage(t, img, Options{})
			info, err := f.Stat("MULTI.BIN")
			if err != nil {
				t.Fatal(err)
			}
			s := info.Sys().(*Sys)
			if info.Size() != int64(len(data)) || len(s.Extents) != 3 {
				t.Fatalf("size %d, %d extents; want %d, 3", info.Size(), len(s.Extents), len(data))
			}
			for i, e := range s.Extents {
				if e != lay["MULTI.BIN"].extents[i] {
					t.Errorf("extent %d = %+v, want %+v", i, e, lay["MULTI.BIN"].extents[i])
				}
			}
			if want := int64(5*lbs) + int64((100+lbs-1)/lbs*lbs); s.Alloc != want {
				t.Errorf("alloc %d, want %d", s.Alloc, want)
			}
			got, err := readAll(f, "MULTI.BIN")
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("content differs: %d bytes, %v", len(got), err)
			}
			checkPageReads(t, f, "MULTI.BIN", data)
			if _, err := f.Open("NOEND.BIN"); err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "no final section") {
				t.Errorf("Open(NOEND.BIN) = %v, want a corruption error", err)
			}
			ents, err := f.ReadDir(".")
			if err == nil || len(ents) != 3 {
				t.Errorf("ReadDir = %d entries, %v; want 3 and an error", len(ents), err)
			}
			if got, err := readAll(f, "ZZZ.TXT"); string(got) != "after" {
				t.Errorf("ZZZ.TXT = %q, %v", got, err)
			}
		})
	}
}

// TestInterleave is T-ISO-9: interleaved files (unit:gap 2:1 and 1:1, last
// unit partial) read as their source; there is no external oracle.
func TestInterleave(t *testing.T) {
	guardMapping(t)
	for _, lbs := range []int{512, 2048} {
		for _, ug := range [][2]int{{2, 1}, {1, 1}, {3, 2}} {
			t.Run(fmt.Sprintf("lbs%d/%d:%d", lbs, ug[0], ug[1]), func(t *testing.T) {
				data := pattern(4, 7*lbs+123)
				im := tImage{lbs: lbs, files: []tFile{{name: "IL.BIN", data: data, unit: ug[0], gap: ug[1]}, {name: "NEXT.BIN", data: pattern(5, 99)}}}
				img, _ := im.build()
				f, _ := openImage(t, img, Options{})
				got, err := readAll(f, "IL.BIN")
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("content differs: %d bytes, %v", len(got), err)
				}
				checkPageReads(t, f, "IL.BIN", data)
				s, _ := f.Stat("IL.BIN")
				if e := s.Sys().(*Sys).Extents[0]; e.Unit != ug[0] || e.Gap != ug[1] {
					t.Errorf("extent %+v", e)
				}
			})
		}
	}
}

// TestBadBlockSize is T-ISO-10.
func TestBadBlockSize(t *testing.T) {
	for _, c := range []struct {
		field []byte
		want  string
	}{
		{[]byte{0, 0, 0, 0}, "unsupported logical block size 0"},
		{[]byte{0, 1, 1, 0}, "unsupported logical block size 256"},
		{[]byte{0, 16, 16, 0}, "unsupported logical block size 4096"},
		{[]byte{0xB8, 0x0B, 0x0B, 0xB8}, "unsupported logical block size 3000"},
		{[]byte{0, 8, 4, 0}, "disagree"},
	} {
		img, _ := tImage{blockSizeField: c.field, files: []tFile{{name: "A", data: []byte("x")}}}.build()
		_, err := Open(strictDevice(img), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("block size field % x: Open = %v, want %q", c.field, err, c.want)
		}
	}
	// VDs stay at byte 32768 whatever the block size.
	img, _ := tImage{lbs: 512, files: []tFile{{name: "A", data: []byte("x")}}}.build()
	if !Probe(strictDevice(img), 0) {
		t.Error("Probe missed the PVD at sector 16 of a 512-block image")
	}
}

// TestEmptyFilesOddLocations is T-ISO-12: empty files at extent 0 and past
// the volume are shown with size 0 and read as EOF.
func TestEmptyFilesOddLocations(t *testing.T) {
	im := tImage{lbs: 1024, files: []tFile{{name: "ZERO", atZero: true}, {name: "FAR", beyond: true}, {name: "REAL", data: []byte("real")}}}
	img, _ := im.build()
	f, _ := openImage(t, img, Options{})
	for _, name := range []string{"ZERO", "FAR"} {
		info, err := f.Stat(name)
		if err != nil || info.Size() != 0 || info.Sys().(*Sys).Alloc != 0 {
			t.Fatalf("Stat(%s) = %v, %v", name, info, err)
		}
		fl, err := f.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := fl.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("%s: Read = %d, %v", name, n, err)
		}
		fl.Close()
	}
	if err := fstest.TestFS(f, "ZERO", "FAR", "REAL"); err != nil {
		t.Error(err)
	}
}

// TestXARAndFlags: data starts after the extended attribute record; hidden
// and associated files are shown and marked.
func TestXARAndFlags(t *testing.T) {
	data := pattern(11, 1500)
	im := tImage{lbs: 512, files: []tFile{
		{name: "XAR.BIN", data: data, xar: 2},
		{name: "HIDDEN.TXT", data: []byte("h"), flags: flagHidden},
		{name: "ASSOC.TXT", data: []byte("a"), flags: flagAssociated},
	}}
	img, lay := im.build()
	f, _ := openImage(t, img, Options{})
	got, err := readAll(f, "XAR.BIN")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("XAR.BIN: %d bytes, %v", len(got), err)
	}
	info, _ := f.Stat("XAR.BIN")
	if b := info.Sys().(*Sys).Extents[0].Block; b != lay["XAR.BIN"].extents[0].Block {
		t.Errorf("extent block %d, want %d", b, lay["XAR.BIN"].extents[0].Block)
	}
	h, err := f.Stat("HIDDEN.TXT")
	if err != nil || !h.Sys().(*Sys).Hidden {
		t.Errorf("HIDDEN.TXT: %v, %v", h, err)
	}
	a, err := f.Stat("assoc.txt") // case-insensitive in the ISO namespace
	if err != nil || !a.Sys().(*Sys).Associated {
		t.Errorf("assoc.txt: %v, %v", a, err)
	}
	if a.Name() != "assoc.txt" {
		t.Errorf("Name() = %q", a.Name())
	}
}

// TestLargeReads: a large contiguous file is read in a handful of device
// requests, not one per sector, whatever the alignment.
func TestLargeReads(t *testing.T) {
	for _, lbs := range []int{512, 2048} {
		data := pattern(12, 30<<20+777)
		im := tImage{lbs: lbs, files: []tFile{{name: "A.BIN", data: []byte("abc")}, {name: "BIG.BIN", data: data}}}
		img, _ := im.build()
		f, dev := openImage(t, img, Options{})
		fl, err := f.Open("BIG.BIN")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data))
		before := dev.Reads.Load()
		n, err := fl.(io.ReaderAt).ReadAt(buf, 0)
		if n != len(data) || err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		if r := dev.Reads.Load() - before; r > 3 {
			t.Errorf("lbs %d: %d device reads for one 30 MiB ReadAt, want at most 3", lbs, r)
		}
		before = dev.Reads.Load()
		chunk := make([]byte, 1<<20)
		var total int
		for {
			n, err := fl.Read(chunk)
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if r := dev.Reads.Load() - before; total != len(data) || r > 3*31 {
			t.Errorf("lbs %d: %d bytes in %d device reads with a 1 MiB buffer", lbs, total, r)
		}
		fl.Close()
	}
}

// TestDeviceErrorPath: a bad sector in a file gives an error that names the
// path and the sector, and leaves no pinned block.
func TestDeviceErrorPath(t *testing.T) {
	data := pattern(13, 10000)
	img, lay := tImage{files: []tFile{{name: "DIR", dir: true, children: []tFile{{name: "FILE.BIN", data: data}}}}}.build()
	bad := lay["DIR/FILE.BIN"].extents[0].Block + 2
	d := &badDevice{Strict: strictDevice(img), bad: bad}
	f, err := Open(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(f, "DIR/FILE.BIN")
	want := fmt.Sprintf("read /DIR/FILE.BIN: sector %d: bad sector", bad)
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/DIR/FILE.BIN" {
		t.Errorf("not a PathError with the path: %#v", err)
	}
	checkNoPins(t, f)
}

// TestConcurrentReaders reads every file from several goroutines (run with
// -race).
func TestConcurrentReaders(t *testing.T) {
	var files []tFile
	src := map[string][]byte{}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("F%02d.BIN", i)
		src[name] = pattern(uint64(100+i), 1000*i+1)
		files = append(files, tFile{name: name, data: src[name]})
	}
	img, _ := tImage{lbs: 512, files: files}.build()
	f, _ := openImage(t, img, Options{CacheBlocks: 2})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name, want := range src {
				got, err := readAll(f, name)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	checkNoPins(t, f)
}

func TestInfoFields(t *testing.T) {
	img, _ := tImage{lbs: 1024, volumeID: "MY_LABEL", files: []tFile{{name: "A", data: []byte("x")}}}.build()
	f, _ := openImage(t, img, Options{})
	i := f.Info()
	want := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	if i.Label != "MY_LABEL" || i.BlockSize != 1024 || i.Namespace != "iso" || i.Joliet || i.RockRidge || i.ElTorito ||
		i.Size != i.VolumeBlocks*1024 || !i.Created.Equal(want) || !i.Modified.Equal(want) {
		t.Errorf("Info = %+v", i)
	}
	if _, err := Open(strictDevice(img), Options{Namespace: "rr"}); err == nil {
		t.Error("namespace rr on a plain image did not fail")
	}
	if _, err := Open(strictDevice(img), Options{Namespace: "joliet"}); err == nil {
		t.Error("namespace joliet on a plain image did not fail")
	}
	st, _ := f.Stat("A")
	if !st.ModTime().Equal(time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)) || st.Mode() != 0o444 {
		t.Errorf("A: %v", st)
	}
	root, _ := f.Stat(".")
	if root.Mode() != fs.ModeDir|0o555 {
		t.Errorf("root mode %v", root.Mode())
	}
}

// TestDirectoryCycle: a directory whose extent is an ancestor's is reported
// as corruption, and walking stays bounded.
func TestDirectoryCycle(t *testing.T) {
	im := tImage{files: []tFile{{name: "A", dir: true, children: []tFile{{name: "B", dir: true, children: []tFile{{name: "F.TXT", data: []byte("f")}}}}}}}
	img, _ := im.build()
	f, _ := openImage(t, img, Options{})
	a, _ := f.Stat("A")
	b, _ := f.Stat("A/B")
	aBlock := a.Sys().(*Sys).Extents[0].Block
	bBlock := b.Sys().(*Sys).Extents[0].Block
	// Point B's record (in A) at A itself.
	dirA := img[aBlock*sectorSize : (aBlock+1)*sectorSize]
	rec := bytes.Index(dirA, []byte("\x01B"))
	if rec < 0 {
		t.Fatal("record of B not found")
	}
	put733(dirA[rec-32+2:], uint32(aBlock))
	_ = bBlock
	f, _ = openImage(t, img, Options{})
	ents, err := f.ReadDir("A")
	if err == nil || !errors.Is(err, ErrCorrupt) || len(ents) != 0 {
		t.Errorf("ReadDir(A) = %d entries, %v; want none and a corruption error", len(ents), err)
	}
	if _, err := f.Stat("A/B/B"); err == nil || !strings.Contains(err.Error(), "own ancestor") {
		t.Errorf("Stat(A/B/B) = %v", err)
	}
	rows, errs := walkImage(t, f, true)
	if len(errs) == 0 || len(rows) > 1 {
		t.Errorf("walk: %d rows, errors %v", len(rows), errs)
	}
}

// TestPathErrors: the errors of resolving a path through a file, around a
// loop of symbolic links, and of reading a directory, are the exported
// sentinels (the FUSE layer maps them to ENOTDIR, ELOOP and EISDIR).
func TestPathErrors(t *testing.T) {
	haveTool(t, "genisoimage")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, map[string]string{"a.txt": "x", "loop1": "->loop2", "loop2": "->loop1", "sub/": ""})
	run(t, dir, "genisoimage", "-quiet", "-R", "-o", "rr.iso", "src")
	f, _ := openImage(t, loadImage(t, filepath.Join(dir, "rr.iso")), Options{})
	if _, err := f.Open("a.txt/x"); !errors.Is(err, ErrNotDir) {
		t.Errorf("a path through a file: %v", err)
	}
	if _, err := f.Open("loop1/x"); !errors.Is(err, ErrLinkLoop) {
		t.Errorf("a path through a loop of links: %v", err)
	}
	d, err := f.Open("sub")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, ErrIsDir) {
		t.Errorf("reading a directory: %v", err)
	}
}
