package partition

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
)

// disk is a medium under construction.
type disk struct {
	b  []byte
	ss int
}

func newDisk(ss int, sectors int64) *disk { return &disk{b: make([]byte, int64(ss)*sectors), ss: ss} }

func (d *disk) sector(lba int64) []byte { return d.b[lba*int64(d.ss) : (lba+1)*int64(d.ss)] }

// mbr writes an MBR or EBR at lba.
func (d *disk) mbr(lba int64, entries ...mbrEntry) {
	m := mbrSector{DiskSig: 0x1234, Signature: mbrSignature}
	copy(m.Entries[:], entries)
	m.encode(d.sector(lba))
}

func (d *disk) read(t *testing.T) *Table {
	t.Helper()
	tab, err := Read(device.NewStrict(device.NewMemory(d.b, d.ss)), int64(len(d.b)), d.ss)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return tab
}

// mkfsAt formats a FAT file system into the byte range [off, off+size) of
// the disk with mkfs.fat, if it is installed.
func (d *disk) mkfsAt(t *testing.T, off, size int64, args ...string) bool {
	if _, err := exec.LookPath("mkfs.fat"); err != nil {
		return false
	}
	img := filepath.Join(t.TempDir(), "p.img")
	args = append([]string{"-C"}, args...)
	args = append(args, img, strconv.FormatInt(size/1024, 10))
	if out, err := exec.Command("mkfs.fat", args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	// Copy only the non-zero blocks: d.b is fresh zeroed memory, and
	// pages never touched cost nothing (a 300 MiB FAT32 is mostly zeros).
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for pos := int64(0); pos < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		if n > 0 && slices.ContainsFunc(buf[:n], func(c byte) bool { return c != 0 }) {
			copy(d.b[off+pos:], buf[:n])
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return true
}

// mountFAT mounts partition p of the disk and returns its label.
func mountFAT(t *testing.T, d *disk, p Partition) string {
	t.Helper()
	w, err := device.NewWindow(device.NewMemory(d.b, d.ss), p.Start, p.Size)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fat.Open(device.NewStrict(w), fat.Options{})
	if err != nil {
		t.Fatalf("partition %d: %v", p.Index, err)
	}
	return v.Info().Label
}

func TestMBRPrimaries(t *testing.T) {
	for _, ss := range []int{512, 2048} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			d := newDisk(ss, 40<<20/int64(ss))
			// LBAs count the medium's own sectors.
			p1 := mbrEntry{Status: 0x80, Type: 0x0C, LBAStart: uint32(1 << 20 / ss), Sectors: uint32(16 << 20 / ss)}
			p2 := mbrEntry{Type: 0x83, LBAStart: uint32(17 << 20 / ss), Sectors: uint32(8 << 20 / ss)}
			d.mbr(0, p1, mbrEntry{}, p2)
			formatted := d.mkfsAt(t, 1<<20, 16<<20, "-F", "32", "-S", strconv.Itoa(ss), "-s", "1", "-n", "PART1")
			tab := d.read(t)
			if tab.Kind != "mbr" || tab.SectorSize != ss || len(tab.Partitions) != 2 || len(tab.Warnings) != 0 {
				t.Fatalf("table %+v", tab)
			}
			want := []Partition{
				{Index: 1, Start: 1 << 20, Size: 16 << 20, Type: "0x0c", TypeName: "FAT32 LBA", Bootable: true, FAT: true},
				{Index: 3, Start: 17 << 20, Size: 8 << 20, Type: "0x83", TypeName: "Linux"},
			}
			for i, p := range tab.Partitions {
				if p != want[i] {
					t.Errorf("partition %d: %+v, want %+v", i, p, want[i])
				}
			}
			if formatted {
				if l := mountFAT(t, d, tab.Partitions[0]); l != "PART1" {
					t.Errorf("label %q", l)
				}
			}
		})
	}
}

