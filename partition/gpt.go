package partition

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

const (
	gptSignature   = "EFI PART"
	gptMinHeader   = 92
	gptMinEntry    = 128
	gptMaxEntries  = 16384   // far above the 128 every tool writes
	gptMaxArray    = 4 << 20 // bytes of entry array read at most
	gptAttrLegacyB = 1 << 2  // legacy BIOS bootable
)

// gptHeader is the GPT header: UEFI 2.10 table 5.5 "GPT Header".
type gptHeader struct {
	Signature                [8]byte  // 0: "EFI PART"
	Revision                 uint32   // 8
	HeaderSize               uint32   // 12
	HeaderCRC32              uint32   // 16: over HeaderSize bytes, this field zero
	MyLBA                    uint64   // 24
	AlternateLBA             uint64   // 32
	FirstUsableLBA           uint64   // 40
	LastUsableLBA            uint64   // 48
	DiskGUID                 [16]byte // 56
	PartitionEntryLBA        uint64   // 72
	NumberOfPartitionEntries uint32   // 80
	SizeOfPartitionEntry     uint32   // 84
	PartitionEntryArrayCRC32 uint32   // 88
}

func decodeGPTHeader(p []byte) gptHeader {
	le := binary.LittleEndian
	var h gptHeader
	copy(h.Signature[:], p[0:8])
	h.Revision = le.Uint32(p[8:])
	h.HeaderSize = le.Uint32(p[12:])
	h.HeaderCRC32 = le.Uint32(p[16:])
	h.MyLBA = le.Uint64(p[24:])
	h.AlternateLBA = le.Uint64(p[32:])
	h.FirstUsableLBA = le.Uint64(p[40:])
	h.LastUsableLBA = le.Uint64(p[48:])
	copy(h.DiskGUID[:], p[56:72])
	h.PartitionEntryLBA = le.Uint64(p[72:])
	h.NumberOfPartitionEntries = le.Uint32(p[80:])
	h.SizeOfPartitionEntry = le.Uint32(p[84:])
	h.PartitionEntryArrayCRC32 = le.Uint32(p[88:])
	return h
}

// encode writes the header into p (a whole sector) and computes its CRC.
func (h *gptHeader) encode(p []byte) {
	le := binary.LittleEndian
	copy(p[0:8], h.Signature[:])
	le.PutUint32(p[8:], h.Revision)
	le.PutUint32(p[12:], h.HeaderSize)
	le.PutUint32(p[16:], 0)
	le.PutUint64(p[24:], h.MyLBA)
	le.PutUint64(p[32:], h.AlternateLBA)
	le.PutUint64(p[40:], h.FirstUsableLBA)
	le.PutUint64(p[48:], h.LastUsableLBA)
	copy(p[56:72], h.DiskGUID[:])
	le.PutUint64(p[72:], h.PartitionEntryLBA)
	le.PutUint32(p[80:], h.NumberOfPartitionEntries)
	le.PutUint32(p[84:], h.SizeOfPartitionEntry)
	le.PutUint32(p[88:], h.PartitionEntryArrayCRC32)
	h.HeaderCRC32 = crc32.ChecksumIEEE(p[:h.HeaderSize])
	le.PutUint32(p[16:], h.HeaderCRC32)
}

// gptEntry is a partition entry: UEFI 2.10 table 5.6 "GPT Partition Entry".
type gptEntry struct {
	TypeGUID    [16]byte   // 0
	UniqueGUID  [16]byte   // 16
	StartingLBA uint64     // 32
	EndingLBA   uint64     // 40 (inclusive)
	Attributes  uint64     // 48
	Name        [36]uint16 // 56: UTF-16LE, NUL padded
}

func decodeGPTEntry(p []byte) gptEntry {
	le := binary.LittleEndian
	var e gptEntry
	copy(e.TypeGUID[:], p[0:16])
	copy(e.UniqueGUID[:], p[16:32])
	e.StartingLBA = le.Uint64(p[32:])
	e.EndingLBA = le.Uint64(p[40:])
	e.Attributes = le.Uint64(p[48:])
	for i := range e.Name {
		e.Name[i] = le.Uint16(p[56+2*i:])
	}
	return e
}

func (e *gptEntry) encode(p []byte) {
	le := binary.LittleEndian
	copy(p[0:16], e.TypeGUID[:])
	copy(p[16:32], e.UniqueGUID[:])
	le.PutUint64(p[32:], e.StartingLBA)
	le.PutUint64(p[40:], e.EndingLBA)
	le.PutUint64(p[48:], e.Attributes)
	for i, c := range e.Name {
		le.PutUint16(p[56+2*i:], c)
	}
}

func (e *gptEntry) name() string {
	n := e.Name[:]
	for i, c := range n {
		if c == 0 {
			n = n[:i]
			break
		}
	}
	return string(utf16.Decode(n))
}

// guidString formats a GUID as UEFI does: the first three fields are
// little-endian.
func guidString(g [16]byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
}

// parseGUID is guidString's inverse.
func parseGUID(s string) ([16]byte, error) {
	var g [16]byte
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("bad GUID %q", s)
	}
	copy(g[:], raw)
	// The first three fields are stored little-endian.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	return g, nil
}

