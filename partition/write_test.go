package partition

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const mib = 1 << 20

// WriteAt lets Write write into a disk under construction.
func (d *disk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d beyond the %d-byte disk", len(p), off, len(d.b))
	}
	return copy(d.b[off:], p), nil
}

// sparse records writes by offset, for disks too large to hold.
type sparse map[int64][]byte

func (s sparse) WriteAt(p []byte, off int64) (int, error) {
	s[off] = bytes.Clone(p)
	return len(p), nil
}

// noWrites fails the test on any write.
type noWrites struct{ t *testing.T }

func (w noWrites) WriteAt(p []byte, off int64) (int, error) {
	w.t.Errorf("wrote %d bytes at %d", len(p), off)
	return len(p), nil
}

// writeDisk writes l onto a new disk of l.DiskSize bytes.
func writeDisk(t *testing.T, l Layout) (*disk, []Partition) {
	t.Helper()
	d := newDisk(l.SectorSize, l.DiskSize/int64(l.SectorSize))
	parts, err := Write(d, l)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return d, parts
}

func TestWriteRoundTrip(t *testing.T) {
	const size = 64 * mib
	// want holds each partition's start and size in bytes; a size of -1
	// is the rest of the usable sectors.
	cases := []struct {
		name  string
		parts func(ss int64) []NewPartition
		want  func(ss int64) [][2]int64
	}{
		{"one, defaults", func(int64) []NewPartition { return []NewPartition{{}} },
			func(int64) [][2]int64 { return [][2]int64{{mib, -1}} }},
		{"two", func(int64) []NewPartition {
			return []NewPartition{{Size: 8 * mib, FAT: "fat16", Bootable: true}, {FAT: "fat32"}}
		}, func(int64) [][2]int64 { return [][2]int64{{mib, 8 * mib}, {9 * mib, -1}} }},
		{"four, one placed off the MiB grid", func(ss int64) []NewPartition {
			return []NewPartition{{Size: 3 * mib, ESP: true}, {Start: 20*mib + ss, Size: 5 * mib, FAT: "fat12"}, {Size: mib}, {}}
		}, func(ss int64) [][2]int64 {
			return [][2]int64{{mib, 3 * mib}, {20*mib + ss, 5 * mib}, {26 * mib, mib}, {27 * mib, -1}}
		}},
		{"out of order", func(int64) []NewPartition {
			return []NewPartition{{Start: 40 * mib, Size: 8 * mib}, {Start: mib, Size: 8 * mib}, {Start: 9 * mib, Size: 31 * mib}}
		}, func(int64) [][2]int64 { return [][2]int64{{40 * mib, 8 * mib}, {mib, 8 * mib}, {9 * mib, 31 * mib}} }},
	}
	for _, kind := range []string{"mbr", "gpt"} {
		for _, ss := range []int{512, 1024, 2048, 4096} {
			for _, c := range cases {
				t.Run(fmt.Sprintf("%s/%d/%s", kind, ss, c.name), func(t *testing.T) {
					ps := c.parts(int64(ss))
					end := int64(size) // the end of the usable sectors
					if kind == "gpt" {
						end -= (1 + gptArraySectors(ss)) * int64(ss)
						for i := range ps {
							ps[i].Name = fmt.Sprintf("part %d ☃", i+1)
						}
					}
					d, parts := writeDisk(t, Layout{Kind: kind, SectorSize: ss, DiskSize: size, Partitions: ps})
					tab := d.read(t)
					if tab == nil || tab.Kind != kind || tab.SectorSize != ss || len(tab.Warnings) != 0 {
						t.Fatalf("table %+v", tab)
					}
					want := c.want(int64(ss))
					if len(parts) != len(want) || len(tab.Partitions) != len(want) {
						t.Fatalf("Write returned %+v, Read %+v", parts, tab.Partitions)
					}
					for i, p := range parts {
						if p != tab.Partitions[i] {
							t.Errorf("Write returned %+v, Read %+v", p, tab.Partitions[i])
						}
						w := want[i]
						if w[1] < 0 {
							w[1] = end - w[0]
						}
						if p.Index != i+1 || p.Start != w[0] || p.Size != w[1] || p.Bootable != ps[i].Bootable {
							t.Errorf("partition %d: %+v, want start %d size %d", i+1, p, w[0], w[1])
						}
						if p.FAT != (ps[i].Type == "") || p.Name != ps[i].Name {
							t.Errorf("partition %d: %+v", i+1, p)
						}
					}
				})
			}
		}
	}
}