func TestNoTable(t *testing.T) {
	t.Run("blank", func(t *testing.T) {
		if tab := newDisk(512, 100).read(t); tab != nil {
			t.Errorf("blank disk: %+v", tab)
		}
	})
	t.Run("bad status", func(t *testing.T) {
		d := newDisk(512, 1000)
		d.mbr(0, mbrEntry{Status: 0x12, Type: 0x0C, LBAStart: 1, Sectors: 10})
		if tab := d.read(t); tab != nil {
			t.Errorf("%+v", tab)
		}
	})
	t.Run("no used entry", func(t *testing.T) {
		d := newDisk(512, 1000)
		d.mbr(0)
		if tab := d.read(t); tab != nil {
			t.Errorf("%+v", tab)
		}
	})
	t.Run("superfloppies", func(t *testing.T) {
		for _, c := range []struct {
			ss  int
			fat string
		}{{512, "12"}, {512, "16"}, {512, "32"}, {2048, "16"}, {4096, "32"}} {
			size := map[string]int64{"12": 2 << 20, "16": 32 << 20, "32": 300 << 20}[c.fat]
			d := newDisk(c.ss, size/int64(c.ss))
			if !d.mkfsAt(t, 0, size, "-F", c.fat, "-S", strconv.Itoa(c.ss), "-s", "1") {
				t.Skip("mkfs.fat not installed")
			}
			if binary.LittleEndian.Uint16(d.b[510:]) != mbrSignature {
				t.Fatal("mkfs.fat image without 55AA")
			}
			if tab := d.read(t); tab != nil {
				t.Errorf("FAT%s S%d superfloppy read as %+v", c.fat, c.ss, tab)
			}
		}
	})
	t.Run("FAT boot sector with an impossible entry", func(t *testing.T) {
		d := newDisk(512, 1000)
		d.mbr(0, mbrEntry{Type: 0x06, LBAStart: 5000, Sectors: 10})
		copy(d.b, []byte{0xEB, 0x3C, 0x90})
		binary.LittleEndian.PutUint16(d.b[11:], 512)
		d.b[13], d.b[14], d.b[16], d.b[21] = 1, 1, 2, 0xF8
		if tab := d.read(t); tab != nil {
			t.Errorf("%+v", tab)
		}
		// Without the BPB the same entry is a table (of a truncated disk).
		d.b[0] = 0
		tab := d.read(t)
		if tab == nil || len(tab.Partitions) != 1 || len(tab.Warnings) != 1 {
			t.Errorf("%+v", tab)
		}
	})
}

func TestExtendedChain(t *testing.T) {
	d := newDisk(512, 100000)
	ext := mbrEntry{Type: 0x0F, LBAStart: 10000, Sectors: 80000}
	d.mbr(0, mbrEntry{Type: 0x0E, LBAStart: 2048, Sectors: 4000}, ext)
	// Three EBRs: logical partitions at EBR+63, links relative to the
	// extended partition's start.
	ebrs := []int64{10000, 30000, 50000}
	for i, e := range ebrs {
		link := mbrEntry{}
		if i+1 < len(ebrs) {
			link = mbrEntry{Type: 0x05, LBAStart: uint32(ebrs[i+1] - 10000), Sectors: 20000}
		}
		d.mbr(e, mbrEntry{Type: []uint8{0x06, 0x83, 0x0B}[i], LBAStart: 63, Sectors: 1000}, link)
	}
	tab := d.read(t)
	var got []string
	for _, p := range tab.Partitions {
		got = append(got, fmt.Sprintf("%d:%d:%s:%v", p.Index, p.Start/512, p.Type, p.FAT))
	}
	want := "1:2048:0x0e:true 2:10000:0x0f:false 5:10063:0x06:true 6:30063:0x83:false 7:50063:0x0b:true"
	if strings.Join(got, " ") != want || len(tab.Warnings) != 0 {
		t.Errorf("got %s, want %s (warnings %q)", strings.Join(got, " "), want, tab.Warnings)
	}

	t.Run("loop", func(t *testing.T) {
		// The last EBR links back to the first.
		d.mbr(50000, mbrEntry{Type: 0x0B, LBAStart: 63, Sectors: 1000}, mbrEntry{Type: 0x05, LBAStart: 0, Sectors: 20000})
		tab := d.read(t)
		if len(tab.Partitions) != 5 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "loops back to sector 10000") {
			t.Errorf("%d partitions, warnings %q", len(tab.Partitions), tab.Warnings)
		}
	})
	t.Run("self loop and outside", func(t *testing.T) {
		d.mbr(50000, mbrEntry{Type: 0x0B, LBAStart: 63, Sectors: 1000}, mbrEntry{Type: 0x05, LBAStart: 40000, Sectors: 20000})
		if tab := d.read(t); len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "loops") {
			t.Errorf("warnings %q", tab.Warnings)
		}
		d.mbr(50000, mbrEntry{Type: 0x0B, LBAStart: 63, Sectors: 1000}, mbrEntry{Type: 0x05, LBAStart: 90000, Sectors: 20000})
		if tab := d.read(t); len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "outside the extended partition") {
			t.Errorf("warnings %q", tab.Warnings)
		}
	})
	t.Run("bad EBR sector", func(t *testing.T) {
		bad := &badSector{Device: device.NewMemory(d.b, 512), bad: 30000}
		tab, err := Read(bad, int64(len(d.b)), 512)
		if err != nil || len(tab.Partitions) != 3 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "sector 30000: bad sector") {
			t.Errorf("%v %+v", err, tab)
		}
	})
}

