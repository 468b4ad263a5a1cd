package mkiso

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rootRecords returns the records of the ISO root directory named id.
func rootRecords(t *testing.T, img, id string) []rawRec {
	t.Helper()
	raw := readHead(t, img, 1<<20) // the metadata of these test images
	bs, ext, size := pvdInfo(raw)
	var out []rawRec
	for _, r := range rawRecords(t, raw, bs, ext, size) {
		if r.id == id {
			out = append(out, r)
		}
	}
	return out
}

func readHead(t *testing.T, name string, n int) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := f.ReadAt(b, 0)
	if got < n && err != io.EOF {
		t.Fatal(err)
	}
	return b[:got]
}

func fileEntry(t *testing.T, m *Manifest, p string) FileEntry {
	t.Helper()
	for _, f := range m.Files {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("manifest has no %s", p)
	return FileEntry{}
}

// TestMultiExtent: a file split into sections of N blocks with a one-block
// hole between them is written as consecutive records with flag 0x80 on
// all but the last. At 2048 isoinfo, bsdtar and 7-Zip read it; at 512 the
// manifest and the raw records are the oracle (pycdlib and The Sleuth Kit
// mis-read holes).
func TestMultiExtent(t *testing.T) {
	files := map[string][]byte{"BIG.DAT": content("big", 9000), "NEXT.DAT": content("next", 700)}
	src := makeTree(t, files)
	for _, tc := range []struct{ bs, sec int }{{2048, 2}, {512, 3}, {1024, 4}} {
		t.Run(fmt.Sprint(tc.bs), func(t *testing.T) {
			img, m := build(t, src, Options{BlockSize: tc.bs, Joliet: true, MultiExtent: map[string]int{"BIG.DAT": tc.sec}})
			checkManifest(t, img, m, files)
			f := fileEntry(t, m, "BIG.DAT")
			secBytes := int64(tc.sec * tc.bs)
			want := int((9000 + secBytes - 1) / secBytes)
			if len(f.Extents) != want {
				t.Fatalf("%d sections, want %d", len(f.Extents), want)
			}
			recs := rootRecords(t, img, "BIG.DAT;1")
			if len(recs) != len(f.Extents) {
				t.Fatalf("%d records, want %d", len(recs), len(f.Extents))
			}
			for i, e := range f.Extents {
				last := i == len(f.Extents)-1
				if !last && (e.Length != secBytes || f.Extents[i+1].Block != e.Block+int64(tc.sec)+1) {
					t.Errorf("section %d: %+v, next %+v", i, e, f.Extents[i+1])
				}
				r := recs[i]
				if int64(r.ext) != e.Block || int64(r.size) != e.Length || (r.flags&0x80 != 0) == last {
					t.Errorf("record %d: extent %d size %d flags %#x; manifest %+v", i, r.ext, r.size, r.flags, e)
				}
				if i > 0 && r.off != recs[i-1].off+int64(len(recs[i-1].rec)) && r.off%2048 != 0 {
					t.Errorf("record %d does not follow record %d", i, i-1)
				}
			}
			if tc.bs != 2048 {
				return
			}
			sameFiles(t, "isoinfo", map[string][]byte{"/BIG.DAT;1": files["BIG.DAT"]},
				readIsoinfo(t, img, "", []string{"/BIG.DAT;1"}), nil)
			sameFiles(t, "bsdtar", slashed(files), readBsdtar(t, img), nil)
			sameFiles(t, "7zz", slashed(files), read7zz(t, img), nil)
		})
	}
}

// TestInterleave: units of U blocks with G-block gaps; recorded in the
// record's unit and gap fields. No third-party reader handles it, so the
// manifest and the source bytes are the oracle.
func TestInterleave(t *testing.T) {
	files := map[string][]byte{"IL.DAT": content("il", 9000), "Z.DAT": content("z", 100)}
	src := makeTree(t, files)
	for _, bs := range blockSizes {
		for _, ug := range [][2]int{{2, 1}, {1, 1}, {3, 2}} {
			t.Run(fmt.Sprintf("%d/%d:%d", bs, ug[0], ug[1]), func(t *testing.T) {
				img, m := build(t, src, Options{BlockSize: bs, Interleave: map[string][2]int{"IL.DAT": ug}})
				checkManifest(t, img, m, files)
				f := fileEntry(t, m, "IL.DAT")
				e := f.Extents[0]
				if len(f.Extents) != 1 || e.Unit != ug[0] || e.Gap != ug[1] || e.Length != 9000 {
					t.Fatalf("extents %+v", f.Extents)
				}
				r := rootRecords(t, img, "IL.DAT;1")[0]
				if int(r.rec[26]) != ug[0] || int(r.rec[27]) != ug[1] || int64(r.ext) != e.Block {
					t.Errorf("record unit %d gap %d extent %d", r.rec[26], r.rec[27], r.ext)
				}
				nb := (int64(9000) + int64(bs) - 1) / int64(bs)
				units := (nb + int64(ug[0]) - 1) / int64(ug[0])
				if z := fileEntry(t, m, "Z.DAT"); z.Extents[0].Block != e.Block+nb+(units-1)*int64(ug[1]) {
					t.Errorf("next file at %d, interleaved file at %d spans %d+%d gaps", z.Extents[0].Block, e.Block, nb, units-1)
				}
			})
		}
	}
}

// TestHugeSparseFile: a 4.5 GiB sparse file is split into sections of at
// most 4 GiB - BlockSize, and WriteFile produces a sparse image quickly.
func TestHugeSparseFile(t *testing.T) {
	dir := t.TempDir()
	const size = 4_500_000_000
	p := filepath.Join(dir, "HUGE.BIN")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[int64]string{0: "first", 1<<32 - 4096: "around4G", 1 << 32: "past4G", size - 4: "last"}
	for off, s := range marks {
		if _, err := fh.WriteAt([]byte(s), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Truncate(size); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	for _, bs := range []int{512, 2048} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			img, m := build(t, dir, Options{BlockSize: bs})
			f := m.Files[0]
			max := int64(1<<32) - int64(bs)
			if len(f.Extents) != 2 || f.Extents[0].Length != max || f.Extents[1].Length != size-max ||
				f.Extents[1].Block != f.Extents[0].Block+max/int64(bs) {
				t.Fatalf("extents %+v", f.Extents)
			}
			if f.Alloc != (size+int64(bs)-1)/int64(bs)*int64(bs) {
				t.Errorf("alloc %d", f.Alloc)
			}
			recs := rootRecords(t, img, "HUGE.BIN;1")
			if len(recs) != 2 || recs[0].flags != 0x80 || recs[1].flags != 0 {
				t.Fatalf("records %+v", recs)
			}
			var st = new(syscallStat)
			if used, ok := st.used(img); ok && used > 16<<20 {
				t.Errorf("image uses %d bytes on disk: not sparse", used)
			}
			ih, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer ih.Close()
			for off, s := range marks {
				b := make([]byte, len(s))
				if _, err := ih.ReadAt(b, f.Offset+off); err != nil || string(b) != s {
					t.Errorf("at %d: %q, %v", off, b, err)
				}
			}
			if bs == 2048 {
				if out := string(runTool(t, needTool(t, "7zz"), "l", img)); !strings.Contains(out, "4500000000") {
					t.Errorf("7zz does not list the size:\n%s", out)
				}
			}
		})
	}
}

