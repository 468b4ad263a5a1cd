package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"

	"github.com/mediafs/mediafs/device"
)

// mount opens a built volume through a strict device of its own sector
// size.
func (tv *testVol) mount(t testing.TB, opts Options) *FS {
	t.Helper()
	return mustOpen(t, device.NewStrict(device.NewMemory(tv.img, tv.g.sectorSize)), opts)
}

func TestBuiltVolumes(t *testing.T) {
	for _, ft := range []int{fat12, fat16, fat32} {
		for _, ss := range []int{512, 1024, 2048, 4096} {
			t.Run(fmt.Sprintf("FAT%d-S%d", ft, ss), func(t *testing.T) {
				clusters := map[int]int{fat12: 300, fat16: 5000, fat32: 70000}[ft]
				tv := newTestVol(t, ft, ss, 1, clusters)
				data := randBytes(7, 3*ss+17)
				tv.addFile(tv.root(), "three sectors and a bit.bin", data)
				d := tv.mkdir(tv.root(), "Sub Dir")
				tv.addFile(d, "NESTED.TXT", []byte("hello"))
				tv.addFile(d, "😀 emoji ünïcödé.txt", []byte("surrogates"))
				v := tv.mount(t, Options{})
				inf := v.Info()
				if inf.Type != fmt.Sprintf("fat%d", ft) || inf.Label != "TESTVOL" || inf.BootLabel != "TESTVOL" || len(inf.Warnings) != 0 {
					t.Errorf("info %+v", inf)
				}
				wantFree := int64(clusters) - int64(tv.next-2)
				if inf.Free != wantFree*int64(ss) {
					t.Errorf("free %d, want %d clusters", inf.Free, wantFree)
				}
				got, err := fs.ReadFile(v, "three sectors and a bit.bin")
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("read: %v", err)
				}
				fi, err := v.Stat("sub dir/😀 EMOJI ÜNÏCÖDÉ.TXT")
				if err != nil {
					t.Fatal(err)
				}
				if fi.Name() != "😀 emoji ünïcödé.txt" || fi.Size() != 10 {
					t.Errorf("surrogate-pair name: %q %d", fi.Name(), fi.Size())
				}
				sys := fi.Sys().(*Sys)
				if !fi.ModTime().Equal(time.Date(2024, 2, 29, 13, 37, 42, 0, time.UTC)) || !sys.Created.Equal(testTime) {
					t.Errorf("times: mtime %v created %v", fi.ModTime(), sys.Created)
				}
				if err := fstest.TestFS(v, "three sectors and a bit.bin", "Sub Dir/NESTED.TXT"); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestClusterCountThresholds is T-FAT-9: the type by cluster count as
// fatgen103 says, with a warning where readers disagree.
func TestClusterCountThresholds(t *testing.T) {
	cases := []struct {
		shape, clusters int
		want            string
		warn            string
	}{
		{fat12, 4084, "fat12", ""},
		{fat16, 4085, "fat16", "Windows' fastfat reads FAT12"},
		{fat16, 4086, "fat16", "Windows' fastfat reads FAT12"},
		{fat16, 4087, "fat16", ""},
		{fat16, 65524, "fat16", ""},
		{fat32, 65525, "fat32", ""},
		{fat32, 65524, "fat32", "FAT32 volume with only 65524 clusters"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.clusters, c.want), func(t *testing.T) {
			tv := newTestVol(t, c.shape, 512, 1, c.clusters)
			v := tv.mount(t, Options{})
			inf := v.Info()
			if inf.Type != c.want || inf.Clusters != int64(c.clusters) {
				t.Errorf("%s with %d clusters, want %s with %d", inf.Type, inf.Clusters, c.want, c.clusters)
			}
			if c.warn == "" && len(inf.Warnings) != 0 || c.warn != "" && !hasWarning(inf, c.warn) {
				t.Errorf("warnings %q, want %q", inf.Warnings, c.warn)
			}
		})
	}
}

func TestBootSectorTolerance(t *testing.T) {
	t.Run("signature only at 510", func(t *testing.T) {
		tv := newTestVol(t, fat16, 2048, 1, 5000)
		if tv.img[2046] != 0 || tv.img[510] != 0x55 {
			t.Fatal("builder layout changed")
		}
		if inf := tv.mount(t, Options{}).Info(); len(inf.Warnings) != 0 {
			t.Errorf("warnings %q", inf.Warnings)
		}
		tv.img[510], tv.img[511] = 0, 0
		tv.img[2046], tv.img[2047] = 0x55, 0xAA
		if inf := tv.mount(t, Options{}).Info(); !hasWarning(inf, "signature is 0x0000") {
			t.Errorf("signature at 2046 instead of 510 not noticed: %q", inf.Warnings)
		}
	})
	t.Run("old BPB", func(t *testing.T) {
		tv := newTestVol(t, fat12, 512, 1, 300)
		tv.img[38] = 0 // no extended boot signature
		v := tv.mount(t, Options{})
		if inf := v.Info(); inf.Serial != 0 || inf.BootLabel != "" || inf.Label != "TESTVOL" || !hasWarning(inf, "no extended boot signature") {
			t.Errorf("info %+v", inf)
		}
	})
	t.Run("jump", func(t *testing.T) {
		tv := newTestVol(t, fat12, 512, 1, 300)
		tv.img[0] = 0
		if _, ok := Probe(tv.img); !ok {
			t.Error("a missing jump with an extended BPB should still probe")
		}
		tv.img[38] = 0
		if _, ok := Probe(tv.img); ok {
			t.Error("no jump and no extended BPB should not probe")
		}
	})
	t.Run("probe rejects", func(t *testing.T) {
		for _, patch := range []struct {
			name string
			fn   func(b []byte)
		}{
			{"exFAT", func(b []byte) { copy(b[3:], "EXFAT   ") }},
			{"NTFS", func(b []byte) { copy(b[3:], "NTFS    ") }},
			{"sector 256", func(b []byte) { binary.LittleEndian.PutUint16(b[11:], 256) }},
			{"sector 8192", func(b []byte) { binary.LittleEndian.PutUint16(b[11:], 8192) }},
			{"spc 3", func(b []byte) { b[13] = 3 }},
			{"no reserved", func(b []byte) { b[14], b[15] = 0, 0 }},
			{"no FATs", func(b []byte) { b[16] = 0 }},
			{"media", func(b []byte) { b[21] = 0x12 }},
			{"no root entries", func(b []byte) { b[17], b[18] = 0, 0 }},
		} {
			tv := newTestVol(t, fat16, 512, 1, 5000)
			if n, ok := Probe(tv.img); !ok || n != 512 {
				t.Fatal("the unpatched boot sector does not probe")
			}
			patch.fn(tv.img)
			if _, ok := Probe(tv.img); ok {
				t.Errorf("%s: probes as FAT", patch.name)
			}
			if _, err := Open(device.NewMemory(tv.img, 512), Options{}); err == nil {
				t.Errorf("%s: mounts", patch.name)
			}
		}
	})
	t.Run("backup boot sector", func(t *testing.T) {
		for _, ss := range []int{512, 4096} {
			tv := newTestVol(t, fat32, ss, 1, 70000)
			tv.addFile(tv.root(), "A.TXT", []byte("backup"))
			clear(tv.img[:ss])
			v := tv.mount(t, Options{})
			if got, err := fs.ReadFile(v, "A.TXT"); err != nil || string(got) != "backup" || !hasWarning(v.Info(), "backup boot sector") {
				t.Errorf("S%d: %q %v %q", ss, got, err, v.Info().Warnings)
			}
			// And when sector 0 cannot be read at all.
			bad := &badSectors{Device: device.NewMemory(tv.img, ss), bad: map[int64]bool{0: true}}
			if _, err := Open(bad, Options{}); err != nil {
				t.Errorf("S%d: unreadable sector 0: %v", ss, err)
			}
		}
	})
	t.Run("sector size vs device", func(t *testing.T) {
		tv := newTestVol(t, fat16, 2048, 1, 5000)
		tv.addFile(tv.root(), "BIG.BIN", randBytes(3, 5000))
		// BPB larger than the device's sectors: allowed, as Linux does.
		v := mustOpen(t, device.NewStrict(device.NewMemory(tv.img, 512)), Options{})
		if got, err := fs.ReadFile(v, "BIG.BIN"); err != nil || !bytes.Equal(got, randBytes(3, 5000)) {
			t.Errorf("2048-byte BPB on 512-byte device: %v", err)
		}
		// Smaller: refused.
		small := newTestVol(t, fat16, 512, 4, 5000)
		if _, err := Open(device.NewMemory(small.img, 2048), Options{}); err == nil || !strings.Contains(err.Error(), "too small") {
			t.Errorf("512-byte BPB on a 2048-byte device: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		tv := newTestVol(t, fat16, 512, 1, 5000)
		tv.addFile(tv.root(), "EARLY.TXT", []byte("early"))
		tv.next = 4000
		tv.addFile(tv.root(), "LATE.TXT", []byte("late"))
		cut := tv.g.clusterOffset(3000)
		v := mustOpen(t, device.NewStrict(device.NewMemory(tv.img[:cut], 512)), Options{})
		if !hasWarning(v.Info(), "reads beyond the end will fail") {
			t.Errorf("info %+v", v.Info())
		}
		if got, err := fs.ReadFile(v, "EARLY.TXT"); err != nil || string(got) != "early" {
			t.Errorf("early: %q %v", got, err)
		}
		_, err := fs.ReadFile(v, "LATE.TXT")
		var se *device.SectorError
		if !errors.As(err, &se) || !errors.Is(err, device.ErrOutOfRange) || !strings.HasPrefix(err.Error(), "read /LATE.TXT: sector ") {
			t.Errorf("late: %v", err)
		}
	})
}

// badSectors fails reads that touch the listed sectors.
type badSectors struct {
	device.Device
	bad map[int64]bool
}

func (b *badSectors) ReadAt(p []byte, off int64) (int, error) {
	ss := int64(b.SectorSize())
	for s := off / ss; s < (off+int64(len(p))+ss-1)/ss; s++ {
		if b.bad[s] {
			return 0, &device.SectorError{Op: "read", Sector: s, Err: device.ErrBadSector}
		}
	}
	return b.Device.ReadAt(p, off)
}

func TestStateBits(t *testing.T) {
	for _, ft := range []int{fat16, fat32} {
		boot := 0x25
		clnShut, hrdErr := uint32(fat16ClnShut), uint32(fat16HrdErr)
		if ft == fat32 {
			boot, clnShut, hrdErr = 0x41, fat32ClnShut, fat32HrdErr
		}
		all := uint32(0x0FFFFFFF)
		if ft == fat16 {
			all = 0xFFFF
		}
		for _, c := range []struct {
			name           string
			bootByte       byte
			fat1           uint32
			dirty, hardErr bool
		}{
			{"clean", 0, all, false, false},
			{"boot dirty", 1, all, true, false},
			{"ClnShut clear", 0, all &^ clnShut, true, false},
			{"HrdErr clear", 0, all &^ hrdErr, false, true},
		} {
			tv := newTestVol(t, ft, 512, 1, map[int]int{fat16: 5000, fat32: 70000}[ft])
			tv.img[boot] = c.bootByte
			tv.setFAT(1, c.fat1)
			inf := tv.mount(t, Options{}).Info()
			if inf.Dirty != c.dirty || inf.HardError != c.hardErr {
				t.Errorf("FAT%d %s: dirty %v hard error %v", ft, c.name, inf.Dirty, inf.HardError)
			}
		}
	}
}

func TestFATCopies(t *testing.T) {
	t.Run("differ", func(t *testing.T) {
		tv := newTestVol(t, fat16, 512, 1, 5000)
		tv.addFile(tv.root(), "A.TXT", []byte("a"))
		off := tv.g.fatEntryOffset(1, 100)
		tv.img[off] = 0x42
		inf := tv.mount(t, Options{}).Info()
		if !inf.FATsDiffer || inf.ActiveFAT != 0 || !hasWarning(inf, "FAT copies differ") {
			t.Errorf("info %+v", inf)
		}
	})
	t.Run("FAT32 active FAT 1 without mirroring", func(t *testing.T) {
		tv := newTestVol(t, fat32, 512, 1, 70000)
		tv.addFile(tv.root(), "A.TXT", bytes.Repeat([]byte("x"), 2000))
		// Ruin FAT 0's chain; FAT 1 stays right.
		binary.LittleEndian.PutUint32(tv.img[tv.g.fatEntryOffset(0, 3):], 0)
		binary.LittleEndian.PutUint16(tv.img[40:], extFlagNoMirror|1)
		v := tv.mount(t, Options{})
		if got, err := fs.ReadFile(v, "A.TXT"); err != nil || len(got) != 2000 {
			t.Errorf("read through FAT 1: %v", err)
		}
		if inf := v.Info(); inf.ActiveFAT != 1 || !inf.FATsDiffer {
			t.Errorf("info %+v", inf)
		}
	})
}

// TestCorruptChains is T-FAT-8: each damaged chain fails with a corruption
// error naming the file and the cluster, promptly.
func TestCorruptChains(t *testing.T) {
	for _, ft := range []int{fat12, fat16, fat32} {
		clusters := map[int]int{fat12: 300, fat16: 5000, fat32: 70000}[ft]
		for _, c := range []struct {
			name  string
			patch func(tv *testVol, cs []uint32)
			msg   string
		}{
			{"free mid-chain", func(tv *testVol, cs []uint32) { tv.setFAT(cs[1], 0) }, "cluster %[2]d in the cluster chain is marked free"},
			{"cycle", func(tv *testVol, cs []uint32) { tv.setFAT(cs[2], cs[0]) }, "cluster chain loops at cluster %[1]d"},
			{"self loop", func(tv *testVol, cs []uint32) { tv.setFAT(cs[0], cs[0]) }, "cluster chain loops at cluster %[1]d"},
			{"bad", func(tv *testVol, cs []uint32) { tv.setFAT(cs[1], tv.g.badMark()) }, "cluster %[2]d in the cluster chain is marked bad"},
			{"bad last", func(tv *testVol, cs []uint32) { tv.setFAT(cs[3], tv.g.badMark()) }, "cluster %[4]d in the cluster chain is marked bad"},
			{"out of range", func(tv *testVol, cs []uint32) { tv.setFAT(cs[1], uint32(clusters)+5) }, "cluster %[2]d in the cluster chain points to invalid cluster"},
			{"reserved 1", func(tv *testVol, cs []uint32) { tv.setFAT(cs[1], 1) }, "cluster %[2]d in the cluster chain points to invalid cluster 1"},
			{"too short", func(tv *testVol, cs []uint32) { tv.setFAT(cs[1], 0x0FFFFFFF) }, "cluster chain ends at cluster %[2]d after 1024 bytes"},
			{"bad first", func(tv *testVol, cs []uint32) {}, ""},
		} {
			t.Run(fmt.Sprintf("FAT%d %s", ft, c.name), func(t *testing.T) {
				tv := newTestVol(t, ft, 512, 1, clusters)
				d := tv.mkdir(tv.root(), "DIR")
				first, off := tv.addFile(d, "FILE.BIN", randBytes(1, 2000))
				cs := []uint32{first, first + 1, first + 2, first + 3}
				c.patch(tv, cs)
				want := fmt.Sprintf(c.msg, cs[0], cs[1], cs[2], cs[3])
				if c.name == "bad first" {
					binary.LittleEndian.PutUint16(tv.img[off+26:], 1)
					want = "first cluster 1 is outside the volume"
				}
				v := tv.mount(t, Options{})
				_, err := fs.ReadFile(v, "DIR/FILE.BIN")
				var ce *CorruptError
				if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "read /DIR/FILE.BIN: ") || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want ErrCorrupt with %q", err, want)
				}
				// The first cluster still reads.
				f, _ := v.Open("DIR/FILE.BIN")
				if c.name != "bad first" && c.name != "self loop" {
					buf := make([]byte, 100)
					if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil || !bytes.Equal(buf, randBytes(1, 100)) {
						t.Errorf("first cluster: %v", err)
					}
				}
				f.Close()
			})
		}
	}
}

// TestDirectoryCycles: subdirectories that lead back to an ancestor are
// reported, never followed.
func TestDirectoryCycles(t *testing.T) {
	for _, ft := range []int{fat16, fat32} {
		clusters := map[int]int{fat16: 5000, fat32: 70000}[ft]
		for _, c := range []struct {
			name   string
			target func(tv *testVol, a, b uint32) uint32
		}{
			{"to parent", func(tv *testVol, a, b uint32) uint32 { return b }},
			{"to grandparent", func(tv *testVol, a, b uint32) uint32 { return a }},
			{"to root", func(tv *testVol, a, b uint32) uint32 { return tv.root() }},
			{"cluster 0", func(tv *testVol, a, b uint32) uint32 { return 0 }},
		} {
			t.Run(fmt.Sprintf("FAT%d %s", ft, c.name), func(t *testing.T) {
				tv := newTestVol(t, ft, 512, 1, clusters)
				a := tv.mkdir(tv.root(), "A")
				b := tv.mkdir(a, "B")
				tv.addFile(b, "F.TXT", []byte("f"))
				tv.add(b, "LOOP", attrDirectory, c.target(tv, a, b), 0)
				v := tv.mount(t, Options{})
				if _, err := v.Stat("A/B/LOOP"); err != nil {
					t.Errorf("stat of the looping entry itself: %v", err)
				}
				_, err := v.ReadDir("A/B/LOOP")
				if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "readdir /A/B/LOOP: directory refers back") {
					t.Errorf("readdir: %v", err)
				}
				if _, err := v.Open("A/B/LOOP/F.TXT"); !errors.Is(err, ErrCorrupt) {
					t.Errorf("open through the loop: %v", err)
				}
				errs := readAll(v)
				if len(errs) != 1 || errs["A/B/LOOP"] == nil {
					t.Errorf("walk errors: %v", errs)
				}
			})
		}
	}
}

func TestDirectoryEntries(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 1, 5000)
	root := tv.root()
	put := func(name string, attr, ntres uint8, mutate func(raw []byte)) {
		var raw [32]byte
		e := dirEntry{Attr: attr, NTRes: ntres, WrtDate: 0x5821, WrtTime: 0x6000}
		copy(e.Name[:], name)
		e.encode(raw[:])
		if mutate != nil {
			mutate(raw[:])
		}
		tv.putRaw(root, raw[:])
	}
	lfn := func(long, sfn string, ordFix func(i int, l *lfnEntry)) {
		var s [11]byte
		copy(s[:], sfn)
		slots, _ := lfnSlots(long, shortNameChecksum(s))
		for i := range slots {
			if ordFix != nil {
				ordFix(i, &slots[i])
			}
			var raw [32]byte
			slots[i].encode(raw[:])
			tv.putRaw(root, raw[:])
		}
	}
	put("LOWER   TXT", attrArchive, ntLowerBase|ntLowerExt, nil)
	put("MIXED   TXT", attrArchive, ntLowerBase, nil)
	put("\x05SC     TXT", attrArchive, 0, nil) // 0x05 stands for 0xE5 (σ in CP437)
	put("T:ST_E~1PFI", attrArchive, 0, nil)    // invalid SFN characters Windows creates
	put("DELETED TXT", attrArchive, 0, func(raw []byte) { raw[0] = nameFree })
	put("..         ", attrDirectory, 0, nil) // a stray dot entry
	lfn("Good long name.txt", "GOODLO~1TXT", nil)
	put("GOODLO~1TXT", attrArchive, 0, nil)
	lfn("Bad checksum.txt", "OTHER   TXT", nil)
	put("BADCHE~1TXT", attrArchive, 0, nil)
	lfn("Orphan slots that continue nowhere", "ORPHAN  TXT", nil)
	put("DELLFN  TXT", attrArchive, 0, func(raw []byte) { raw[0] = nameFree })
	put("AFTERORPTXT", attrArchive, 0, nil)
	lfn("A name with a missing slot in the middle of it.txt", "MISSIN~1TXT", func(i int, l *lfnEntry) {
		if i == 1 {
			l.Ord = 0x1F // breaks the sequence
		}
	})
	put("MISSIN~1TXT", attrArchive, 0, nil)
	put("NOTALABELXX", attrVolumeID|attrDirectory, 0, nil) // neither file nor label
	put("SECONDLABEL", attrVolumeID, 0, nil)               // a second label entry
	put("SUBDIR     ", attrDirectory, 0, nil)
	put("ZZZ     TXT", attrArchive|attrHidden|attrReadOnly|attrSystem, 0, nil)
	put("AFTEREND TX", attrArchive, 0, func(raw []byte) {})
	tv.img[tv.entryOffset(root, tv.slots[root]-1)] = 0 // end marker hides it

	v := tv.mount(t, Options{})
	names := rootInOrder(t, v)
	want := []string{"lower.txt", "mixed.TXT", "σSC.TXT", "T:ST_E~1.PFI", "Good long name.txt", "BADCHE~1.TXT", "AFTERORP.TXT", "MISSIN~1.TXT", "SUBDIR", "ZZZ.TXT"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("entries\n got %q\nwant %q", names, want)
	}
	if inf := v.Info(); inf.Label != "TESTVOL" {
		t.Errorf("label %q: the first label entry wins", inf.Label)
	}
	fi, _ := v.Stat("zzz.txt")
	if s := fi.Sys().(*Sys); s.AttrString != "RHSA" || fi.Mode() != 0o444 {
		t.Errorf("attrs %q mode %v", s.AttrString, fi.Mode())
	}
	if !fi.ModTime().Equal(time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("mtime %v", fi.ModTime())
	}
	// Lookups match the short name of a long-named entry too.
	if fi, err := v.Stat("goodlo~1.txt"); err != nil || fi.Name() != "Good long name.txt" {
		t.Errorf("short-name lookup: %v %v", fi, err)
	}
	// ReadDir(n) contract.
	f2, _ := v.Open(".")
	rd := f2.(fs.ReadDirFile)
	var got int
	for {
		batch, err := rd.ReadDir(3)
		got += len(batch)
		if err == io.EOF {
			if len(batch) != 0 {
				t.Error("entries returned with io.EOF")
			}
			break
		}
		if err != nil || len(batch) == 0 || len(batch) > 3 {
			t.Fatalf("ReadDir(3): %d entries, %v", len(batch), err)
		}
	}
	if got != len(want) {
		t.Errorf("ReadDir(3) batches gave %d entries", got)
	}
	if rest, err := rd.ReadDir(-1); len(rest) != 0 || err != nil {
		t.Errorf("ReadDir(-1) at the end: %v %v", rest, err)
	}
	f2.Close()
	if _, err := rd.ReadDir(1); err == nil {
		t.Error("ReadDir after Close")
	}
}

func TestCodePages(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 1, 5000)
	var e dirEntry
	copy(e.Name[:], "\x8f\xa0\xa2\xa2\xa5   TXT") // "Павве" in CP866, "ÅáóóÑ" in CP437
	e.Attr = attrArchive
	tv.putEntry(tv.root(), e)
	for _, cp := range []int{437, 850, 852, 858, 860, 863, 865, 866, 1252} {
		v := tv.mount(t, Options{CodePage: cp})
		ents, err := v.ReadDir(".")
		if err != nil || len(ents) != 1 {
			t.Fatalf("cp %d: %v %v", cp, ents, err)
		}
		dec, _ := codePage(cp)
		wantName := ""
		for _, b := range e.Name[:5] {
			wantName += string(dec.DecodeByte(b))
		}
		if cp == 866 && wantName != "Павве" || cp == 437 && wantName != "ÅáóóÑ" {
			t.Errorf("cp %d decodes as %q", cp, wantName)
		}
		if ents[0].Name() != wantName+".TXT" {
			t.Errorf("cp %d: %q, want %q", cp, ents[0].Name(), wantName+".TXT")
		}
	}
	if got := decodeOEM(mustCP(t, 866), []byte{0x8f, 0xa0, 0xaf, 0xaa, 0xa0}); got != "Папка" {
		t.Errorf("CP866: %q", got)
	}
	if _, err := Open(device.NewMemory(tv.img, 512), Options{CodePage: 999}); err == nil {
		t.Error("unknown code page accepted")
	}
}