type badSector struct {
	device.Device
	bad int64
}

func (b *badSector) ReadAt(p []byte, off int64) (int, error) {
	ss := int64(b.SectorSize())
	if off/ss <= b.bad && b.bad < (off+int64(len(p))+ss-1)/ss {
		return 0, &device.SectorError{Op: "read", Sector: b.bad, Err: device.ErrBadSector}
	}
	return b.Device.ReadAt(p, off)
}

func TestReadErrors(t *testing.T) {
	d := newDisk(512, 100)
	_, err := Read(&badSector{Device: device.NewMemory(d.b, 512), bad: 0}, int64(len(d.b)), 512)
	if !errors.Is(err, device.ErrBadSector) || !strings.Contains(err.Error(), "sector 0: bad sector") {
		t.Errorf("error %v", err)
	}
	if _, err := Read(bytes.NewReader(d.b), 100, 512); err == nil {
		t.Error("a medium shorter than one sector")
	}
	if _, err := Read(bytes.NewReader(d.b), int64(len(d.b)), 300); err == nil {
		t.Error("sector size 300 accepted")
	}
}

// gptDisk writes a protective MBR, and primary and backup GPTs holding
// the entries (placed at their index).
func gptDisk(ss int, sectors int64, entries map[int]gptEntry) *disk {
	d := newDisk(ss, sectors)
	d.mbr(0, mbrEntry{Type: typeGPTProtective, LBAStart: 1, Sectors: uint32(min(sectors-1, 0xFFFFFFFF))})
	const count, esize = 128, 128
	arr := make([]byte, count*esize)
	for i, e := range entries {
		e.encode(arr[i*esize:])
	}
	arrSecs := int64(count * esize / ss)
	last := sectors - 1
	h := gptHeader{
		Revision: 0x00010000, HeaderSize: 92, MyLBA: 1, AlternateLBA: uint64(last),
		FirstUsableLBA: uint64(2 + arrSecs), LastUsableLBA: uint64(last - 1 - arrSecs),
		PartitionEntryLBA: 2, NumberOfPartitionEntries: count, SizeOfPartitionEntry: esize,
		PartitionEntryArrayCRC32: crc32.ChecksumIEEE(arr),
	}
	copy(h.Signature[:], gptSignature)
	copy(d.b[2*int64(ss):], arr)
	h.encode(d.sector(1))
	copy(d.b[(last-arrSecs)*int64(ss):], arr)
	h.MyLBA, h.AlternateLBA, h.PartitionEntryLBA = uint64(last), 1, uint64(last-arrSecs)
	h.encode(d.sector(last))
	return d
}

func gptName(s string) (n [36]uint16) {
	copy(n[:], utf16.Encode([]rune(s)))
	return n
}

