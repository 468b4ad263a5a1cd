package partition

import (
	"encoding/binary"
	"fmt"
)

const (
	mbrEntriesOffset  = 446
	mbrSigOffset      = 510
	mbrSignature      = 0xAA55
	typeGPTProtective = 0xEE
	maxLogical        = 256 // EBRs followed per extended partition
)

// mbrEntry is one 16-byte MBR partition entry (offset 446 + 16*i).
type mbrEntry struct {
	Status   uint8   // 0: 0x80 bootable, 0x00 not
	CHSStart [3]byte // 1
	Type     uint8   // 4
	CHSEnd   [3]byte // 5
	LBAStart uint32  // 8
	Sectors  uint32  // 12
}

func decodeMBREntry(p []byte) mbrEntry {
	e := mbrEntry{Status: p[0], Type: p[4], LBAStart: binary.LittleEndian.Uint32(p[8:]), Sectors: binary.LittleEndian.Uint32(p[12:])}
	copy(e.CHSStart[:], p[1:4])
	copy(e.CHSEnd[:], p[5:8])
	return e
}

func (e *mbrEntry) encode(p []byte) {
	p[0] = e.Status
	copy(p[1:4], e.CHSStart[:])
	p[4] = e.Type
	copy(p[5:8], e.CHSEnd[:])
	binary.LittleEndian.PutUint32(p[8:], e.LBAStart)
	binary.LittleEndian.PutUint32(p[12:], e.Sectors)
}

func (e *mbrEntry) used() bool { return e.Type != 0 && e.Sectors != 0 }

// mbrSector is an MBR or EBR: boot code, disk signature at 440, four
// entries at 446 and the 0x55AA signature at 510.
type mbrSector struct {
	DiskSig   uint32 // 440
	Entries   [4]mbrEntry
	Signature uint16 // 510
}

// decodeMBR decodes a sector and reports whether it can be an MBR: the
// signature is there and every status byte is 0x00 or 0x80 (the test
// Linux applies before it believes a table).
func decodeMBR(s []byte) (*mbrSector, bool) {
	if len(s) < 512 {
		return nil, false
	}
	m := &mbrSector{DiskSig: binary.LittleEndian.Uint32(s[440:]), Signature: binary.LittleEndian.Uint16(s[mbrSigOffset:])}
	for i := range m.Entries {
		m.Entries[i] = decodeMBREntry(s[mbrEntriesOffset+16*i:])
	}
	if m.Signature != mbrSignature {
		return m, false
	}
	for _, e := range m.Entries {
		if e.Status != 0x00 && e.Status != 0x80 {
			return m, false
		}
	}
	return m, true
}

func (m *mbrSector) encode(s []byte) {
	binary.LittleEndian.PutUint32(s[440:], m.DiskSig)
	for i := range m.Entries {
		m.Entries[i].encode(s[mbrEntriesOffset+16*i:])
	}
	binary.LittleEndian.PutUint16(s[mbrSigOffset:], m.Signature)
}

func isExtended(t uint8) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// looksLikeFATBootSector applies the BPB tests of the FAT drivers
// (fatgen103 "Boot Sector and BPB"): a jump instruction, a power-of-two
// sector size of 512..4096 and cluster size, reserved sectors, FATs and a
// valid media byte.
func looksLikeFATBootSector(s []byte) bool {
	bps := int(binary.LittleEndian.Uint16(s[11:]))
	spc := int(s[13])
	pow2 := func(n int) bool { return n > 0 && n&(n-1) == 0 }
	return (s[0] == 0xEB || s[0] == 0xE9) &&
		pow2(bps) && bps >= 512 && bps <= 4096 && pow2(spc) &&
		binary.LittleEndian.Uint16(s[14:]) != 0 && s[16] != 0 &&
		(s[21] == 0xF0 || s[21] >= 0xF8)
}

// readMBR builds the table from sector 0 and the EBR chains.
//
// A FAT boot sector also ends in 0x55AA, and its boot code may leave the
// entry area zero (mkfs.fat) or fill it with text (whose "status" bytes
// then fail decodeMBR). So when sector 0 is a FAT boot sector it counts as
// an MBR only if it has used entries and every one lies within the medium:
// that accepts mkfs.fat --mbr, which puts a whole-disk entry starting at
// sector 0 into the boot sector itself, and rejects superfloppies.
func (rd *reader) readMBR(s0 []byte, m *mbrSector) (*Table, error) {
	var used int
	for _, e := range m.Entries {
		if e.used() {
			used++
		}
	}
	if used == 0 {
		return nil, nil
	}
	n := rd.sectors()
	if looksLikeFATBootSector(s0) {
		for _, e := range m.Entries {
			if e.used() && n > 0 && int64(e.LBAStart)+int64(e.Sectors) > n {
				return nil, nil
			}
		}
	}
	t := &Table{Kind: "mbr", SectorSize: rd.ss}
	for i, e := range m.Entries {
		if !e.used() {
			continue
		}
		t.add(rd, i+1, int64(e.LBAStart), int64(e.Sectors), e)
	}
	next := 5
	for i, e := range m.Entries {
		if e.used() && isExtended(e.Type) {
			next = rd.readEBRChain(t, i+1, e, next)
		}
	}
	return t, nil
}

