package iso9660

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediafs/mediafs/device"
)

// suEntry encodes a SUSP entry.
func suEntry(sig string, data ...byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
}

func b733(v uint32) []byte { b := make([]byte, 8); put733(b, v); return b }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// rrSeedImage is a small image with Rock Ridge entries of every kind, for
// fuzz seeds and for a test of the decoder on hand-made entries.
func rrSeedImage() []byte {
	px := func(mode uint32) []byte {
		return suEntry("PX", cat(b733(mode), b733(1), b733(1000), b733(100), b733(77))...)
	}
	sp := suEntry("SP", 0xBE, 0xEF, 0)
	tf := suEntry("TF", append([]byte{0x02}, tDate...)...)
	sl := suEntry("SL", 0, 0x08, 0, 0, 3, 't', 'm', 'p', 0, 0)
	im := tImage{lbs: 512, rootSU: cat(sp, px(0o40755)), files: []tFile{
		{name: "FILE.TXT", data: []byte("hello\n"), su: cat(px(0o100640), suEntry("NM", append([]byte{0}, "file.txt"...)...), tf)},
		{name: "LINK", su: cat(px(0o120777), suEntry("NM", append([]byte{0}, "link"...)...), sl)},
		{name: "DEV", su: cat(px(0o20644), suEntry("NM", append([]byte{0}, "dev"...)...), suEntry("PN", cat(b733(1), b733(5))...))},
		{name: "SUB", dir: true, su: cat(px(0o40700), suEntry("NM", append([]byte{0}, "Sub"...)...)), children: []tFile{
			{name: "A.BIN", data: pattern(1, 3000), su: px(0o100444), sections: []int{1024}},
		}},
	}}
	img, _ := im.build()
	return img
}

// TestRockRidgeHandMade reads an image whose Rock Ridge entries were written
// by hand: PX modes and owners, NM names, TF time, SL, PN (corpus-notes 11).
func TestRockRidgeHandMade(t *testing.T) {
	f, _ := openImage(t, rrSeedImage(), Options{})
	if f.Info().Namespace != "rr" {
		t.Fatalf("namespace %q", f.Info().Namespace)
	}
	rows, _ := walkImage(t, f, false)
	want := map[string]string{"file.txt": "file 640", "link": "symlink 777", "dev": "char 644", "Sub": "dir 700", "Sub/A.BIN": "file 444"}
	for p, w := range want {
		r, ok := rows[p]
		if !ok || r.typ+" "+fmtPerm(r.perm) != w || r.uid != 1000 || r.gid != 100 {
			t.Errorf("%s: %+v, want %s owned by 1000:100", p, r, w)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d entries, want %d", len(rows), len(want))
	}
	if rows["link"].target != "/tmp/" || rows["dev"].rdev != [2]uint32{1, 5} {
		t.Errorf("link %q, dev %v", rows["link"].target, rows["dev"].rdev)
	}
	info, _ := f.Stat("file.txt")
	if info.ModTime().Unix() != 1588748889 || info.Sys().(*Sys).Ino != 77 {
		t.Errorf("file.txt: mtime %v, sys %+v", info.ModTime(), info.Sys())
	}
	if _, err := f.Stat("FILE.TXT"); err == nil {
		t.Error("Rock Ridge lookups must be case-sensitive")
	}
}

func fmtPerm(m fs.FileMode) string {
	return string([]byte{'0' + byte(m>>6&7), '0' + byte(m>>3&7), '0' + byte(m&7)})
}

func FuzzVolumeDescriptor(f *testing.F) {
	img, _ := tImage{files: []tFile{{name: "A", data: []byte("a")}}}.build()
	f.Add(img[16*sectorSize : 17*sectorSize])
	f.Add([]byte("\x00CD001\x01EL TORITO SPECIFICATION"))
	f.Fuzz(func(t *testing.T, b []byte) {
		buf := make([]byte, sectorSize)
		copy(buf, b)
		vd, err := decodeVolumeDescriptor(buf)
		if err != nil {
			return
		}
		_ = vd.jolietLevel()
		_ = vd.isElTorito()
		_ = aString(vd.VolumeID) + ucs2String(vd.VolumeID)
		if vd.Root != nil {
			_, _ = decodeRootRecord(vd.Root)
		}
	})
}

func FuzzDirRecord(f *testing.F) {
	f.Add(record([]byte("FILE.TXT;1"), 20, 100, 0, 0, 0, 0, suEntry("NM", 0, 'x')))
	f.Add(record([]byte{0}, 20, 2048, flagDirectory, 1, 2, 1, nil))
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeDirRecord(b)
		if err != nil {
			return
		}
		if r.Len < minDirRecord || r.Len > len(b) || 33+len(r.Name) > r.Len || len(r.Name) == 0 {
			t.Fatalf("accepted a bad record: %+v", r)
		}
		_ = stripVersion(latin1(r.Name), true) + ucs2String(r.Name)
	})
}

