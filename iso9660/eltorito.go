package iso9660

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"

	"github.com/mediafs/mediafs/device"
)

// Bounds on the boot catalog.
const (
	maxCatalogSectors = 4  // 256 entries of 32 bytes
	maxBootEntries    = 64 // reported entries
)

// El Torito 1.0 2.1 Validation Entry: header id 1, platform id, id string,
// checksum (the 16-bit words of the entry sum to 0), key 55 AA.
type validationEntry struct {
	Platform   byte
	ChecksumOK bool
}

func decodeValidationEntry(b []byte) (validationEntry, error) {
	if len(b) < 32 {
		return validationEntry{}, fmt.Errorf("validation entry: %d bytes", len(b))
	}
	if b[0] != 1 || b[30] != 0x55 || b[31] != 0xAA {
		return validationEntry{}, fmt.Errorf("no validation entry (header %#02x, key %02X %02X)", b[0], b[30], b[31])
	}
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	return validationEntry{Platform: b[1], ChecksumOK: sum == 0}, nil
}

// El Torito 1.0 2.2 Initial/Default Entry and 2.4 Section Entry: boot
// indicator (0x88 bootable), boot media type (low nibble: emulation), load
// segment, system type, sector count (512-byte virtual sectors), load RBA
// (2048-byte sectors).
type bootEntryRecord struct {
	Indicator   byte
	Media       byte
	LoadSegment uint16
	SystemType  byte
	SectorCount uint16
	LoadRBA     uint32
}

func decodeBootEntry(b []byte) bootEntryRecord {
	return bootEntryRecord{
		Indicator:   b[0],
		Media:       b[1],
		LoadSegment: le16(b[2:]),
		SystemType:  b[4],
		SectorCount: le16(b[6:]),
		LoadRBA:     le32(b[8:]),
	}
}

// El Torito 1.0 2.3 Section Header: 0x90 (more headers follow) or 0x91
// (final), platform id, number of section entries that follow.
func decodeSectionHeader(b []byte) (final bool, platform byte, count int, ok bool) {
	if b[0] != 0x90 && b[0] != 0x91 {
		return false, 0, 0, false
	}
	return b[0] == 0x91, b[1], int(le16(b[2:])), true
}

func platformName(p byte) string {
	switch p {
	case 0:
		return "x86"
	case 1:
		return "PowerPC"
	case 2:
		return "Mac"
	case 0xEF:
		return "EFI"
	}
	return fmt.Sprintf("0x%02X", p)
}

func emulationName(m byte) string {
	switch m & 0x0F {
	case 0:
		return "none"
	case 1:
		return "1.2M floppy"
	case 2:
		return "1.44M floppy"
	case 3:
		return "2.88M floppy"
	case 4:
		return "hard disk"
	}
	return fmt.Sprintf("0x%02X", m&0x0F)
}

// readBootCatalog reads the El Torito boot catalog at the given 2048-byte
// sector. Odd catalogs give warnings, never an error (corpus-notes 21).
func (f *FS) readBootCatalog(sector int64) {
	avail := f.dev.Size() - sectorToByte(sector)
	if sector < 0 || avail < sectorSize {
		f.warn("El Torito boot catalog at sector %d is outside the medium", sector)
		return
	}
	// Sector by sector: the catalog rarely fills more than its first
	// sector, and an unreadable later one must not cost the whole catalog.
	buf := make([]byte, 0, min(avail, maxCatalogSectors*sectorSize)/sectorSize*sectorSize)
	var truncErr error // the sector after buf could not be read
	for len(buf) < cap(buf) {
		n := len(buf)
		buf = buf[:n+sectorSize]
		if _, err := f.c.ReadAt(buf[n:], sectorToByte(sector)+int64(n)); err != nil {
			buf = buf[:n]
			if n == 0 {
				f.addRegion("El Torito boot catalog", device.Range{Off: sectorToByte(sector), Len: sectorSize}, err)
				f.warn("El Torito boot catalog: %v", err)
				return
			}
			truncErr = err
			break
		}
	}
	used := int64(sectorSize) // the region recorded: the sectors the entries use
	ended := false            // the catalog ended within buf
	defer func() {
		f.addRegion("El Torito boot catalog", device.Range{Off: sectorToByte(sector), Len: min(used, int64(len(buf)))}, nil)
		if truncErr != nil && !ended {
			f.addRegion("El Torito boot catalog", device.Range{Off: sectorToByte(sector) + int64(len(buf)), Len: sectorSize}, truncErr)
			f.warn("El Torito boot catalog: entries after the first %d may be lost: %v", len(f.boot), truncErr)
		}
	}()
	v, err := decodeValidationEntry(buf)
	if err != nil {
		ended = true
		f.warn("El Torito boot catalog at sector %d: %v", sector, err)
		return
	}
	if !v.ChecksumOK {
		f.warn("El Torito validation entry checksum is wrong")
	}
	add := func(b []byte, platform byte) {
		e := decodeBootEntry(b)
		f.boot = append(f.boot, BootEntry{
			Index:       len(f.boot),
			Platform:    platformName(platform),
			Bootable:    e.Indicator == 0x88,
			Emulation:   emulationName(e.Media),
			LoadSegment: e.LoadSegment,
			SystemType:  e.SystemType,
			SectorCount: e.SectorCount,
			LoadRBA:     e.LoadRBA,
		})
	}
	add(buf[32:64], v.Platform)
	for pos := 64; pos+32 <= len(buf) && len(f.boot) < maxBootEntries; {
		final, platform, count, ok := decodeSectionHeader(buf[pos : pos+32])
		if !ok {
			ended = true
			break
		}
		pos += 32
		used = max(used, sectorCeil(int64(pos)))
		for j := 0; j < count && pos+32 <= len(buf) && len(f.boot) < maxBootEntries; pos += 32 {
			used = max(used, sectorCeil(int64(pos+32)))
			switch buf[pos] {
			case 0x88, 0x00:
				add(buf[pos:pos+32], platform)
				j++
			case 0x44: // 2.5 Section Entry Extension: not an entry
			default:
				j = count
			}
		}
		if final {
			ended = true
			break
		}
	}
	if len(f.boot) >= maxBootEntries {
		ended = true
	}
}