// add appends a partition of lba/sectors in the medium's sectors.
func (t *Table) add(rd *reader, index int, lba, sectors int64, e mbrEntry) {
	p := mbrPartition(index, lba, sectors, rd.ss, e)
	if n := rd.sectors(); n > 0 && lba+sectors > n {
		t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d (sectors %d..%d) extends beyond the end of the %d-sector medium", index, lba, lba+sectors-1, n))
	}
	t.Partitions = append(t.Partitions, p)
}

// mbrPartition is the partition of entry e, at lba for sectors sectors of
// ss bytes.
func mbrPartition(index int, lba, sectors int64, ss int, e mbrEntry) Partition {
	return Partition{
		Index:    index,
		Start:    lba * int64(ss),
		Size:     sectors * int64(ss),
		Type:     fmt.Sprintf("0x%02x", e.Type),
		TypeName: mbrTypeName(e.Type),
		Bootable: e.Status == 0x80,
		FAT:      mbrFAT(e.Type),
	}
}

// readEBRChain follows the EBRs of the extended partition in slot, adding
// logical partitions numbered from next; it returns the next free number.
// A broken, looping or overlong chain ends the walk with a warning.
func (rd *reader) readEBRChain(t *Table, slot int, ext mbrEntry, next int) int {
	extStart, extEnd := int64(ext.LBAStart), int64(ext.LBAStart)+int64(ext.Sectors)
	seen := map[int64]bool{}
	ebr := extStart
	for step := 0; ; step++ {
		if step >= maxLogical {
			t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d: more than %d logical partitions; the rest are ignored", slot, maxLogical))
			return next
		}
		if seen[ebr] {
			t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d: the EBR chain loops back to sector %d", slot, ebr))
			return next
		}
		seen[ebr] = true
		if ebr < extStart || ebr >= extEnd {
			t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d: EBR at sector %d lies outside the extended partition", slot, ebr))
			return next
		}
		s, err := rd.sector(ebr)
		if err != nil {
			t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d: %v", slot, err))
			return next
		}
		m, ok := decodeMBR(s)
		if !ok {
			t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d: sector %d is not an EBR", slot, ebr))
			return next
		}
		link := int64(-1)
		for _, e := range m.Entries {
			switch {
			case !e.used():
			case isExtended(e.Type):
				if link < 0 {
					link = extStart + int64(e.LBAStart)
				}
			default:
				t.add(rd, next, ebr+int64(e.LBAStart), int64(e.Sectors), e)
				next++
			}
		}
		if link < 0 {
			return next
		}
		ebr = link
	}
}

func mbrFAT(t uint8) bool {
	switch t {
	case 0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF:
		return true
	}
	return false
}

func mbrTypeName(t uint8) string {
	if n, ok := mbrTypeNames[t]; ok {
		return n
	}
	return "Unknown"
}

var mbrTypeNames = map[uint8]string{
	0x01: "FAT12",
	0x04: "FAT16 <32M",
	0x05: "Extended",
	0x06: "FAT16",
	0x07: "HPFS/NTFS/exFAT",
	0x0B: "FAT32",
	0x0C: "FAT32 LBA",
	0x0E: "FAT16 LBA",
	0x0F: "Extended LBA",
	0x11: "Hidden FAT12",
	0x14: "Hidden FAT16 <32M",
	0x16: "Hidden FAT16",
	0x17: "Hidden HPFS/NTFS",
	0x1B: "Hidden FAT32",
	0x1C: "Hidden FAT32 LBA",
	0x1E: "Hidden FAT16 LBA",
	0x27: "Windows recovery",
	0x82: "Linux swap",
	0x83: "Linux",
	0x85: "Linux extended",
	0x8E: "Linux LVM",
	0xA5: "FreeBSD",
	0xA6: "OpenBSD",
	0xA8: "Darwin UFS",
	0xA9: "NetBSD",
	0xAB: "Darwin boot",
	0xAF: "HFS/HFS+",
	0xEE: "GPT protective",
	0xEF: "EFI system partition",
	0xFD: "Linux RAID",
}