func TestCHS(t *testing.T) {
	for _, c := range []struct {
		lba  int64
		want [3]byte
	}{
		{0, [3]byte{0, 1, 0}},
		{1, [3]byte{0, 2, 0}},
		{62, [3]byte{0, 63, 0}},
		{63, [3]byte{1, 1, 0}},
		{2048, [3]byte{32, 33, 0}},
		{255 * 63, [3]byte{0, 1, 1}},
		{256 * 255 * 63, [3]byte{0, 0x41, 0}},
		{1024*255*63 - 1, [3]byte{0xFE, 0xFF, 0xFF}},
		{1024 * 255 * 63, [3]byte{0xFE, 0xFF, 0xFF}},
		{1 << 40, [3]byte{0xFE, 0xFF, 0xFF}},
	} {
		if got := chs(c.lba); got != c.want {
			t.Errorf("chs(%d) = % X, want % X", c.lba, got, c.want)
		}
	}
}

func TestMBRTypeFor(t *testing.T) {
	const beyond = 1024 * 255 * 63 // the first sector CHS cannot reach
	for _, c := range []struct {
		p    NewPartition
		e    extent
		ss   int
		want uint8
	}{
		{NewPartition{FAT: "fat12"}, extent{2048, 8192}, 512, 0x01},
		{NewPartition{FAT: "fat16"}, extent{2048, 65535}, 512, 0x04},
		{NewPartition{FAT: "fat16"}, extent{2048, 65536}, 512, 0x06},
		{NewPartition{FAT: "FAT16"}, extent{beyond - 65536, 65536}, 512, 0x06},
		{NewPartition{FAT: "fat16"}, extent{beyond - 65536, 65537}, 512, 0x0E},
		{NewPartition{FAT: "fat16"}, extent{512, 32768}, 2048, 0x04}, // 64 MiB, but 16-bit sector count
		{NewPartition{FAT: "fat32"}, extent{2048, 1 << 20}, 512, 0x0B},
		{NewPartition{FAT: "fat32"}, extent{2048, beyond}, 512, 0x0C},
		{NewPartition{}, extent{2048, 8 * mib / 512}, 512, 0x01},
		{NewPartition{}, extent{2048, 100 * mib / 512}, 512, 0x06},
		{NewPartition{}, extent{2048, 512 * mib / 512}, 512, 0x0B},
		{NewPartition{ESP: true}, extent{2048, 8192}, 512, 0xEF},
		{NewPartition{ESP: true, FAT: "fat32"}, extent{2048, 8192}, 512, 0xEF},
		{NewPartition{Type: "0x83"}, extent{2048, 8192}, 512, 0x83},
		{NewPartition{Type: "0X0C"}, extent{2048, 8192}, 512, 0x0C},
		{NewPartition{Type: "c"}, extent{2048, 8192}, 512, 0x0C},
		{NewPartition{Type: "ef"}, extent{2048, 8192}, 512, 0xEF},
	} {
		got, err := mbrTypeFor(c.p, c.e, c.ss)
		if err != nil || got != c.want {
			t.Errorf("%+v at %+v (%d): %#02x %v, want %#02x", c.p, c.e, c.ss, got, err, c.want)
		}
	}
}

