package partition

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Layout describes a partition table for Write.
type Layout struct {
	Kind       string // "mbr" or "gpt"
	SectorSize int    // 512, 1024, 2048 or 4096; every LBA counts in these
	DiskSize   int64  // bytes, a multiple of SectorSize
	Partitions []NewPartition
	// DiskGUID is the GPT disk GUID in its on-disk byte order (the first
	// three fields little-endian); zero means a random version 4 GUID.
	DiskGUID [16]byte
	// Signature is the MBR disk signature (offset 440); zero means a
	// random one. The protective MBR of a GPT disk keeps it zero, as
	// UEFI requires.
	Signature uint32
}

// NewPartition is one partition of a Layout, in the order of the table:
// the first is partition 1.
type NewPartition struct {
	// Start is the partition's first byte, a multiple of the sector size;
	// 0 places it at the first 1 MiB boundary (one sector where 1 MiB is
	// not a whole number of sectors) after the previous partition of the
	// list, or after the table itself for the first.
	Start int64
	// Size is the partition's length in bytes, a multiple of the sector
	// size; 0 takes the rest of the disk (up to the last usable sector).
	Size int64
	// Type is the MBR type ("0x0c", "0c", "c": hex) or the GPT type GUID
	// ("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"); "" chooses one for a FAT
	// file system from FAT and ESP.
	Type string
	// FAT, with Type "", is "fat12", "fat16" or "fat32" and chooses the
	// MBR type byte as fdisk and Windows do: 0x01 for FAT12; for FAT16
	// 0x04 below 65536 sectors (32 MiB of 512-byte sectors), 0x06 when the
	// partition ends within CHS reach (1024 cylinders of 255 heads and 63
	// sectors) and 0x0E beyond; for FAT32 0x0B within CHS reach and 0x0C
	// beyond. "" guesses from the size as mkfs.fat chooses (FAT32 from
	// 512 MiB, FAT16 from 16 MiB, FAT12 below). A GPT FAT partition is
	// Microsoft basic data whatever FAT says.
	FAT string
	// ESP, with Type "", makes an EFI system partition: GPT type
	// C12A7328-F81F-11D2-BA4B-00A0C93EC93B, MBR type 0xEF.
	ESP bool
	// Name is the GPT partition name (at most 36 UTF-16 code units). MBR
	// partitions have none.
	Name string
	// Bootable sets the MBR active flag (on one partition at most), or
	// the GPT "legacy BIOS bootable" attribute (bit 2).
	Bootable bool
}

// The geometry of the tables Write makes.
const (
	gptEntries      = 128 // entries in the array, as every tool writes
	gptEntrySize    = 128
	gptRevision     = 0x00010000
	gptHeaderSize   = gptMinHeader
	mbrMaxSectors   = 0xFFFFFFFF // an MBR entry's 32-bit LBA and count
	chsHeads        = 255
	chsSectors      = 63
	chsCylinders    = 1024
	fat16SmallLimit = 65536 // sectors: the BPB's 16-bit total-sectors field
)

// Write writes the partition table l describes and returns its partitions
// as Read reports them. It writes only the table's own sectors: for MBR
// sector 0 (boot code zeroed, disk signature, four entries with their CHS
// addresses, 0x55AA at byte 510), and sector 1 and the last sector where
// no partition covers them, so that a stale GPT cannot outlive the new
// table; for GPT the protective MBR, the primary header at sector 1 and
// its 128-entry array from sector 2, and the backup array and header at
// the end of the disk. Nothing is written until the whole layout has been
// checked: partitions must be sector-aligned, of positive size, inside the
// usable sectors and apart.
func Write(w io.WriterAt, l Layout) ([]Partition, error) {
	switch l.SectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("partition: unsupported sector size %d", l.SectorSize)
	}
	ss := int64(l.SectorSize)
	if l.DiskSize <= 0 || l.DiskSize%ss != 0 {
		return nil, fmt.Errorf("partition: disk size %d is not a positive whole number of %d-byte sectors", l.DiskSize, ss)
	}
	n := l.DiskSize / ss
	var first, last int64 // usable sectors, inclusive
	switch l.Kind {
	case "mbr":
		if len(l.Partitions) > 4 {
			return nil, fmt.Errorf("partition: an MBR holds 4 partitions, not %d", len(l.Partitions))
		}
		first, last = 1, n-1
	case "gpt":
		if len(l.Partitions) > gptEntries {
			return nil, fmt.Errorf("partition: a GPT holds %d partitions, not %d", gptEntries, len(l.Partitions))
		}
		arr := gptArraySectors(l.SectorSize)
		first, last = 2+arr, n-2-arr
	default:
		return nil, fmt.Errorf("partition: table kind %q: want mbr or gpt", l.Kind)
	}
	if last < first {
		return nil, fmt.Errorf("partition: %s: a disk of %d sectors is too small", strings.ToUpper(l.Kind), n)
	}
	ext, err := place(l.Partitions, ss, first, last)
	if err != nil {
		return nil, err
	}
	if l.Kind == "mbr" {
		return writeMBR(w, l, ext, n)
	}
	return writeGPT(w, l, ext, n)
}