// readGPT reads the primary GPT, or the backup when the primary header or
// its entry array is damaged.
func (rd *reader) readGPT() (*Table, error) {
	t := &Table{Kind: "gpt", SectorSize: rd.ss}
	h, entries, perr := rd.readGPTAt(1)
	if perr != nil {
		alt := rd.sectors() - 1 // the backup header is on the last sector
		if h != nil && h.AlternateLBA > 1 && (alt < 0 || int64(h.AlternateLBA) <= alt) {
			alt = int64(h.AlternateLBA) // the primary header was sound, its entries were not
		}
		if alt < 2 {
			return nil, fmt.Errorf("partition table: primary GPT: %v; no backup to fall back on", perr)
		}
		var berr error
		h, entries, berr = rd.readGPTAt(alt)
		if berr != nil {
			return nil, fmt.Errorf("partition table: primary GPT: %v; backup GPT: %v", perr, berr)
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("primary GPT: %v; using the backup GPT at sector %d", perr, alt))
	}
	n := rd.sectors()
	for i, e := range entries {
		if e.TypeGUID == ([16]byte{}) {
			continue
		}
		if e.EndingLBA < e.StartingLBA || e.EndingLBA >= 1<<48 {
			t.Warnings = append(t.Warnings, fmt.Sprintf("GPT entry %d: sectors %d..%d make no sense; skipped", i+1, e.StartingLBA, e.EndingLBA))
			continue
		}
		if e.StartingLBA < h.FirstUsableLBA || e.EndingLBA > h.LastUsableLBA {
			t.Warnings = append(t.Warnings, fmt.Sprintf("GPT entry %d lies outside the usable sectors %d..%d", i+1, h.FirstUsableLBA, h.LastUsableLBA))
		}
		if n > 0 && int64(e.EndingLBA) >= n {
			t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d (sectors %d..%d) extends beyond the end of the %d-sector medium", i+1, e.StartingLBA, e.EndingLBA, n))
		}
		t.Partitions = append(t.Partitions, gptPartition(i+1, e, rd.ss))
	}
	return t, nil
}

// gptPartition is the partition of entry e (whose LBAs are sane), for
// sectors of ss bytes.
func gptPartition(index int, e gptEntry, ss int) Partition {
	typ := guidString(e.TypeGUID)
	name, ok := gptTypeNames[typ]
	if !ok {
		name = "Unknown"
	}
	return Partition{
		Index:    index,
		Start:    int64(e.StartingLBA) * int64(ss),
		Size:     int64(e.EndingLBA-e.StartingLBA+1) * int64(ss),
		Type:     typ,
		TypeName: name,
		Name:     e.name(),
		Bootable: e.Attributes&gptAttrLegacyB != 0,
		FAT:      typ == guidESP || typ == guidBasicData,
	}
}

// readGPTAt reads and verifies the header at lba and its entry array. When
// the header is sound but the array is not, it returns the header too.
func (rd *reader) readGPTAt(lba int64) (*gptHeader, []gptEntry, error) {
	s, err := rd.sector(lba)
	if err != nil {
		return nil, nil, err
	}
	h := decodeGPTHeader(s)
	switch {
	case string(h.Signature[:]) != gptSignature:
		return nil, nil, fmt.Errorf("no GPT header at sector %d", lba)
	case h.HeaderSize < gptMinHeader || int(h.HeaderSize) > rd.ss:
		return nil, nil, fmt.Errorf("GPT header at sector %d: header size %d", lba, h.HeaderSize)
	}
	want := h.HeaderCRC32
	binary.LittleEndian.PutUint32(s[16:], 0)
	if got := crc32.ChecksumIEEE(s[:h.HeaderSize]); got != want {
		return nil, nil, fmt.Errorf("GPT header at sector %d: CRC32 %08X, want %08X", lba, got, want)
	}
	switch {
	case int64(h.MyLBA) != lba:
		return nil, nil, fmt.Errorf("GPT header at sector %d says it is at sector %d", lba, h.MyLBA)
	case h.SizeOfPartitionEntry < gptMinEntry || h.SizeOfPartitionEntry%8 != 0 || int(h.SizeOfPartitionEntry) > rd.ss:
		return nil, nil, fmt.Errorf("GPT header at sector %d: entry size %d", lba, h.SizeOfPartitionEntry)
	case h.NumberOfPartitionEntries > gptMaxEntries || int64(h.NumberOfPartitionEntries)*int64(h.SizeOfPartitionEntry) > gptMaxArray:
		return nil, nil, fmt.Errorf("GPT header at sector %d: %d entries of %d bytes", lba, h.NumberOfPartitionEntries, h.SizeOfPartitionEntry)
	case h.PartitionEntryLBA < 2 || h.PartitionEntryLBA >= 1<<48:
		return nil, nil, fmt.Errorf("GPT header at sector %d: entry array at sector %d", lba, h.PartitionEntryLBA)
	}
	size := int(h.NumberOfPartitionEntries) * int(h.SizeOfPartitionEntry)
	arr, err := rd.read(int64(h.PartitionEntryLBA), (size+rd.ss-1)/rd.ss)
	if err != nil {
		return &h, nil, err
	}
	if got := crc32.ChecksumIEEE(arr[:size]); got != h.PartitionEntryArrayCRC32 {
		return &h, nil, fmt.Errorf("GPT entry array at sector %d: CRC32 %08X, want %08X", h.PartitionEntryLBA, got, h.PartitionEntryArrayCRC32)
	}
	entries := make([]gptEntry, h.NumberOfPartitionEntries)
	for i := range entries {
		entries[i] = decodeGPTEntry(arr[i*int(h.SizeOfPartitionEntry):])
	}
	return &h, entries, nil
}

// Partition type GUIDs.
const (
	guidESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	guidBasicData = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
)

var gptTypeNames = map[string]string{
	guidESP:                                "EFI system partition",
	guidBasicData:                          "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS+",
	"7C3457EF-0000-11AA-AA11-00306543ECAC": "Apple APFS",
}