func TestWriteMBRSector(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			d := newDisk(ss, 64*mib/int64(ss))
			d.b = bytes.Repeat([]byte{0xA5}, len(d.b)) // stale data: boot code, a GPT
			mb := uint32(mib / ss)
			_, err := Write(d, Layout{Kind: "mbr", SectorSize: ss, DiskSize: int64(len(d.b)), Signature: 0x12345678,
				Partitions: []NewPartition{{Size: 8 * mib, FAT: "fat16", Bootable: true}, {Size: 16 * mib, Type: "83"}}})
			if err != nil {
				t.Fatal(err)
			}
			s := d.sector(0)
			want := make([]byte, ss)
			binary.LittleEndian.PutUint32(want[440:], 0x12345678)
			e1 := mbrEntry{Status: 0x80, CHSStart: chs(int64(mb)), Type: 0x04, CHSEnd: chs(int64(9*mb - 1)), LBAStart: mb, Sectors: 8 * mb}
			e2 := mbrEntry{CHSStart: chs(int64(9 * mb)), Type: 0x83, CHSEnd: chs(int64(25*mb - 1)), LBAStart: 9 * mb, Sectors: 16 * mb}
			e1.encode(want[446:])
			e2.encode(want[462:])
			want[510], want[511] = 0x55, 0xAA
			if !bytes.Equal(s, want) {
				t.Errorf("sector 0:\n% X\nwant\n% X", s[:512], want[:512])
			}
			if ss == 512 {
				// As fdisk writes them: 0x80 20 21 00 04 25 24 01 ...
				if got := fmt.Sprintf("% X", s[446:462]); got != "80 20 21 00 04 25 24 01 00 08 00 00 00 40 00 00" {
					t.Errorf("entry 1: %s", got)
				}
			}
			zero := make([]byte, ss)
			if !bytes.Equal(d.sector(1), zero) || !bytes.Equal(d.sector(int64(len(d.b)/ss-1)), zero) {
				t.Error("the sectors of a stale GPT were left")
			}
			if d.b[len(d.b)-ss-1] != 0xA5 || d.b[2*ss] != 0xA5 {
				t.Error("wrote beyond the table's sectors")
			}
		})
	}
	t.Run("random signature", func(t *testing.T) {
		d, _ := writeDisk(t, Layout{Kind: "mbr", SectorSize: 512, DiskSize: 4 * mib, Partitions: []NewPartition{{}}})
		if binary.LittleEndian.Uint32(d.b[440:]) == 0 {
			t.Error("zero disk signature")
		}
	})
	t.Run("partition over sector 1 and the last", func(t *testing.T) {
		d := newDisk(512, 8192)
		d.b[512], d.b[len(d.b)-1] = 1, 1
		if _, err := Write(d, Layout{Kind: "mbr", SectorSize: 512, DiskSize: int64(len(d.b)), Partitions: []NewPartition{{Start: 512}}}); err != nil {
			t.Fatal(err)
		}
		if d.b[512] != 1 || d.b[len(d.b)-1] != 1 {
			t.Error("wrote into the partition")
		}
		if tab := d.read(t); len(tab.Partitions) != 1 || tab.Partitions[0].Start != 512 || tab.Partitions[0].Size != 8191*512 {
			t.Errorf("%+v", tab)
		}
	})
}

func isV4(g [16]byte) bool {
	s := guidString(g)
	return s[14] == '4' && strings.ContainsRune("89AB", rune(s[19]))
}