// extent is a placed partition, in sectors.
type extent struct{ lba, sectors int64 }

func (e extent) end() int64 { return e.lba + e.sectors }

// place turns the partitions' byte ranges, defaults resolved, into sectors
// within the usable sectors first..last, and checks that they are apart.
func place(ps []NewPartition, ss, first, last int64) ([]extent, error) {
	align := int64(1 << 20)
	if align%ss != 0 {
		align = ss
	}
	align /= ss
	ext := make([]extent, len(ps))
	next := first
	for i, p := range ps {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("partition: partition %d: %s", i+1, fmt.Sprintf(format, a...))
		}
		switch {
		case p.Start < 0 || p.Start%ss != 0:
			return nil, bad("start %d is not a whole number of %d-byte sectors", p.Start, ss)
		case p.Size < 0 || p.Size%ss != 0:
			return nil, bad("size %d is not a whole number of %d-byte sectors", p.Size, ss)
		}
		e := extent{lba: p.Start / ss, sectors: p.Size / ss}
		if p.Start == 0 {
			e.lba = (next + align - 1) / align * align
		}
		if e.lba < first || e.lba > last {
			return nil, bad("start at sector %d lies outside the usable sectors %d..%d", e.lba, first, last)
		}
		if p.Size == 0 {
			e.sectors = last + 1 - e.lba
		}
		if e.end() > last+1 {
			return nil, bad("sectors %d..%d extend beyond the last usable sector %d", e.lba, e.end()-1, last)
		}
		ext[i] = e
		next = e.end()
	}
	order := make([]int, len(ext))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ext[a].lba, ext[b].lba) })
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		if ext[a].end() > ext[b].lba {
			return nil, fmt.Errorf("partition: partitions %d (sectors %d..%d) and %d (sectors %d..%d) overlap",
				a+1, ext[a].lba, ext[a].end()-1, b+1, ext[b].lba, ext[b].end()-1)
		}
	}
	return ext, nil
}

func gptArraySectors(ss int) int64 { return int64((gptEntries*gptEntrySize + ss - 1) / ss) }

// writeMBR writes an MBR of the partitions ext.
func writeMBR(w io.WriterAt, l Layout, ext []extent, n int64) ([]Partition, error) {
	m := mbrSector{DiskSig: l.Signature, Signature: mbrSignature}
	for m.DiskSig == 0 {
		m.DiskSig = binary.LittleEndian.Uint32(randomBytes(4))
	}
	parts := make([]Partition, len(ext))
	boot := 0
	for i, p := range l.Partitions {
		e := ext[i]
		if e.lba > mbrMaxSectors || e.sectors > mbrMaxSectors {
			return nil, fmt.Errorf("partition: partition %d (sectors %d..%d) is beyond the 2^32-sector reach of an MBR; use GPT", i+1, e.lba, e.end()-1)
		}
		if p.Name != "" {
			return nil, fmt.Errorf("partition: partition %d: MBR partitions have no names (%q)", i+1, p.Name)
		}
		t, err := mbrTypeFor(p, e, l.SectorSize)
		if err != nil {
			return nil, fmt.Errorf("partition: partition %d: %w", i+1, err)
		}
		me := mbrEntry{Type: t, CHSStart: chs(e.lba), CHSEnd: chs(e.end() - 1), LBAStart: uint32(e.lba), Sectors: uint32(e.sectors)}
		if p.Bootable {
			me.Status = 0x80
			if boot++; boot > 1 {
				return nil, fmt.Errorf("partition: partition %d: only one MBR partition can be bootable", i+1)
			}
		}
		m.Entries[i] = me
		parts[i] = mbrPartition(i+1, e.lba, e.sectors, l.SectorSize, me)
	}
	ss := l.SectorSize
	s := make([]byte, ss)
	m.encode(s)
	// Wipe where a stale GPT's headers would be, unless a partition is there.
	zero := make([]byte, ss)
	for _, lba := range []int64{1, n - 1} {
		if lba < n && !slices.ContainsFunc(ext, func(e extent) bool { return e.lba <= lba && lba < e.end() }) {
			if err := writeSectors(w, lba, ss, zero); err != nil {
				return nil, err
			}
		}
	}
	if err := writeSectors(w, 0, ss, s); err != nil {
		return nil, err
	}
	return parts, nil
}