func mustCP(t *testing.T, n int) *charmap.Charmap {
	cp, err := codePage(n)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestTimes(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	for _, c := range []struct {
		date, tm uint16
		tenths   uint8
		want     time.Time
	}{
		{0x5821, 0x6000, 0, time.Date(2024, 1, 1, 12, 0, 0, 0, loc)},
		{0x5821, 0x6001, 199, time.Date(2024, 1, 1, 12, 0, 3, 990*int(time.Millisecond), loc)},
		{0, 0x6000, 0, time.Time{}},         // no date
		{0x8800, 0, 0, time.Time{}},         // month 0 (fat16_noheads)
		{0x5821 | 13<<5, 0, 0, time.Time{}}, // month 13
		{0x5840 | 30, 0, 0, time.Time{}},    // 30 February
		{0x5821, 24 << 11, 0, time.Time{}},  // hour 24
		{0x5821, 0x6000, 200, time.Time{}},  // tenths 200
		{0x5821, 60 << 5, 0, time.Time{}},   // minute 60
		{0x5821, 30, 0, time.Time{}},        // second 60
		{0xFFFF, 0xBF7D, 199, time.Time{}},  // day 31 of month 15
		{0xFF9F, 0xBF7D, 199, time.Date(2107, 12, 31, 23, 59, 59, 990*int(time.Millisecond), loc)},
	} {
		if got := decodeTime(c.date, c.tm, c.tenths, loc); !got.Equal(c.want) || got.IsZero() != c.want.IsZero() {
			t.Errorf("decodeTime(%#x, %#x, %d) = %v, want %v", c.date, c.tm, c.tenths, got, c.want)
		}
	}
	for _, tt := range []time.Time{testTime, time.Date(1999, 12, 31, 23, 59, 58, 10*int(time.Millisecond), loc)} {
		d, tm, tn := encodeTime(tt, loc)
		if got := decodeTime(d, tm, tn, loc); !got.Equal(tt) {
			t.Errorf("round trip %v → %v", tt, got)
		}
	}
}

func TestLFNSlotsRoundTrip(t *testing.T) {
	for _, name := range []string{"a", "exactly13char", "exactly 26 characters long", "😀 surrogates 😀", strings.Repeat("x", 255)} {
		var sfn [11]byte
		copy(sfn[:], "SHORT   TXT")
		slots, err := lfnSlots(name, shortNameChecksum(sfn))
		if err != nil {
			t.Fatal(err)
		}
		p := dirParser{cp: mustCP(t, 437), fatType: fat16}
		for _, s := range slots {
			var raw [32]byte
			s.encode(raw[:])
			if n, _ := p.feed(raw[:], 0); n != nil {
				t.Fatal("a slot produced a node")
			}
		}
		var raw [32]byte
		e := dirEntry{Name: sfn, Attr: attrArchive}
		e.encode(raw[:])
		n, _ := p.feed(raw[:], 0)
		if n == nil || n.name != name {
			t.Errorf("%q came back as %v", name, n)
		}
	}
	if _, err := lfnSlots(strings.Repeat("x", 256), 0); err == nil {
		t.Error("256-character name accepted")
	}
	if len(utf16.Encode([]rune("😀"))) != 2 {
		t.Fatal("test assumption")
	}
}

func TestShortNameChecksum(t *testing.T) {
	// A value worked by hand with the fatgen103 rotate-and-add.
	var n [11]byte
	copy(n[:], "A          ")
	var sum uint8
	for _, c := range n {
		sum = (sum>>1 | sum<<7) + c
	}
	if got := shortNameChecksum(n); got != sum {
		t.Errorf("checksum %#x, want %#x", got, sum)
	}
	copy(n[:], "README  TXT")
	if shortNameChecksum(n) == sum {
		t.Error("different names, same checksum")
	}
}

// TestFAT12Straddle reads a chain whose entries cross a sector boundary of
// the FAT (cluster 341's entry occupies bytes 511 and 512).
func TestFAT12Straddle(t *testing.T) {
	for _, ss := range []int{512, 1024} {
		tv := newTestVol(t, fat12, ss, 1, 1500)
		straddler := uint32(ss*2/3) - 2 // 1.5-byte entries: one near here crosses the sector end
		for c := straddler - 2; c < straddler+3; c++ {
			if off := tv.g.fatEntryOffset(0, c) % int64(ss); off == int64(ss-1) {
				straddler = c
			}
		}
		tv.next = straddler - 3
		data := randBytes(9, 8*ss)
		tv.addFile(tv.root(), "CROSS.BIN", data)
		v := tv.mount(t, Options{})
		if off := v.g.fatEntryOffset(0, straddler) % int64(ss); off != int64(ss-1) {
			t.Fatalf("S%d: cluster %d's entry is at %d in its sector", ss, straddler, off)
		}
		if got, err := fs.ReadFile(v, "CROSS.BIN"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("S%d: %v", ss, err)
		}
	}
}

func TestClusterCountCappedByFAT(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 1, 5000)
	// Claim more data sectors than the FAT can describe.
	binary.LittleEndian.PutUint16(tv.img[19:], uint16(len(tv.img)/512+3000))
	tv.img = append(tv.img, make([]byte, 3000*512)...)
	v := tv.mount(t, Options{})
	inf := v.Info()
	limit := int64(tv.g.fatSectors)*512/2 - 2
	if inf.Clusters != limit || !hasWarning(inf, "the FAT describes only") {
		t.Errorf("clusters %d (FAT holds %d), warnings %q", inf.Clusters, limit, inf.Warnings)
	}
}