func TestWriteGPTStructure(t *testing.T) {
	for _, ss := range []int{512, 1024, 2048, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			n := int64(32 * mib / ss)
			arr := int64(128 * 128 / ss)
			disk := mustGUID(t, "01234567-89AB-CDEF-0123-456789ABCDEF")
			d, parts := writeDisk(t, Layout{Kind: "gpt", SectorSize: ss, DiskSize: n * int64(ss), DiskGUID: disk,
				Partitions: []NewPartition{{Size: 4 * mib, ESP: true, Name: "EFI system", Bootable: true}, {Size: 4 * mib}, {Size: 4 * mib, Type: "0fc63daf-8483-4772-8e79-3d69d8477de4", Name: strings.Repeat("n", 36)}}})
			want := []Partition{
				{Index: 1, Start: mib, Size: 4 * mib, Type: guidESP, TypeName: "EFI system partition", Name: "EFI system", Bootable: true, FAT: true},
				{Index: 2, Start: 5 * mib, Size: 4 * mib, Type: guidBasicData, TypeName: "Microsoft basic data", FAT: true},
				{Index: 3, Start: 9 * mib, Size: 4 * mib, Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", TypeName: "Linux", Name: strings.Repeat("n", 36)},
			}
			for i := range want {
				if parts[i] != want[i] {
					t.Errorf("partition %d: %+v, want %+v", i+1, parts[i], want[i])
				}
			}
			// Protective MBR.
			m, ok := decodeMBR(d.sector(0))
			pe := mbrEntry{CHSStart: [3]byte{0, 2, 0}, Type: 0xEE, CHSEnd: chs(n - 1), LBAStart: 1, Sectors: uint32(n - 1)}
			if !ok || m.DiskSig != 0 || m.Entries != [4]mbrEntry{pe} || !bytes.Equal(d.sector(0)[:440], make([]byte, 440)) {
				t.Errorf("protective MBR %+v", m)
			}
			// Both headers.
			p, b := decodeGPTHeader(d.sector(1)), decodeGPTHeader(d.sector(n-1))
			if p.MyLBA != 1 || p.AlternateLBA != uint64(n-1) || p.PartitionEntryLBA != 2 ||
				b.MyLBA != uint64(n-1) || b.AlternateLBA != 1 || b.PartitionEntryLBA != uint64(n-1-arr) {
				t.Errorf("headers %+v\n%+v", p, b)
			}
			for _, h := range []gptHeader{p, b} {
				if string(h.Signature[:]) != "EFI PART" || h.Revision != 0x00010000 || h.HeaderSize != 92 ||
					h.FirstUsableLBA != uint64(2+arr) || h.LastUsableLBA != uint64(n-2-arr) || h.DiskGUID != disk ||
					h.NumberOfPartitionEntries != 128 || h.SizeOfPartitionEntry != 128 {
					t.Errorf("header %+v", h)
				}
			}
			if !bytes.Equal(d.b[2*ss:(2+arr)*int64(ss)], d.b[(n-1-arr)*int64(ss):(n-1)*int64(ss)]) {
				t.Error("the backup entry array differs from the primary")
			}
			seen := map[[16]byte]bool{disk: true}
			for i := range 3 {
				g := decodeGPTEntry(d.b[2*ss+128*i:]).UniqueGUID
				if seen[g] || !isV4(g) {
					t.Errorf("partition GUID %s", guidString(g))
				}
				seen[g] = true
			}

			// A damaged primary header or array: Read falls back on the
			// backup and reports the same partitions.
			saved := bytes.Clone(d.b)
			for _, damage := range []int64{int64(ss) + 40, 2*int64(ss) + 300} {
				copy(d.b, saved)
				d.b[damage] ^= 0x10
				tab := d.read(t)
				if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "using the backup GPT") || len(tab.Partitions) != 3 {
					t.Fatalf("damage at %d: %+v", damage, tab)
				}
				for i := range want {
					if tab.Partitions[i] != want[i] {
						t.Errorf("backup: partition %d: %+v", i+1, tab.Partitions[i])
					}
				}
			}
		})
	}
	t.Run("random disk GUID", func(t *testing.T) {
		d, _ := writeDisk(t, Layout{Kind: "gpt", SectorSize: 512, DiskSize: 4 * mib})
		if g := decodeGPTHeader(d.sector(1)).DiskGUID; !isV4(g) {
			t.Errorf("disk GUID %s", guidString(g))
		}
		if tab := d.read(t); tab == nil || tab.Kind != "gpt" || len(tab.Partitions) != 0 {
			t.Errorf("empty GPT read as %+v", tab)
		}
	})
}