// mbrTypeFor chooses the MBR type byte of p, placed at e.
func mbrTypeFor(p NewPartition, e extent, ss int) (uint8, error) {
	if p.Type != "" {
		if p.ESP {
			return 0, fmt.Errorf("both Type %q and ESP given", p.Type)
		}
		h := strings.TrimPrefix(strings.ToLower(p.Type), "0x")
		v, err := strconv.ParseUint(h, 16, 8)
		switch {
		case err != nil || h == "" || h[0] == '+' || h[0] == '-':
			return 0, fmt.Errorf("MBR type %q: want a hex byte such as 0x0c", p.Type)
		case v == 0:
			return 0, errors.New("MBR type 0x00 marks an unused entry")
		case v == typeGPTProtective:
			return 0, errors.New("MBR type 0xee is the GPT protective type; use a GPT")
		case isExtended(uint8(v)):
			return 0, fmt.Errorf("MBR type 0x%02x is an extended partition, which Write does not make", v)
		}
		return uint8(v), nil
	}
	fat, err := fatKind(p.FAT, e.sectors*int64(ss))
	if err != nil {
		return 0, err
	}
	if p.ESP {
		return 0xEF, nil
	}
	inCHS := e.end() <= chsCylinders*chsHeads*chsSectors
	switch {
	case fat == "fat12":
		return 0x01, nil
	case fat == "fat16" && e.sectors < fat16SmallLimit:
		return 0x04, nil
	case fat == "fat16" && inCHS:
		return 0x06, nil
	case fat == "fat16":
		return 0x0E, nil
	case inCHS:
		return 0x0B, nil
	}
	return 0x0C, nil
}

// fatKind checks a NewPartition.FAT, guessing the kind for "" from the
// partition's size in bytes.
func fatKind(f string, size int64) (string, error) {
	switch f = strings.ToLower(f); f {
	case "fat12", "fat16", "fat32":
		return f, nil
	case "":
		switch {
		case size >= 512<<20:
			return "fat32", nil
		case size >= 16<<20:
			return "fat16", nil
		}
		return "fat12", nil
	}
	return "", fmt.Errorf("FAT %q: want fat12, fat16 or fat32", f)
}

// chs is the CHS address of lba as the entries of an MBR hold it, for a
// geometry of 255 heads and 63 sectors a track: head, then sector (1-63)
// with the cylinder's two high bits above it, then the cylinder's low
// byte. Sectors beyond 1024 cylinders get the largest address,
// 1023/254/63 (0xFE 0xFF 0xFF).
func chs(lba int64) [3]byte {
	c := lba / (chsHeads * chsSectors)
	if c >= chsCylinders {
		return [3]byte{0xFE, 0xFF, 0xFF}
	}
	h := lba / chsSectors % chsHeads
	s := lba%chsSectors + 1
	return [3]byte{byte(h), byte(s) | byte(c>>2&0xC0), byte(c)}
}