// TestBadSectors: a media error names the file and the sector, leaves no
// pins, and the rest of the volume stays readable.
func TestBadSectors(t *testing.T) {
	tv := newTestVol(t, fat16, 2048, 1, 5000)
	d := tv.mkdir(tv.root(), "DIR")
	first, _ := tv.addFile(d, "FILE.BIN", randBytes(4, 10000))
	tv.addFile(tv.root(), "OK.TXT", []byte("fine"))
	badData := tv.g.clusterSector(first + 2)
	badFAT := tv.g.reserved // the first FAT sector
	dev := &badSectors{Device: device.NewMemory(tv.img, 2048), bad: map[int64]bool{badData: true}}
	v := mustOpen(t, device.NewStrict(dev), Options{})
	_, err := fs.ReadFile(v, "DIR/FILE.BIN")
	if !errors.Is(err, device.ErrBadSector) || err.Error() != fmt.Sprintf("read /DIR/FILE.BIN: sector %d: bad sector", badData) {
		t.Errorf("error %v", err)
	}
	if got, err := fs.ReadFile(v, "OK.TXT"); err != nil || string(got) != "fine" {
		t.Errorf("other file: %v", err)
	}
	// The first FAT sector, in every copy: chain walks fail, and a later
	// read tries again. (With one copy good, chains are read from it.)
	dev.bad = map[int64]bool{}
	for i := range tv.g.numFATs {
		dev.bad[badFAT+int64(i)*tv.g.fatSectors] = true
	}
	v2 := mustOpen(t, device.NewStrict(dev), Options{})
	if !hasWarning(v2.Info(), fmt.Sprintf("sector %d: bad sector", badFAT)) {
		t.Errorf("warnings %q", v2.Info().Warnings)
	}
	if _, err := fs.ReadFile(v2, "DIR/FILE.BIN"); !errors.Is(err, device.ErrBadSector) {
		t.Errorf("error %v", err)
	}
	dev.bad = nil
	if got, err := fs.ReadFile(v2, "DIR/FILE.BIN"); err != nil || !bytes.Equal(got, randBytes(4, 10000)) {
		t.Errorf("after the sector recovered: %v", err)
	}
}