// TestWriteLargeDisk writes tables for a 3 TiB disk, beyond an MBR's reach.
func TestWriteLargeDisk(t *testing.T) {
	const size = 3 << 40
	n := int64(size / 512)
	s := sparse{}
	parts, err := Write(s, Layout{Kind: "gpt", SectorSize: 512, DiskSize: size, Partitions: []NewPartition{{Size: 512 * mib, ESP: true}, {}}})
	if err != nil {
		t.Fatal(err)
	}
	if parts[1].Start != 513*mib || parts[1].Size != size-513*mib-33*512 {
		t.Errorf("%+v", parts)
	}
	m, _ := decodeMBR(s[0])
	if m.Entries[0].Sectors != 0xFFFFFFFF || m.Entries[0].CHSEnd != [3]byte{0xFE, 0xFF, 0xFF} {
		t.Errorf("protective entry %+v", m.Entries[0])
	}
	if h := decodeGPTHeader(s[(n-1)*512]); h.MyLBA != uint64(n-1) || h.LastUsableLBA != uint64(n-34) || h.PartitionEntryLBA != uint64(n-33) {
		t.Errorf("backup header %+v", h)
	}
	if len(s[(n-33)*512]) != 128*128 {
		t.Error("no backup array")
	}

	// An MBR reaches 2^32 sectors; a partition within them is fine.
	if _, err := Write(sparse{}, Layout{Kind: "mbr", SectorSize: 512, DiskSize: size, Partitions: []NewPartition{{Size: 1 << 30}}}); err != nil {
		t.Error(err)
	}
	if _, err := Write(noWrites{t}, Layout{Kind: "mbr", SectorSize: 512, DiskSize: size, Partitions: []NewPartition{{}}}); err == nil || !strings.Contains(err.Error(), "use GPT") {
		t.Errorf("rest of a 3 TiB disk in an MBR: %v", err)
	}
	// With 4096-byte sectors it reaches 16 TiB.
	if _, err := Write(sparse{}, Layout{Kind: "mbr", SectorSize: 4096, DiskSize: size, Partitions: []NewPartition{{}}}); err != nil {
		t.Error(err)
	}
}

func TestWriteErrors(t *testing.T) {
	one := func(p ...NewPartition) []NewPartition { return p }
	for _, c := range []struct {
		l    Layout
		want string
	}{
		{Layout{Kind: "apm", SectorSize: 512, DiskSize: 64 * mib}, `table kind "apm"`},
		{Layout{Kind: "mbr", SectorSize: 520, DiskSize: 64 * mib}, "sector size 520"},
		{Layout{Kind: "mbr", SectorSize: 2048, DiskSize: 64*mib + 512}, "not a positive whole number of 2048-byte sectors"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 0}, "not a positive whole number"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 66 * 512}, "GPT: a disk of 66 sectors is too small"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: make([]NewPartition, 5)}, "an MBR holds 4 partitions, not 5"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: make([]NewPartition, 129)}, "a GPT holds 128 partitions, not 129"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: 8 * mib}, NewPartition{Start: 5 * mib, Size: 8 * mib})},
			"partitions 1 (sectors 2048..18431) and 2 (sectors 10240..26623) overlap"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Start: 20 * mib, Size: 8 * mib}, NewPartition{Start: 10 * mib})},
			"partitions 2 (sectors 20480..131038) and 1 (sectors 40960..57343) overlap"},
		{Layout{Kind: "mbr", SectorSize: 2048, DiskSize: 64 * mib, Partitions: one(NewPartition{Start: mib + 512})}, "partition 1: start 1049088 is not a whole number of 2048-byte sectors"},
		{Layout{Kind: "mbr", SectorSize: 4096, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: mib + 2048})}, "partition 1: size 1050624 is not a whole number of 4096-byte sectors"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: -512})}, "size -512"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: 64 * mib})}, "partition 1: sectors 2048..133119 extend beyond the last usable sector 131071"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Start: 63 * mib, Size: mib})}, "beyond the last usable sector 131038"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Start: 64 * mib})}, "start at sector 131072 lies outside the usable sectors 34..131038"},
		{Layout{Kind: "gpt", SectorSize: 4096, DiskSize: 64 * mib, Partitions: one(NewPartition{Start: 4096})}, "start at sector 1 lies outside the usable sectors 6..16378"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: mib, Partitions: one(NewPartition{})}, "start at sector 2048 lies outside the usable sectors 1..2047"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: mib}, NewPartition{Size: 63 * mib})}, "partition 2: sectors 4096..133119 extend beyond"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0xzz"})}, `partition 1: MBR type "0xzz": want a hex byte`},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0x100"})}, `MBR type "0x100"`},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0x"})}, `MBR type "0x"`},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "+c"})}, `MBR type "+c"`},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0"})}, "unused entry"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0xEE"})}, "GPT protective type"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0x0f"})}, "0x0f is an extended partition"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: guidESP})}, "want a hex byte"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{FAT: "exfat"})}, `FAT "exfat": want fat12, fat16 or fat32`},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0c", ESP: true})}, "both Type"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Name: "boot"})}, "MBR partitions have no names"},
		{Layout{Kind: "mbr", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Size: mib, Bootable: true}, NewPartition{Bootable: true})}, "partition 2: only one MBR partition can be bootable"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "0x0c"})}, `partition 1: GPT type: bad GUID "0x0c"`},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "EBD0A0A2B9E5-4433-87C0-68B6B72699C7----"})}, "bad GUID"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: "00000000-0000-0000-0000-000000000000"})}, "zero GUID"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Type: guidESP, ESP: true})}, "both Type"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{FAT: "fat64"})}, `FAT "fat64"`},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Name: strings.Repeat("x", 37)})}, "longer than 36 UTF-16 units"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Name: strings.Repeat("😀", 19)})}, "longer than 36 UTF-16 units"},
		{Layout{Kind: "gpt", SectorSize: 512, DiskSize: 64 * mib, Partitions: one(NewPartition{Name: "a\x00b"})}, "NUL"},
	} {
		_, err := Write(noWrites{t}, c.l)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "partition: ") {
			t.Errorf("%+v:\n got %v\nwant …%s…", c.l, err, c.want)
		}
	}
}

