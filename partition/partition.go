// Package partition reads the partition tables of removable media: the MBR
// (with its chain of extended boot records) and the UEFI GUID Partition
// Table.
//
// MBR (the IBM PC master boot record, as documented for example in
// Microsoft's "Master Boot Record" and by Linux's block/partitions/msdos.c):
// sector 0 ends with the signature 0x55 0xAA at byte 510 and holds four
// 16-byte entries from byte 446: status (0x00, or 0x80 = bootable), CHS
// start, type, CHS end, LBA start and sector count (32-bit little-endian).
// LBAs count the medium's own sectors, whatever their size (a 2048-byte MO
// disk counts in 2048s). Extended partitions (types 0x05, 0x0F, 0x85) hold
// a chain of extended boot records (EBRs), each an MBR-shaped sector whose
// first entry is a logical partition (relative to the EBR) and whose
// second links to the next EBR (relative to the extended partition's
// start).
//
// GPT (UEFI Specification 2.10, section 5.3 "GUID Partition Table (GPT)
// Disk Layout"): a protective MBR with one entry of type 0xEE, the header
// at LBA 1 ("EFI PART", header CRC32 over HeaderSize bytes with the CRC
// field zeroed), an array of NumberOfPartitionEntries entries of
// SizeOfPartitionEntry bytes at PartitionEntryLBA guarded by its own
// CRC32, and a backup header at the last LBA of the medium.
//
// Every number read from the medium is bounded before use; the EBR chain
// is followed at most maxLogical steps and never revisits a sector.
package partition

import (
	"errors"
	"fmt"
	"io"

	"github.com/mediafs/mediafs/device"
)

// Table is a partition table.
type Table struct {
	Kind       string // "mbr" or "gpt"
	SectorSize int    // the sector size the table's LBAs were read in
	Partitions []Partition
	// Warnings lists what was tolerated: a broken EBR chain, a damaged
	// primary GPT replaced by its backup, entries that do not fit.
	Warnings []string
}

// Partition is one entry of a table.
type Partition struct {
	// Index is the number users pass to --partition, as Linux numbers
	// partitions: MBR primaries 1-4 by slot, logical partitions 5 on in
	// chain order; GPT entries by their index in the array plus one.
	Index    int
	Start    int64  // bytes from the start of the medium
	Size     int64  // bytes
	Type     string // "0x0c" for MBR; the type GUID for GPT
	TypeName string // "FAT32 LBA", "EFI system partition", ...
	Name     string // GPT partition name
	Bootable bool   // MBR status 0x80; GPT attribute bit 2 (legacy BIOS bootable)
	FAT      bool   // the type suggests a FAT file system
}

// Read reads the partition table of a medium of size bytes whose sectors
// are sectorSize bytes. It returns (nil, nil) when the medium has no
// partition table: no 0x55AA signature, an MBR that cannot be one (a
// status byte other than 0x00 or 0x80), no used entry, or a sector 0 that
// is a FAT boot sector whose "entries" are not a plausible table (a
// superfloppy, as mkfs.fat makes by default). Errors are read errors of the
// sectors the table needs, and name the sector.
func Read(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	if sectorSize < 512 || sectorSize > 4096 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("partition: unsupported sector size %d", sectorSize)
	}
	rd := &reader{r: r, size: size, ss: sectorSize}
	s0, err := rd.sector(0)
	if err != nil {
		return nil, err
	}
	mbr, ok := decodeMBR(s0)
	if !ok {
		return nil, nil
	}
	for _, e := range mbr.Entries {
		if e.Type == typeGPTProtective {
			return rd.readGPT()
		}
	}
	return rd.readMBR(s0, mbr)
}

// ErrNoSector is wrapped by errors for sectors beyond the medium.
var ErrNoSector = errors.New("sector beyond the end of the medium")

// SectorError names the sector a table could not be read from.
type SectorError struct {
	Sector int64
	Err    error
}

func (e *SectorError) Error() string {
	return fmt.Sprintf("partition table: sector %d: %v", e.Sector, e.Err)
}
func (e *SectorError) Unwrap() error { return e.Err }

// reader reads whole sectors.
type reader struct {
	r    io.ReaderAt
	size int64 // bytes; <= 0 if unknown
	ss   int
}

func (rd *reader) sectors() int64 {
	if rd.size <= 0 {
		return -1
	}
	return rd.size / int64(rd.ss)
}

// read reads n sectors at lba.
func (rd *reader) read(lba int64, n int) ([]byte, error) {
	if lba < 0 || (rd.size > 0 && (lba >= rd.sectors() || int64(n) > rd.sectors()-lba)) {
		return nil, &SectorError{Sector: lba, Err: ErrNoSector}
	}
	buf := make([]byte, n*rd.ss)
	if _, err := rd.r.ReadAt(buf, lba*int64(rd.ss)); err != nil {
		var se *device.SectorError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("partition table: %w", err) // already names the sector
		}
		return nil, &SectorError{Sector: lba, Err: err}
	}
	return buf, nil
}

func (rd *reader) sector(lba int64) ([]byte, error) { return rd.read(lba, 1) }