// writeGPT writes the protective MBR and the primary and backup GPTs of
// the partitions ext.
func writeGPT(w io.WriterAt, l Layout, ext []extent, n int64) ([]Partition, error) {
	ss := l.SectorSize
	arrSecs := gptArraySectors(ss)
	disk := l.DiskGUID
	if disk == ([16]byte{}) {
		disk = newGUID()
	}
	used := map[[16]byte]bool{disk: true}
	arr := make([]byte, arrSecs*int64(ss))
	parts := make([]Partition, len(ext))
	for i, p := range l.Partitions {
		e := ext[i]
		ge := gptEntry{StartingLBA: uint64(e.lba), EndingLBA: uint64(e.end() - 1)}
		var err error
		if ge.TypeGUID, err = gptTypeFor(p); err != nil {
			return nil, fmt.Errorf("partition: partition %d: %w", i+1, err)
		}
		name := utf16.Encode([]rune(p.Name))
		if len(name) > len(ge.Name) || strings.ContainsRune(p.Name, 0) {
			return nil, fmt.Errorf("partition: partition %d: name %q is longer than 36 UTF-16 units or holds a NUL", i+1, p.Name)
		}
		copy(ge.Name[:], name)
		if p.Bootable {
			ge.Attributes = gptAttrLegacyB
		}
		for ge.UniqueGUID = newGUID(); used[ge.UniqueGUID]; ge.UniqueGUID = newGUID() {
		}
		used[ge.UniqueGUID] = true
		ge.encode(arr[i*gptEntrySize:])
		parts[i] = gptPartition(i+1, ge, ss)
	}
	h := gptHeader{
		Revision: gptRevision, HeaderSize: gptHeaderSize, MyLBA: 1, AlternateLBA: uint64(n - 1),
		FirstUsableLBA: uint64(2 + arrSecs), LastUsableLBA: uint64(n - 2 - arrSecs), DiskGUID: disk,
		PartitionEntryLBA: 2, NumberOfPartitionEntries: gptEntries, SizeOfPartitionEntry: gptEntrySize,
		PartitionEntryArrayCRC32: crc32.ChecksumIEEE(arr[:gptEntries*gptEntrySize]),
	}
	copy(h.Signature[:], gptSignature)
	primary := make([]byte, ss)
	h.encode(primary)
	h.MyLBA, h.AlternateLBA, h.PartitionEntryLBA = uint64(n-1), 1, uint64(n-1-arrSecs)
	backup := make([]byte, ss)
	h.encode(backup)

	pm := mbrSector{Signature: mbrSignature}
	pm.Entries[0] = mbrEntry{Type: typeGPTProtective, CHSStart: chs(1), CHSEnd: chs(n - 1), LBAStart: 1, Sectors: uint32(min(n-1, mbrMaxSectors))}
	s0 := make([]byte, ss)
	pm.encode(s0)

	// The backup first and the protective MBR last: a disk whose writing
	// stops half-way is not taken for a GPT with a missing backup.
	for _, wr := range []struct {
		lba int64
		b   []byte
	}{{n - 1 - arrSecs, arr}, {n - 1, backup}, {2, arr}, {1, primary}, {0, s0}} {
		if err := writeSectors(w, wr.lba, ss, wr.b); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// gptTypeFor chooses the type GUID of p.
func gptTypeFor(p NewPartition) ([16]byte, error) {
	t := p.Type
	switch {
	case t != "" && p.ESP:
		return [16]byte{}, fmt.Errorf("both Type %q and ESP given", t)
	case t == "" && p.ESP:
		t = guidESP
	case t == "":
		if _, err := fatKind(p.FAT, 0); err != nil {
			return [16]byte{}, err
		}
		t = guidBasicData
	}
	g, err := parseGUID(t)
	if err != nil {
		return g, fmt.Errorf("GPT type: %w", err)
	}
	if g == ([16]byte{}) {
		return g, errors.New("GPT type: the zero GUID marks an unused entry")
	}
	return g, nil
}

// newGUID returns a random (version 4, RFC 4122 variant) GUID in on-disk
// order: the version is the top nibble of the little-endian third field,
// byte 7.
func newGUID() [16]byte {
	var g [16]byte
	copy(g[:], randomBytes(16))
	g[7] = g[7]&0x0F | 0x40
	g[8] = g[8]&0x3F | 0x80
	return g
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24 on)
	return b
}

func writeSectors(w io.WriterAt, lba int64, ss int, b []byte) error {
	if _, err := w.WriteAt(b, lba*int64(ss)); err != nil {
		return &SectorError{Sector: lba, Err: err}
	}
	return nil
}