// TestWriteThirdParty has util-linux (partx, fdisk, sfdisk), gdisk and
// dosfstools read what Write wrote; each tool's subtest skips when the
// tool is not installed.
func TestWriteThirdParty(t *testing.T) {
	for _, kind := range []string{"mbr", "gpt"} {
		for _, ss := range []int{512, 1024, 2048, 4096} {
			t.Run(fmt.Sprintf("%s/%d", kind, ss), func(t *testing.T) {
				ps := []NewPartition{{Size: 40 * mib, FAT: "fat32", Bootable: true}, {Size: 8 * mib, FAT: "fat16"}, {}}
				if kind == "gpt" {
					ps[0] = NewPartition{Size: 40 * mib, ESP: true, Name: "EFI system partition"}
					ps[1].Name = "data"
					ps[2] = NewPartition{Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", Name: "root"}
				} else {
					ps[2].Type = "0x83"
				}
				d, parts := writeDisk(t, Layout{Kind: kind, SectorSize: ss, DiskSize: 64 * mib, Partitions: ps})
				p1 := parts[0]
				formatted := d.mkfsAt(t, p1.Start, p1.Size, "-F", "32", "-S", strconv.Itoa(ss), "-s", "1",
					"-h", strconv.FormatInt(p1.Start/int64(ss), 10), "-n", "WRITTEN")
				dir := t.TempDir()
				img := filepath.Join(dir, "disk.img")
				if err := os.WriteFile(img, d.b, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Run("partx", func(t *testing.T) {
					out := tool(t, "partx", "-S", strconv.Itoa(ss), "-b", "-g", "-P", "-o", "NR,START,SECTORS,TYPE,NAME", img)
					// partx counts in 512-byte units whatever the sector size.
					var got []string
					for _, m := range regexp.MustCompile(`NR="(\d+)" START="(\d+)" SECTORS="(\d+)" TYPE="([^"]*)" NAME="([^"]*)"`).FindAllStringSubmatch(out, -1) {
						got = append(got, strings.Join(m[1:], " "))
					}
					var want []string
					for _, p := range parts {
						typ := strings.ToLower(p.Type)
						if kind == "mbr" {
							typ = "0x" + strings.TrimLeft(strings.TrimPrefix(typ, "0x"), "0")
						}
						want = append(want, fmt.Sprintf("%d %d %d %s %s", p.Index, p.Start/512, p.Size/512, typ, p.Name))
					}
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("partx:\n%s\nwant\n%s", out, strings.Join(want, "\n"))
					}
				})
				t.Run("fdisk", func(t *testing.T) {
					cols := map[string]string{"mbr": "Start,Sectors,Id,Boot", "gpt": "Start,Sectors,Type-UUID,Name"}[kind]
					out := tool(t, "fdisk", "-b", strconv.Itoa(ss), "-l", "-o", cols, img)
					for _, bad := range []string{"mismatch", "corrupt", "invalid", "does not start", "overlap", "differ"} {
						if strings.Contains(strings.ToLower(out), bad) {
							t.Errorf("fdisk complains (%q):\n%s", bad, out)
						}
					}
					var got []string
					header := false
					for l := range strings.Lines(out) {
						f := strings.Fields(l)
						switch {
						case header && len(f) > 0:
							got = append(got, strings.Join(f, " "))
						case len(f) > 0 && f[0] == "Start":
							header = true
						}
					}
					var want []string
					for _, p := range parts {
						last := p.Name
						typ := p.Type
						if kind == "mbr" {
							typ = strings.TrimLeft(strings.TrimPrefix(typ, "0x"), "0")
							last = map[bool]string{true: "*"}[p.Bootable]
						}
						want = append(want, strings.TrimSpace(fmt.Sprintf("%d %d %s %s", p.Start/int64(ss), p.Size/int64(ss), typ, last)))
					}
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("fdisk:\n%s\nwant\n%s", out, strings.Join(want, "\n"))
					}
				})
				if ss == 512 {
					t.Run("sfdisk", func(t *testing.T) { checkSfdisk(t, img, kind, parts) })
				}
				if ss == 512 && kind == "gpt" {
					t.Run("sgdisk", func(t *testing.T) {
						if out := tool(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
							t.Errorf("sgdisk -v:\n%s", out)
						}
					})
				}
				t.Run("fsck.fat", func(t *testing.T) {
					if !formatted {
						t.Skip("mkfs.fat not installed")
					}
					part := filepath.Join(dir, "p1.img")
					if err := os.WriteFile(part, d.b[p1.Start:p1.Start+p1.Size], 0o644); err != nil {
						t.Fatal(err)
					}
					tool(t, "fsck.fat", "-n", part)
					if l := mountFAT(t, d, p1); l != "WRITTEN" {
						t.Errorf("label %q", l)
					}
				})
			})
		}
	}
}