func mustGUID(t *testing.T, s string) [16]byte {
	g, err := parseGUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGPT(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			sectors := int64(64<<20) / int64(ss)
			mb := int64(1<<20) / int64(ss)
			entries := map[int]gptEntry{
				1: {TypeGUID: mustGUID(t, guidESP), UniqueGUID: [16]byte{1}, StartingLBA: uint64(mb), EndingLBA: uint64(33*mb - 1), Name: gptName("EFI System"), Attributes: gptAttrLegacyB},
				3: {TypeGUID: mustGUID(t, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"), UniqueGUID: [16]byte{2}, StartingLBA: uint64(33 * mb), EndingLBA: uint64(40*mb - 1), Name: gptName("Lïnux ☃")},
			}
			d := gptDisk(ss, sectors, entries)
			formatted := d.mkfsAt(t, 1<<20, 32<<20, "-F", "32", "-S", strconv.Itoa(ss), "-s", "1", "-n", "ESP")
			check := func(tab *Table, warnings int) {
				t.Helper()
				if tab == nil || tab.Kind != "gpt" || len(tab.Partitions) != 2 || len(tab.Warnings) != warnings {
					t.Fatalf("table %+v", tab)
				}
				p, q := tab.Partitions[0], tab.Partitions[1]
				if p.Index != 2 || p.Start != 1<<20 || p.Size != 32<<20 || p.Type != guidESP || p.TypeName != "EFI system partition" || p.Name != "EFI System" || !p.Bootable || !p.FAT {
					t.Errorf("ESP %+v", p)
				}
				if q.Index != 4 || q.Start != 33<<20 || q.Size != 7<<20 || q.TypeName != "Linux" || q.Name != "Lïnux ☃" || q.FAT || q.Bootable {
					t.Errorf("Linux %+v", q)
				}
			}
			tab := d.read(t)
			check(tab, 0)
			if formatted {
				if l := mountFAT(t, d, tab.Partitions[0]); l != "ESP" {
					t.Errorf("label %q", l)
				}
			}

			// A damaged primary header: the backup serves.
			saved := bytes.Clone(d.b)
			d.sector(1)[40] ^= 1
			tab = d.read(t)
			check(tab, 1)
			if !strings.Contains(tab.Warnings[0], "GPT header at sector 1: CRC32") {
				t.Errorf("warning %q", tab.Warnings[0])
			}
			// A damaged primary entry array: the backup serves.
			copy(d.b, saved)
			d.sector(2)[200] ^= 1
			check(d.read(t), 1)
			// Both damaged: an error naming both.
			d.sector(sectors - 1)[40] ^= 1
			if _, err := Read(bytes.NewReader(d.b), int64(len(d.b)), ss); err == nil || !strings.Contains(err.Error(), "backup GPT") {
				t.Errorf("both damaged: %v", err)
			}
			copy(d.b, saved)
			// Absurd counts are refused before anything is allocated.
			h := decodeGPTHeader(d.sector(1))
			h.NumberOfPartitionEntries = 1 << 30
			h.encode(d.sector(1))
			if tab := d.read(t); len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "entries of 128 bytes") {
				t.Errorf("%+v", tab)
			}
		})
	}
}

func TestGUIDString(t *testing.T) {
	g := mustGUID(t, guidBasicData)
	// The on-disk bytes of the basic-data GUID.
	want, _ := hex.DecodeString("A2A0D0EBE5B9334487C068B6B72699C7")
	if !bytes.Equal(g[:], want) || guidString(g) != guidBasicData {
		t.Errorf("%X / %s", g, guidString(g))
	}
}