// TestElTorito: boot record, catalog (validation entry checksum, 55 AA)
// and default entry pointing at the boot image, on a 2048-byte sector.
func TestElTorito(t *testing.T) {
	files := map[string][]byte{"boot/boot.img": content("boot", 8192), "A.TXT": content("a", 3)}
	src := makeTree(t, files)
	for _, bs := range blockSizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			img, m := build(t, src, Options{BlockSize: bs, Joliet: true, RockRidge: true,
				Boot: &Boot{Path: "boot/boot.img", LoadSize: 16}})
			checkManifest(t, img, m, files)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			br := raw[17*2048:]
			if br[0] != 0 || string(br[1:6]) != "CD001" || !strings.HasPrefix(string(br[7:]), "EL TORITO SPECIFICATION") {
				t.Fatalf("no boot record at sector 17")
			}
			cat := raw[int64(binary.LittleEndian.Uint32(br[0x47:]))*2048:]
			var sum uint16
			for i := 0; i < 32; i += 2 {
				sum += binary.LittleEndian.Uint16(cat[i:])
			}
			if cat[0] != 1 || sum != 0 || cat[0x1E] != 0x55 || cat[0x1F] != 0xAA {
				t.Errorf("bad validation entry % x", cat[:32])
			}
			e := cat[32:]
			boot := fileEntry(t, m, "boot/boot.img")
			if e[0] != 0x88 || binary.LittleEndian.Uint16(e[6:]) != 16 ||
				int64(binary.LittleEndian.Uint32(e[8:]))*2048 != boot.Offset || boot.Offset%2048 != 0 {
				t.Errorf("bad default entry % x (boot image at %d)", e[:16], boot.Offset)
			}
			if bs != 2048 {
				return
			}
			out := string(runTool(t, needTool(t, "isoinfo"), "-d", "-i", img))
			want := fmt.Sprintf("Bootoff %X %d", boot.Offset/2048, boot.Offset/2048)
			if !strings.Contains(out, "Nsect 10") || !strings.Contains(out, want) {
				t.Errorf("isoinfo -d: want %q and Nsect 10 in\n%s", want, out)
			}
			sameFiles(t, "bsdtar", slashed(files), readBsdtar(t, img), nil)
		})
	}
}