// tool runs a reference tool, skipping the test when it is not installed
// and failing it when the tool fails.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkSfdisk compares sfdisk's JSON dump and verification with parts.
func checkSfdisk(t *testing.T, img, kind string, parts []Partition) {
	if out := tool(t, "sfdisk", "--verify", img); !strings.Contains(out, "No errors detected") {
		t.Errorf("sfdisk --verify:\n%s", out)
	}
	out := tool(t, "sfdisk", "--json", img)
	var dump struct {
		PartitionTable struct {
			Label      string
			SectorSize int
			Partitions []struct {
				Start, Size int64
				Type, Name  string
				Bootable    bool
				Attrs       string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pt := dump.PartitionTable
	if pt.Label != map[string]string{"mbr": "dos", "gpt": "gpt"}[kind] || pt.SectorSize != 512 || len(pt.Partitions) != len(parts) {
		t.Fatalf("sfdisk:\n%s", out)
	}
	for i, p := range parts {
		q := pt.Partitions[i]
		typ := p.Type
		if kind == "mbr" {
			typ = strings.TrimLeft(strings.TrimPrefix(typ, "0x"), "0")
		}
		if q.Start*512 != p.Start || q.Size*512 != p.Size || q.Type != typ || q.Name != p.Name ||
			q.Bootable != (kind == "mbr" && p.Bootable) || (q.Attrs == "LegacyBIOSBootable") != (kind == "gpt" && p.Bootable) {
			t.Errorf("sfdisk partition %d: %+v, want %+v", i+1, q, p)
		}
	}
}