// TestConcurrentReaders shares one FS and one File among goroutines (run
// with -race).
func TestConcurrentReaders(t *testing.T) {
	tv := newTestVol(t, fat32, 512, 1, 70000)
	var want [][]byte
	for i := range 8 {
		want = append(want, randBytes(uint64(i), 20000+i*1000))
		tv.addFile(tv.root(), fmt.Sprintf("F%d.BIN", i), want[i])
	}
	v := tv.mount(t, Options{CacheBlocks: 4})
	shared, err := v.Open("F0.BIN")
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			if i%2 == 0 {
				got, err := fs.ReadFile(v, fmt.Sprintf("F%d.BIN", i/2))
				if err == nil && !bytes.Equal(got, want[i/2]) {
					err = fmt.Errorf("F%d differs", i/2)
				}
				errs <- err
				return
			}
			buf := make([]byte, 777)
			for off := int64(i); off < 20000; off += 777 {
				n, err := shared.(io.ReaderAt).ReadAt(buf, off)
				if err != nil && err != io.EOF || !bytes.Equal(buf[:n], want[0][off:off+int64(n)]) {
					errs <- fmt.Errorf("shared ReadAt(%d): %v", off, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestChainWalkReadsFATInRuns: following a long cluster chain reads the
// FAT in runs of up to 64 KiB, not a sector per request. A 4 MiB file in
// 512-byte clusters has a chain over 64 FAT sectors.
func TestChainWalkReadsFATInRuns(t *testing.T) {
	_, d := newImage(t, 64<<20, 512, FormatOptions{Type: "fat32", ClusterSize: 512})
	v := mountRW(t, d)
	want := randBytes(7, 4<<20)
	writeAll(t, v, "big.bin", want)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	fd := device.NewFaulty(d)
	r := mustOpen(t, fd, Options{})
	f, err := r.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, _, _ := fd.Counts()
	got := make([]byte, len(want))
	if _, err := f.(*File).ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("content differs (%v)", err)
	}
	// The FAT's 64 sectors in one run (two if the first one straddles a
	// 64 KiB window) and the data, contiguous, in one request: before,
	// the chain was walked one cluster per request.
	if reads, _, _ := fd.Counts(); reads-before > 3 {
		t.Errorf("%d device reads for a 4 MiB file over 64 FAT sectors", reads-before)
	}
}

// TestDamagedChainEndServesTheRest: a file whose last FAT entry is damaged
// (marked free) fails from its last cluster on; the clusters before it read
// (found in review: with a contiguous chain known whole, the read failed
// before any byte).
func TestDamagedChainEndServesTheRest(t *testing.T) {
	_, d := newImage(t, 24<<20, 512, FormatOptions{Type: "fat16", ClusterSize: 512})
	v := mountRW(t, d)
	want := randBytes(9, 64<<10)
	writeAll(t, v, "f.bin", want)
	f, _ := v.Open("f.bin")
	rs, err := f.(*File).MediumRanges(0, int64(len(want)))
	f.Close()
	if err != nil || len(rs) != 1 {
		t.Fatalf("not one run: %v %v", rs, err)
	}
	lastCl := uint32((rs[0].End()-1-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
	v.mu.Lock()
	if err := v.setFAT(lastCl, 0); err != nil {
		t.Fatal(err)
	}
	if err := v.commitFAT(); err != nil {
		t.Fatal(err)
	}
	v.mu.Unlock()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, d, Options{})
	g, err := r.Open("f.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := make([]byte, len(want))
	n, err := g.(*File).ReadAt(got, 0)
	if !errors.Is(err, ErrCorrupt) || n != len(want)-512 || !bytes.Equal(got[:n], want[:n]) {
		t.Errorf("whole file: %d bytes, %v; want %d bytes and the corruption", n, err, len(want)-512)
	}
	if n, err := g.(*File).ReadAt(got[:1000], 0); n != 1000 || err != nil {
		t.Errorf("the first 1000 bytes: %d, %v", n, err)
	}
}
