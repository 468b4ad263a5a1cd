package mkiso

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var blockSizes = []int{512, 1024, 2048}

var testSizes = []int{0, 1, 511, 512, 513, 2047, 2048, 2049, 3000, 4097, 70000}

// content returns deterministic pseudo-random bytes for a file.
func content(name string, size int) []byte {
	var seed uint64
	for _, c := range name {
		seed = seed*131 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeTree writes files (slash paths -> content) under a new directory
// and returns it; the files get a fixed modification time.
func makeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for p, b := range files {
		fp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(fp, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// plainTree has ISO-friendly names: every size of testSizes in the root
// and some in nested directories, plus an empty directory.
func plainTree() map[string][]byte {
	files := map[string][]byte{}
	for _, s := range testSizes {
		name := fmt.Sprintf("F%d.DAT", s)
		files[name] = content(name, s)
	}
	for _, p := range []string{"D1/F3000.DAT", "D1/D2/NOEXT", "D1/D2/D3/F513.DAT", "D1/D2/D3/D4/F0.DAT", "Z/F2049.BIN"} {
		var s int
		fmt.Sscanf(path.Base(p), "F%d", &s)
		if s == 0 && !strings.HasPrefix(path.Base(p), "F0") {
			s = 777
		}
		files[p] = content(p, s)
	}
	return files
}

func slashed(files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for p, b := range files {
		out["/"+p] = b
	}
	return out
}

func build(t *testing.T, src string, opts Options) (string, *Manifest) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "test.iso")
	m, err := WriteFile(img, os.DirFS(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != m.ImageSize || m.ImageSize != m.VolumeBlocks*int64(m.BlockSize) {
		t.Fatalf("image is %d bytes, manifest says %d (%d blocks)", fi.Size(), m.ImageSize, m.VolumeBlocks)
	}
	return img, m
}

// checkManifest asserts the allocation facts and that the image holds
// every file's bytes where the manifest says.
func checkManifest(t *testing.T, img string, m *Manifest, files map[string][]byte) {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs := int64(m.BlockSize)
	if len(m.Files) != len(files) {
		t.Errorf("manifest has %d files, source %d", len(m.Files), len(files))
	}
	for _, f := range m.Files {
		want, ok := files[f.Path]
		if !ok {
			t.Errorf("manifest: unknown file %s", f.Path)
			continue
		}
		if f.Size != int64(len(want)) || f.Alloc != (f.Size+bs-1)/bs*bs {
			t.Errorf("%s: size %d alloc %d (source %d, LBS %d)", f.Path, f.Size, f.Alloc, len(want), bs)
		}
		if f.Offset != f.Extents[0].Block*bs || f.StartsMidSector != (f.Size > 0 && f.Offset%2048 != 0) {
			t.Errorf("%s: offset %d, mid-sector %v", f.Path, f.Offset, f.StartsMidSector)
		}
		if got := imageBytes(raw, bs, f); !bytes.Equal(got, want) {
			t.Errorf("%s: image bytes differ from the source", f.Path)
		}
	}
}

// imageBytes reassembles a file from the manifest's extents.
func imageBytes(raw []byte, bs int64, f FileEntry) []byte {
	var out []byte
	for _, e := range f.Extents {
		if e.Unit == 0 {
			out = append(out, raw[e.Block*bs:e.Block*bs+e.Length]...)
			continue
		}
		unit, stride := int64(e.Unit)*bs, int64(e.Unit+e.Gap)*bs
		for off, k := int64(0), int64(0); off < e.Length; off, k = off+unit, k+1 {
			at := e.Block*bs + k*stride
			out = append(out, raw[at:at+min(unit, e.Length-off)]...)
		}
	}
	return out
}

// TestThirdPartyReaders is the independence proof: images at every block
// size, with and without unaligned directories and empty files at 0, are
// read byte-exact by The Sleuth Kit and pycdlib (and, at 2048, by isoinfo,
// bsdtar and 7-Zip).
func TestThirdPartyReaders(t *testing.T) {
	files := plainTree()
	src := makeTree(t, files)
	want := slashed(files)
	for _, bs := range blockSizes {
		for _, variant := range []struct {
			name      string
			unaligned bool
			emptyZero bool
		}{{"aligned", false, false}, {"unaligned", true, false}, {"emptyatzero", false, true}, {"both", true, true}} {
			t.Run(fmt.Sprintf("%d/%s", bs, variant.name), func(t *testing.T) {
				img, m := build(t, src, Options{BlockSize: bs, UnalignedDirs: variant.unaligned, EmptyAtZero: variant.emptyZero})
				checkManifest(t, img, m, files)
				if bs == 512 {
					mid := 0
					for _, f := range m.Files {
						if f.StartsMidSector {
							mid++
						}
					}
					if mid == 0 {
						t.Error("no file starts mid-sector at LBS 512")
					}
				}
				for _, f := range m.Files {
					if f.Size == 0 && variant.emptyZero && f.Extents[0].Block != 0 {
						t.Errorf("%s: empty file at block %d", f.Path, f.Extents[0].Block)
					}
				}
				checkRecordsInSectors(t, img)
				sameFiles(t, "sleuthkit", want, readSleuthKit(t, img), isoNorm)
				sameFiles(t, "pycdlib", want, readPycdlib(t, img, "iso"), isoNorm)
				if bs != 2048 {
					return
				}
				var paths []string
				isoWant := map[string][]byte{}
				for p, b := range files {
					ip := "/" + p
					if !strings.Contains(path.Base(p), ".") {
						ip += "."
					}
					ip += ";1"
					paths = append(paths, ip)
					isoWant[ip] = b
				}
				sameFiles(t, "isoinfo", isoWant, readIsoinfo(t, img, "", paths), nil)
				sameFiles(t, "bsdtar", want, readBsdtar(t, img), isoNorm)
				sameFiles(t, "7zz", want, read7zz(t, img), isoNorm)
			})
		}
	}
}

// rawDir is a minimal directory walk used to check the written records
// (not a reader: it knows our layout is valid and only collects facts).
type rawRec struct {
	off   int64 // byte offset of the record
	rec   []byte
	id    string
	ext   uint32
	size  uint32
	flags byte
}

func pvdInfo(raw []byte) (bs int64, rootExt, rootSize uint32) {
	pvd := raw[16*2048:]
	return int64(binary.LittleEndian.Uint16(pvd[128:])), binary.LittleEndian.Uint32(pvd[158:]), binary.LittleEndian.Uint32(pvd[166:])
}

func rawRecords(t *testing.T, raw []byte, bs int64, ext, size uint32) []rawRec {
	t.Helper()
	var out []rawRec
	start := int64(ext) * bs
	for pos := start; pos < start+int64(size); {
		n := int64(raw[pos])
		if n == 0 {
			pos = (pos/2048 + 1) * 2048
			continue
		}
		if pos/2048 != (pos+n-1)/2048 {
			t.Fatalf("record at %d (length %d) crosses a sector", pos, n)
		}
		r := raw[pos : pos+n]
		out = append(out, rawRec{off: pos, rec: r, id: string(r[33 : 33+r[32]]),
			ext: binary.LittleEndian.Uint32(r[2:]), size: binary.LittleEndian.Uint32(r[10:]), flags: r[25]})
		pos += n
	}
	return out
}

// checkRecordsInSectors walks the ISO tree and checks that no record
// crosses a sector and both-endian fields agree.
func checkRecordsInSectors(t *testing.T, img string) {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs, ext, size := pvdInfo(raw)
	var walk func(ext, size uint32)
	walk = func(ext, size uint32) {
		for i, r := range rawRecords(t, raw, bs, ext, size) {
			if binary.BigEndian.Uint32(r.rec[6:]) != r.ext || binary.BigEndian.Uint32(r.rec[14:]) != r.size {
				t.Errorf("record %q: LE/BE mismatch", r.id)
			}
			if i >= 2 && r.flags&2 != 0 {
				walk(r.ext, r.size)
			}
		}
	}
	walk(ext, size)
}

// TestImageEndsMidSector: at LBS 512 the image ends at the last block,
// which is not a sector boundary, and the readers still read it (T-ISO-6).
func TestImageEndsMidSector(t *testing.T) {
	files := map[string][]byte{"A.TXT": content("a", 100)}
	src := makeTree(t, files)
	img, m := build(t, src, Options{BlockSize: 512})
	if m.ImageSize%2048 == 0 {
		t.Fatalf("image size %d is a multiple of 2048", m.ImageSize)
	}
	last := m.Files[0]
	if last.Offset+last.Alloc != m.ImageSize {
		t.Errorf("last file ends at %d, image at %d", last.Offset+last.Alloc, m.ImageSize)
	}
	checkManifest(t, img, m, files)
	sameFiles(t, "sleuthkit", slashed(files), readSleuthKit(t, img), isoNorm)
	sameFiles(t, "pycdlib", slashed(files), readPycdlib(t, img, "iso"), isoNorm)
}

// TestDeterministic: the same tree gives the same bytes, through Write
// and WriteFile alike.
func TestDeterministic(t *testing.T) {
	files := plainTree()
	files["deep/a/b/c/d/e/f/g/h/i/j.txt"] = content("j", 10)
	src := makeTree(t, files)
	if err := os.Symlink("F1.DAT", filepath.Join(src, "LINK")); err != nil {
		t.Fatal(err)
	}
	opts := Options{BlockSize: 512, Joliet: true, RockRidge: true, Boot: &Boot{Path: "F4097.DAT"}}
	var a, b memImage
	if _, err := Write(&a, os.DirFS(src), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, os.DirFS(src), opts); err != nil {
		t.Fatal(err)
	}
	img, _ := build(t, src, opts)
	c, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatal("two writes of the same tree differ")
	}
}

// memImage is an in-memory io.WriterAt.
type memImage []byte

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(*m)) {
		*m = append(*m, make([]byte, end-int64(len(*m)))...)
	}
	return copy((*m)[off:], p), nil
}

func TestBadOptions(t *testing.T) {
	src := makeTree(t, map[string][]byte{"A": {1}})
	for _, o := range []Options{
		{BlockSize: 4096},
		{BlockSize: 256},
		{MultiExtent: map[string]int{"missing": 1}},
		{Interleave: map[string][2]int{"A": {0, 1}}},
		{Boot: &Boot{Path: "nope"}},
	} {
		var m memImage
		if _, err := Write(&m, os.DirFS(src), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