func TestCorpus(t *testing.T) {
	t.Run("embedded-sdmmc-rs", func(t *testing.T) {
		p := corpusDir + "/embedded-sdmmc-rs/disk.img.gz"
		gz, err := os.ReadFile(p)
		if err != nil {
			t.Skip("corpus not available")
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		// The table needs only the first sector.
		head := make([]byte, 512)
		if _, err := io.ReadFull(zr, head); err != nil {
			t.Fatal(err)
		}
		tab, err := Read(bytes.NewReader(head), 512<<20, 512)
		if err != nil {
			t.Fatal(err)
		}
		want := []Partition{
			{Index: 1, Start: 2048 * 512, Size: 262144 * 512, Type: "0x0e", TypeName: "FAT16 LBA", FAT: true},
			{Index: 2, Start: 264192 * 512, Size: 784384 * 512, Type: "0x0c", TypeName: "FAT32 LBA", FAT: true},
		}
		if tab == nil || len(tab.Partitions) != 2 || tab.Partitions[0] != want[0] || tab.Partitions[1] != want[1] {
			t.Errorf("table %+v", tab)
		}
	})
	t.Run("dosfstools referenceFAT32mbr", func(t *testing.T) {
		head := xxdHead(t, corpusDir+"/dosfstools/referenceFAT32mbr.xxd", 512)
		tab, err := Read(bytes.NewReader(head), 1024000*1024, 512)
		if err != nil {
			t.Fatal(err)
		}
		// mkfs.fat --mbr puts a whole-disk entry into the boot sector.
		if tab == nil || len(tab.Partitions) != 1 || tab.Partitions[0].Start != 0 || tab.Partitions[0].Type != "0x0c" || !tab.Partitions[0].Bootable {
			t.Errorf("table %+v", tab)
		}
		// Its sibling without --mbr is a superfloppy.
		head = xxdHead(t, corpusDir+"/dosfstools/referenceFAT32.xxd", 512)
		if tab, err := Read(bytes.NewReader(head), 1024000*1024, 512); tab != nil || err != nil {
			t.Errorf("referenceFAT32: %+v %v", tab, err)
		}
	})
}

// xxdHead decodes the first n bytes of an xxd dump (lines of 16 bytes;
// "*" repeats the previous line).
func xxdHead(t *testing.T, path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Skip("corpus not available")
	}
	defer f.Close()
	out := make([]byte, n)
	var prev []byte
	var prevOff int64 = -16
	repeat := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "*" {
			repeat = true
			continue
		}
		off, err := strconv.ParseInt(line[:8], 16, 64)
		if err != nil {
			t.Fatalf("%s: %q", path, line)
		}
		if repeat {
			for o := prevOff + 16; o < off && o < int64(n); o += 16 {
				copy(out[o:], prev)
			}
			repeat = false
		}
		hexPart, _, _ := strings.Cut(line[10:], "  ")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		if off < int64(n) {
			copy(out[off:], b)
		}
		prev, prevOff = b, off
	}
	return out
}

func FuzzRead(f *testing.F) {
	// Seeds: an MBR with an extended chain, a GPT, a FAT boot sector.
	d := newDisk(512, 64)
	d.mbr(0, mbrEntry{Type: 0x0C, LBAStart: 1, Sectors: 10}, mbrEntry{Type: 0x05, LBAStart: 20, Sectors: 40})
	d.mbr(20, mbrEntry{Type: 0x06, LBAStart: 1, Sectors: 5}, mbrEntry{Type: 0x05, LBAStart: 10, Sectors: 10})
	d.mbr(30, mbrEntry{Type: 0x06, LBAStart: 1, Sectors: 5}, mbrEntry{Type: 0x05, LBAStart: 0, Sectors: 10})
	f.Add(d.b, 512)
	g := gptDisk(512, 80, map[int]gptEntry{0: {TypeGUID: [16]byte{1}, StartingLBA: 40, EndingLBA: 50}})
	f.Add(g.b, 512)
	f.Add(g.b, 4096)
	f.Fuzz(func(t *testing.T, b []byte, ss int) {
		if ss != 512 && ss != 4096 {
			ss = 512
		}
		if len(b) > 1<<20 {
			return
		}
		tab, err := Read(bytes.NewReader(b), int64(len(b)), ss)
		if err != nil || tab == nil {
			return
		}
		for _, p := range tab.Partitions {
			if p.Size < 0 || p.Start < 0 || p.Index < 1 {
				t.Errorf("partition %+v", p)
			}
		}
	})
}

// corpusDir is the shared corpus of other projects' images; shared/ lies
// beside the checkout. Tests that need it skip when it is absent.
const corpusDir = "../../shared/corpus"