func FuzzPathTable(f *testing.F) {
	f.Add([]byte{1, 0, 20, 0, 0, 0, 1, 0, 0, 0, 3, 0, 21, 0, 0, 0, 1, 0, 'D', 'I', 'R', 0})
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lbs := range []int64{512, 2048} {
			_ = validatePathTable(b, 20, geometry{blockSize: lbs})
		}
	})
}

func FuzzSUSP(f *testing.F) {
	f.Add(cat(suEntry("SP", 0xBE, 0xEF, 0), suEntry("NM", 1, 'a'), suEntry("NM", 0, 'b'), suEntry("SL", 1, 2, 0, 8, 0), suEntry("SL", 0, 0, 1, 'x')))
	f.Add(cat(suEntry("TF", append([]byte{0x86}, make([]byte, 34)...)...), suEntry("ZF", 'p', 'z', 4, 15, 0, 1, 0, 0, 0, 0, 1, 0), suEntry("CE", cat(b733(1), b733(0), b733(10))...)))
	f.Add(cat(suEntry("PX", make([]byte, 40)...), suEntry("PN", make([]byte, 16)...), suEntry("CL", b733(5)...), suEntry("RE"), suEntry("ST")))
	f.Fuzz(func(t *testing.T, b []byte) {
		st := newRRState()
		st.parseArea(stripXA(b))
		if st.name.Len() > maxNameBytes+255 || st.link.Len() > maxNameBytes+512 {
			t.Fatalf("unbounded name %d / link %d", st.name.Len(), st.link.Len())
		}
		_, _ = devNumber(st.pnHigh, st.pnLow)
	})
}

// FuzzImage opens an image, walks it, reads every file and the boot
// images: no panic, no hang, no allocation beyond the image's size.
func FuzzImage(f *testing.F) {
	f.Add(rrSeedImage())
	for _, lbs := range []int{512, 1024, 2048} {
		img, _ := tImage{lbs: lbs, unalignedDirs: true, files: []tFile{
			{name: "M.BIN", data: pattern(2, 3*lbs+5), sections: []int{lbs, lbs}},
			{name: "I.BIN", data: pattern(3, 5*lbs), unit: 2, gap: 1},
			{name: "X.BIN", data: []byte("xar"), xar: 1},
			{name: "Z", atZero: true},
			{name: "D", dir: true, children: []tFile{{name: "E.TXT", data: []byte("e")}}},
		}}.build()
		f.Add(img)
	}
	// Real images with CE areas, Joliet, zisofs and El Torito, when the
	// shared corpus is present.
	for _, rel := range []string{
		"libarchive/test_read_format_iso_rockridge_ce.iso",
		"libarchive/test_read_format_iso_joliet_rockridge.iso",
		"libarchive/test_read_format_iso_zisofs.iso",
		"libarchive/test_read_format_iso_rockridge_rr_moved.iso.gz",
		"coreos-installer/embed-areas-2020-09.iso",
	} {
		if p := filepath.Join(corpusDir, rel); fileExists(p) {
			f.Add(loadImage(f, p))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4<<20 {
			return
		}
		fsys, err := Open(device.NewMemory(bytes.Clone(b), sectorSize), Options{})
		if err != nil {
			return
		}
		budget := 2000
		var walk func(dir string, depth int)
		walk = func(dir string, depth int) {
			if depth > 50 {
				return
			}
			ents, _ := fsys.ReadDir(dir)
			for _, e := range ents {
				if budget--; budget < 0 {
					return
				}
				p := e.Name()
				if dir != "." {
					p = dir + "/" + p
				}
				if e.IsDir() {
					walk(p, depth+1)
					continue
				}
				_, _ = fsys.ReadLink(p)
				fl, err := fsys.Open(p)
				if err != nil {
					continue
				}
				n, _ := io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
				if info, _ := fl.Stat(); info != nil && n > info.Size() {
					t.Fatalf("%s: read %d bytes of a %d-byte file", p, n, info.Size())
				}
				fl.Close()
			}
		}
		walk(".", 0)
		for i := range fsys.Info().Boot {
			if bi, err := fsys.Boot(i); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(bi, 1<<20))
			}
		}
		if s := fsys.CacheStats(); s.Pins != 0 {
			t.Fatalf("pins left: %+v", s)
		}
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