// computeBootSizes fills in BootEntry.Size once.
func (f *FS) computeBootSizes() {
	f.bootOnce.Do(func() {
		var need map[int64]int64
		for i := range f.boot {
			b := &f.boot[i]
			start := sectorToByte(int64(b.LoadRBA))
			count := int64(b.SectorCount) * 512
			switch b.Emulation {
			case "1.2M floppy":
				b.Size = 1228800
			case "1.44M floppy":
				b.Size = 1474560
			case "2.88M floppy":
				b.Size = 2949120
			case "hard disk":
				b.Size = f.mbrSize(start)
				if b.Size == 0 {
					b.Size = count
				}
			default:
				if need == nil {
					need = map[int64]int64{}
				}
				need[start] = -1
				b.Size = max(count, 512)
			}
		}
		if need != nil {
			f.findFilesAt(need)
			for i := range f.boot {
				b := &f.boot[i]
				if sz := need[sectorToByte(int64(b.LoadRBA))]; b.Emulation == "none" && sz > 0 {
					b.Size = sz
				}
			}
		}
		for i := range f.boot {
			b := &f.boot[i]
			b.Size = max(0, min(b.Size, f.dev.Size()-sectorToByte(int64(b.LoadRBA))))
		}
	})
}

// mbrSize returns the end of the first partition of the MBR at byte off (a
// hard-disk emulation image), or 0 when there is no sane one.
func (f *FS) mbrSize(off int64) int64 {
	if off < 0 || off+512 > f.dev.Size() {
		return 0
	}
	mbr := make([]byte, 512)
	if _, err := f.c.ReadAt(mbr, off); err != nil || mbr[510] != 0x55 || mbr[511] != 0xAA {
		return 0
	}
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		if e[4] == 0 {
			continue
		}
		end := (int64(le32(e[8:])) + int64(le32(e[12:]))) * 512
		if end > 0 && end <= f.dev.Size()-off {
			return end
		}
		return 0
	}
	return 0
}

// Bounds on the tree walk that looks for boot files.
const (
	maxWalkNodes = 100_000
	maxWalkDepth = 64
)

// findFilesAt walks the tree (bounded) and records, for each byte offset
// in need, the size of a file whose data starts there.
func (f *FS) findFilesAt(need map[int64]int64) {
	seen := 0
	var walk func(d *node, depth int)
	walk = func(d *node, depth int) {
		if depth > maxWalkDepth {
			return
		}
		for _, c := range f.list(d, false).nodes {
			if seen++; seen > maxWalkNodes {
				return
			}
			if c.dir {
				if c.sections[0].Block != d.sections[0].Block && c.sections[0].Block != f.root.sections[0].Block {
					walk(c, depth+1)
				}
				continue
			}
			if c.rawSize == 0 || c.isLink {
				continue
			}
			at := f.g.blockToByte(c.sections[0].Block)
			if v, ok := need[at]; ok && v < 0 {
				need[at] = c.size
			}
		}
	}
	walk(f.root, 0)
}

// BootImage is an El Torito boot image: io.ReaderAt, io.Reader, io.Seeker
// and Size.
type BootImage struct {
	*io.SectionReader
	Entry BootEntry
}

// Boot returns El Torito boot entry i (0-based).
func (f *FS) Boot(i int) (*BootImage, error) {
	f.computeBootSizes()
	if i < 0 || i >= len(f.boot) {
		return nil, fmt.Errorf("iso9660: no El Torito boot entry %d (the medium has %d)", i, len(f.boot))
	}
	e := f.boot[i]
	r := &diskReader{f: f, name: fmt.Sprintf("[boot %d]", i), last: lastSector{sec: -1}}
	return &BootImage{SectionReader: io.NewSectionReader(r, sectorToByte(int64(e.LoadRBA)), e.Size), Entry: e}, nil
}

// diskReader reads the medium at byte offsets through readDisk.
type diskReader struct {
	f    *FS
	name string
	last lastSector
}

func (r *diskReader) ReadAt(p []byte, off int64) (int, error) {
	size := r.f.dev.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	if err := r.f.readDisk(p, off, &r.last); err != nil {
		return 0, &fs.PathError{Op: "read", Path: "/" + r.name, Err: err}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}
